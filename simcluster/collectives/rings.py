"""NCCL-style rings: which hops a ring collective uses, and how the buffer is split over channels.

A :class:`Ring` is a closed path through every member of the group (its hops
in the order a chunk crosses them) carrying ``share`` of the buffer. A ring
collective runs all its rings (NCCL's *channels*) at once; every hop of ring
r carries ``share_r`` x the ring algorithm's per-hop bytes (Thakur et al.
2005: 2(n-1)/n S for all-reduce).

Inside one node (NCCL's graph search, src/graph/search.cc, approximated):

- switches (NVSwitch, PCIe): one ring in the group's order (every order is
  equivalent on a non-blocking switch);
- an NVLink mesh (DGX-1 hybrid cube-mesh): the edge-disjoint Hamiltonian
  cycles over direct NVLinks, widest bottleneck first (on a DGX-1: the cycle
  of double links, then the cycle of single links), each run in both
  directions, shares proportional to the cycle's bottleneck bandwidth;
  no such cycle: the group's order (routes then go through a peer GPU).

Across nodes (k >= 2 nodes with the same g >= 2 local members each, on a
switched network): one channel per NIC the members use. Channel c enters
every node at a member on NIC c, runs through the node's members along the
local cycle, and leaves the node from NIC c, so every inter-node hop stays
on one rail (NCCL's default NCCL_CROSS_NIC=0 and its PXN path, NCCL 2.12:
when the last GPU of the chain is not on NIC c it hands its data over
NVLink to the entry GPU, which sends). On a mesh, channels alternate
direction so both directions of every NVLink carry traffic. Each channel
carries 1/C of the buffer, so the nodes' C NICs run in parallel: busbw ~
C x the NIC's bandwidth, as NCCL measures on DGX systems.

Anything else (one member per node, uneven groups, tori): one ring in the
group's order.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence, cast

if TYPE_CHECKING:
    from simcluster.topology.topology import Topology

MAX_BRUTE_FORCE = 8  # Hamiltonian cycles are searched exhaustively up to this many members


@dataclass(frozen=True)
class Ring:
    """Hops of one closed ring in path order, and the share of the buffer it carries."""

    hops: tuple[tuple[int, int], ...]
    share: float


def ring_pairs(group: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Hops of the ring in the group's order: g[i] -> g[i+1 mod n]."""
    n = len(group)
    return tuple((group[i], group[(i + 1) % n]) for i in range(n))


