"""NCCL's double binary tree all-reduce (registered as ``tree``).

Two binary trees over the k nodes (Sanders, Speck & Traeff, "Two-tree
algorithms for full bandwidth broadcast, reduction and scan", Parallel
Computing 35(12), 2009; NCCL 2.4, src/graph/trees.cc): tree 1 is the
in-order binary tree of :func:`btree_parent`; tree 2 is tree 1 mirrored
(k even: rank r -> k-1-r) or shifted by one (k odd), so a node interior in
one tree is a leaf in the other. Each tree carries half of the buffer: it
is reduced up the tree and broadcast back down, pipelined in chunks, so
every tree edge carries S/2 each way.

Inside a node, the members form a chain (NCCL's intra-node tree is a
chain): the head, on the channel's NIC, joins the inter-node trees; the
chain carries the whole channel buffer up (reduce) and down (broadcast).
As for rings (:mod:`simcluster.collectives.rings`) there is one channel per
NIC the members use, each with 1/C of the buffer and its own heads.

Model: one phase with every hop at once (reduction and broadcast are
pipelined), carrying S/2 per tree edge per channel share, S per chain hop,
so a head's NIC sends 2S/C: the same ~2S per node as a ring, hence equal
asymptotic busbw. NCCL's tuning model rates tree all-reduce at 0.92 of that
bus bandwidth (src/graph/tuning.cc: ``busBw * .92``), applied here as
TREE_BW_FACTOR, so ring wins for large messages. Latency (tuning.cc for
tree all-reduce): 2 x ((g-1) alpha_intra + depth x alpha_inter), depth the
deeper tree's height in hops, ~log2 k against the ring's 2(n-1) steps, so
tree wins for small messages across many nodes. On switched GPU clusters the
planner replaces it with NCCL's own (per protocol, log2 k network steps;
:mod:`simcluster.collectives.nccl`).

Within a single node NCCL does not use trees; ``tree`` is then the ring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from simcluster.collectives.algorithms import ALGORITHMS, Phase, node_split, ring
from simcluster.collectives.rings import node_channels

if TYPE_CHECKING:
    from simcluster.topology.topology import Topology

TREE_BW_FACTOR = 0.92  # NCCL src/graph/tuning.cc: tree all-reduce busBw * .92


def btree_parent(rank: int, k: int) -> int:
    """Parent of ``rank`` in NCCL's binary tree over ranks 0..k-1 (-1 for the root, rank 0).

    Rank r with lowest set bit b hangs under (r ^ b) | 2b, or r ^ b when that is >= k
    (NCCL src/graph/trees.cc, ncclGetBtree).
    """
    if rank == 0:
        return -1
    bit = rank & -rank
    up = (rank ^ bit) | (bit << 1)
    return up if up < k else rank ^ bit


def double_binary_tree(k: int) -> tuple[list[int], list[int]]:
    """Parents of every rank in the two trees (NCCL ncclGetDtree: mirror when k is even, shift when odd)."""
    t1 = [btree_parent(r, k) for r in range(k)]
    t2 = []
    for r in range(k):
        if k % 2:
            u = btree_parent((r - 1) % k, k)
            t2.append(-1 if u < 0 else (u + 1) % k)
        else:
            u = btree_parent(k - 1 - r, k)
            t2.append(-1 if u < 0 else k - 1 - u)
    return t1, t2


def depth(parents: list[int]) -> int:
    """Height of a tree given by parent indices, in edges."""
    best = 0
    for r in range(len(parents)):
        d, p = 0, parents[r]
        while p >= 0:
            d, p = d + 1, parents[p]
        best = max(best, d)
    return best


@ALGORITHMS.register("tree")
def tree(op: str, group: Sequence[int], topo: "Topology") -> list[Phase]:
    """Double binary tree all-reduce across nodes, chains inside them (see the module docstring)."""
    if op != "all_reduce":
        raise ValueError(f"collective algorithm 'tree' does not implement {op}")
    nodes = node_split(group, topo)
    if len(nodes) == 1:
        return ring(op, group, topo)
    G = topo.gpus_per_node
    channels = node_channels(nodes, topo)
    if channels is None:  # one member per node, uneven groups, tori: a tree over the members
        heads_per_channel = [[[r] for r in group]]
    else:
        heads_per_channel = [[[m[0] - m[0] % G + l for l in chain] for m in nodes] for _, chain, _ in channels]
    k = len(heads_per_channel[0])
    t1, t2 = double_binary_tree(k)
    C = len(heads_per_channel)
    pairs: list[tuple[int, int]] = []
    weights: list[float] = []
    lat_intra = lat_inter = 0.0
    for chains in heads_per_channel:
        for chain in chains:  # reduce up and broadcast down the chain: the whole channel buffer
            for a, b in zip(chain, chain[1:]):
                pairs += [(a, b), (b, a)]
                weights += [2.0 / C, 2.0 / C]
                lat_intra = max(lat_intra, topo.route_latency(a, b), topo.route_latency(b, a))
        for parents in (t1, t2):  # half the buffer up and down every tree edge
            for child, parent in enumerate(parents):
                if parent < 0:
                    continue
                a, b = chains[child][0], chains[parent][0]
                pairs += [(a, b), (b, a)]
                weights += [1.0 / C, 1.0 / C]
                lat_inter = max(lat_inter, topo.route_latency(a, b), topo.route_latency(b, a))
    g = len(heads_per_channel[0][0])
    latency = 2 * ((g - 1) * lat_intra + max(depth(t1), depth(t2)) * lat_inter)
    return [Phase(tuple(pairs), 0.5 / TREE_BW_FACTOR, 0, tuple(weights), latency)]
