"""Collective algorithms by name (workload key ``collectives.<op>``).

An algorithm decomposes a collective on ``group`` into :class:`Phase` s run
one after another. A phase is a set of concurrent point-to-point hops, each
carrying ``factor * S`` bytes (S = the collective's ``nbytes``), preceded by
``steps`` x the slowest hop's route latency. The planner
(:mod:`simcluster.collectives.plan`) turns phases into ``Transfer`` s: a link's
weight is the number of hops whose route crosses it.

Sizes follow NCCL's conventions (nccl-tests doc/PERFORMANCE.md, "bus
bandwidth"): all_reduce S is the buffer on each rank; all_gather S is the
gathered output, reduce_scatter S the full input (a rank's shard is S/n);
broadcast S the message; all_to_all S the buffer each rank sends (S/n to
each peer); send S the message.

Ring (Thakur, Rabenseifner & Gropp, "Optimization of Collective
Communication Operations in MPICH", IJHPCA 2005, sec. 4): on n ranks with
per-hop latency alpha and bandwidth B,

    all_reduce      2(n-1) alpha + 2(n-1)/n * S/B   (reduce-scatter + all-gather)
    all_gather      (n-1) alpha + (n-1)/n * S/B     (reduce_scatter the same)
    broadcast       (n-1) alpha + S/B               (pipelined chain, root = group[0])

Hierarchical (2D ring, as in NCCL's tree/CollNet-free multi-node rings and
Horovod's hierarchical all-reduce): k nodes with g group members each;
intra-node reduce-scatter ((g-1)/g S), g concurrent inter-node all-reduce
rings over ranks with the same local index (2(k-1)/k * S/g each), intra-node
all-gather ((g-1)/g S).

Direct: every rank sends to every other rank at once (all_to_all: S/n per
pair, one step; all_gather / reduce_scatter: S/n per pair; all_reduce: a
direct reduce-scatter then a direct all-gather; broadcast: root to all).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from simcluster.registry import Registry

if TYPE_CHECKING:
    from simcluster.topology.topology import Topology

OPS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all", "send")


@dataclass(frozen=True)
class Phase:
    """Concurrent hops ``pairs`` (src, dst), each carrying ``factor * S`` bytes, after ``steps`` latencies."""

    pairs: tuple[tuple[int, int], ...]
    factor: float
    steps: int


Algorithm = Callable[[str, Sequence[int], "Topology"], list[Phase]]
ALGORITHMS: Registry[Algorithm] = Registry("collective algorithm")


def ring_pairs(group: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Hops of the ring in the group's order: g[i] -> g[i+1 mod n]."""
    n = len(group)
    return tuple((group[i], group[(i + 1) % n]) for i in range(n))


def chain_pairs(group: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Hops of the chain g[0] -> g[1] -> ... -> g[n-1] (pipelined broadcast)."""
    return tuple((group[i], group[i + 1]) for i in range(len(group) - 1))


def node_split(group: Sequence[int], topo: "Topology") -> list[list[int]]:
    """Members per node, nodes in order of first appearance, members in group order."""
    by_node: dict[int, list[int]] = {}
    for r in group:
        by_node.setdefault(r // topo.gpus_per_node, []).append(r)
    return list(by_node.values())


def _unsupported(name: str, op: str) -> ValueError:
    return ValueError(f"collective algorithm {name!r} does not implement {op}")


@ALGORITHMS.register("ring")
def ring(op: str, group: Sequence[int], topo: "Topology") -> list[Phase]:
    """Ring algorithm in the group's order (Thakur et al. 2005); broadcast is a pipelined chain."""
    n = len(group)
    if op == "all_reduce":
        return [Phase(ring_pairs(group), 2 * (n - 1) / n, 2 * (n - 1))]
    if op in ("all_gather", "reduce_scatter"):
        return [Phase(ring_pairs(group), (n - 1) / n, n - 1)]
    if op == "broadcast":
        return [Phase(chain_pairs(group), 1.0, n - 1)]
    raise _unsupported("ring", op)


@ALGORITHMS.register("direct")
def direct(op: str, group: Sequence[int], topo: "Topology") -> list[Phase]:
    """Every rank to every other rank at once (NCCL's all-to-all: grouped send/recv)."""
    n = len(group)
    pairs = tuple((a, b) for a in group for b in group if a != b)
    if op in ("all_to_all", "all_gather", "reduce_scatter"):
        return [Phase(pairs, 1 / n, 1)]
    if op == "all_reduce":
        return [Phase(pairs, 1 / n, 1), Phase(pairs, 1 / n, 1)]
    if op == "broadcast":
        return [Phase(tuple((group[0], b) for b in group[1:]), 1.0, 1)]
    raise _unsupported("direct", op)


@ALGORITHMS.register("hierarchical")
def hierarchical(op: str, group: Sequence[int], topo: "Topology") -> list[Phase]:
    """Intra-node rings + concurrent inter-node rings per local index (2D ring).

    Needs k >= 2 nodes with the same number g >= 2 of members each; otherwise
    (and for broadcast / all_to_all, which have no hierarchical form here) it
    is the ``auto`` choice for the flat group.
    """
    nodes = node_split(group, topo)
    k, g = len(nodes), len(nodes[0])
    if k < 2 or g < 2 or any(len(m) != g for m in nodes) or op not in ("all_reduce", "all_gather", "reduce_scatter"):
        return auto(op, group, topo, hierarchical_ok=False)
    intra = tuple(p for members in nodes for p in ring_pairs(members))
    inter = tuple(p for i in range(g) for p in ring_pairs([m[i] for m in nodes]))
    if op == "all_reduce":
        return [
            Phase(intra, (g - 1) / g, g - 1),
            Phase(inter, 2 * (k - 1) / k / g, 2 * (k - 1)),
            Phase(intra, (g - 1) / g, g - 1),
        ]
    if op == "reduce_scatter":
        return [Phase(intra, (g - 1) / g, g - 1), Phase(inter, (k - 1) / k / g, k - 1)]
    return [Phase(inter, (k - 1) / k / g, k - 1), Phase(intra, (g - 1) / g, g - 1)]


@ALGORITHMS.register("auto")
def auto(op: str, group: Sequence[int], topo: "Topology", hierarchical_ok: bool = True) -> list[Phase]:
    """all_to_all: direct. Torus clusters, groups inside one node or with one member per node,
    and broadcast: ring. Several nodes with the same number (>= 2) of members each: hierarchical.
    Anything else: ring.
    """
    if op == "all_to_all":
        return direct(op, group, topo)
    if op == "broadcast" or topo.is_torus or not hierarchical_ok:
        return ring(op, group, topo)
    nodes = node_split(group, topo)
    if len(nodes) == 1 or len(nodes) == len(group) or any(len(m) != len(nodes[0]) for m in nodes):
        return ring(op, group, topo)
    return hierarchical(op, group, topo)


def plan_collective(*args, **kwargs):
    """Re-export of :func:`simcluster.collectives.plan.plan_collective` (imported lazily: plan imports this module)."""
    from simcluster.collectives.plan import plan_collective as _plan_collective

    return _plan_collective(*args, **kwargs)