def node_split(group: Sequence[int], topo: "Topology") -> list[list[int]]:
    """Members per node, nodes in order of first appearance, members in group order."""
    by_node: dict[int, list[int]] = {}
    for r in group:
        by_node.setdefault(r // topo.gpus_per_node, []).append(r)
    return list(by_node.values())


def _direct_bw(topo: "Topology", a: int, b: int) -> float:
    """Bandwidth of the single link from a to b, 0 when the route has more than one link."""
    r = topo.route(a, b)
    return topo.link_bandwidth[r[0]] if len(r) == 1 else 0.0


def mesh_cycles(members: Sequence[int], topo: "Topology") -> list[tuple[list[int], float]]:
    """Edge-disjoint Hamiltonian cycles over direct links, widest bottleneck first: [(cycle, bottleneck)].

    Exhaustive search (members[0] fixed, (g-1)! orders), for g <= MAX_BRUTE_FORCE.
    """
    g = len(members)
    if g < 3 or g > MAX_BRUTE_FORCE:
        return []
    bw = {(a, b): _direct_bw(topo, a, b) for a in members for b in members if a != b}
    used: set[frozenset[int]] = set()
    cycles: list[tuple[list[int], float]] = []
    while True:
        best: tuple[float, list[int]] | None = None
        for rest in itertools.permutations(members[1:]):
            if rest[0] > rest[-1]:
                continue  # each cycle once, not also reversed
            cyc = [members[0], *rest]
            width = float("inf")
            for a, b in zip(cyc, cyc[1:] + cyc[:1]):
                w = bw[(a, b)] if frozenset((a, b)) not in used else 0.0
                width = min(width, w)
                if width <= 0 or (best is not None and width <= best[0]):
                    break
            if width > 0 and (best is None or width > best[0]):
                best = (width, cyc)
        if best is None:
            return cycles
        cycles.append((best[1], best[0]))
        used.update(frozenset(p) for p in zip(best[1], best[1][1:] + best[1][:1]))


def local_cycles(members: Sequence[int], topo: "Topology") -> list[tuple[list[int], float]]:
    """The node's ring orders: mesh cycles on an NVLink mesh, [] elsewhere or when none exists (cached)."""
    key = ("cycles", tuple(members))
    hit = cast("list[tuple[list[int], float]] | None", topo.plan_cache.get(key))
    if hit is None:
        hit = mesh_cycles(members, topo) if topo.intra_fabric == "nvlink-mesh" else []
        topo.plan_cache[key] = hit
    return hit


def _multi_node_layout(nodes: list[list[int]], topo: "Topology") -> bool:
    """Several nodes, the same local members on each, at least two per node, NICs known."""
    G = topo.gpus_per_node
    if len(nodes) < 2 or len(nodes[0]) < 2 or topo.is_torus or topo.nic_of(nodes[0][0]) is None:
        return False
    local = sorted(r % G for r in nodes[0])
    return all(sorted(r % G for r in m) == local for m in nodes[1:])


def node_channels(nodes: list[list[int]], topo: "Topology") -> list[tuple[int, list[int], bool]] | None:
    """Per channel (one per NIC used): (direction, chain of local indices from entry, forwards?).

    ``forwards``: the chain's last member is not on the channel's NIC and hands its data
    to the entry member (on that NIC), which sends to the next node.
    """
    if not _multi_node_layout(nodes, topo):
        return None
    G = topo.gpus_per_node
    nic_of = [n for n in (topo.nic_of(r) for r in range(G)) if n is not None]  # node 0's GPUs
    if len(nic_of) < G:
        return None  # (not reached: _multi_node_layout found NICs)
    K = max(nic_of) + 1  # NICs of node 0
    nic = {l: nic_of[l] % K for l in range(G)}
    cycle = (local_cycles(nodes[0], topo) or [(nodes[0], 1.0)])[0][0]
    cyc = [r % G for r in cycle]
    mesh = topo.intra_fabric == "nvlink-mesh"
    out: list[tuple[int, list[int], bool]] = []
    dirs = {1: 0, -1: 0}
    for c in sorted({nic[l] for l in cyc}):
        best: tuple[tuple[bool, int], int, list[int], bool] | None = None
        for d in (1, -1) if mesh else (1,):
            order = cyc if d == 1 else [cyc[0], *reversed(cyc[1:])]
            for i, e in enumerate(order):
                if nic[e] != c:
                    continue
                chain = order[i:] + order[:i]
                fwd = nic[chain[-1]] != c
                score = (fwd, dirs[d])
                if best is None or score < best[0]:
                    best = (score, d, chain, fwd)
        assert best is not None  # c is the NIC of some member of the cycle
        _, d, chain, fwd = best
        dirs[d] += 1
        out.append((d, chain, fwd))
    return out


def rings(group: Sequence[int], topo: "Topology") -> list[Ring]:
    """The rings a ring collective on ``group`` runs at once (see the module docstring)."""
    group = list(group)
    nodes = node_split(group, topo)
    if len(nodes) == 1:
        cycles = local_cycles(group, topo)
        if not cycles:
            return [Ring(ring_pairs(group), 1.0)]
        total = sum(w for _, w in cycles)
        out = []
        for cyc, w in cycles:
            out.append(Ring(ring_pairs(cyc), w / total / 2))
            out.append(Ring(ring_pairs([cyc[0], *reversed(cyc[1:])]), w / total / 2))
        return out
    channels = node_channels(nodes, topo)
    if channels is None:
        return [Ring(ring_pairs(group), 1.0)]
    G, k = topo.gpus_per_node, len(nodes)
    out = []
    for _, chain, fwd in channels:
        hops: list[tuple[int, int]] = []
        for i, members in enumerate(nodes):
            base = members[0] - members[0] % G
            gpus = [base + l for l in chain]
            hops.extend(zip(gpus, gpus[1:]))
            exit_gpu = gpus[0] if fwd else gpus[-1]
            if fwd:
                hops.append((gpus[-1], gpus[0]))
            nxt = nodes[(i + 1) % k][0]
            hops.append((exit_gpu, nxt - nxt % G + chain[0]))
        out.append(Ring(tuple(hops), 1.0 / len(channels)))
    return out
