"""Collective algorithms by name (workload key ``collectives.<op>``).

An algorithm decomposes a collective on ``group`` into :class:`Phase` s run
one after another. A phase is a set of concurrent point-to-point hops, each
carrying ``factor * S`` bytes (S = the collective's ``nbytes``), preceded by
``steps`` x the slowest hop's route latency (or the phase's own ``latency``).
The planner (:mod:`simcluster.collectives.plan`) turns phases into
``Transfer`` s: a link's weight is the number of hops whose route crosses it
(each counted with its ``weights`` entry, 1 by default).

Sizes follow NCCL's conventions (nccl-tests doc/PERFORMANCE.md, "bus
bandwidth"): all_reduce S is the buffer on each rank; all_gather S is the
gathered output, reduce_scatter S the full input (a rank's shard is S/n);
broadcast S the message; all_to_all S the buffer each rank sends (S/n to
each peer); send S the message.

Ring (Thakur, Rabenseifner & Gropp, "Optimization of Collective
Communication Operations in MPICH", IJHPCA 2005, sec. 4), run over NCCL's
channels (:mod:`simcluster.collectives.rings`): on n ranks with per-hop
latency alpha and bandwidth B,

    all_reduce      2(n-1) alpha + 2(n-1)/n * S/B   (reduce-scatter + all-gather)
    all_gather      (n-1) alpha + (n-1)/n * S/B     (reduce_scatter the same)
    broadcast       (n-1) alpha + S/B               (pipelined chain, root = group[0])

Hierarchical (2D ring, as Horovod's hierarchical all-reduce): k nodes with g group members each;
intra-node reduce-scatter ((g-1)/g S), g concurrent inter-node all-reduce
rings over ranks with the same local index (2(k-1)/k * S/g each), intra-node
all-gather ((g-1)/g S), one after another (not pipelined). NCCL has no such
algorithm, so ``auto`` never picks it on GPU clusters; it runs when named in
``collectives:``.

Latencies here are steps x route latency; on switched GPU clusters the planner
replaces a ring's or tree's with NCCL's model per protocol
(:mod:`simcluster.collectives.nccl`, :func:`simcluster.collectives.plan.variants`).

Tree: NCCL's double binary tree (:mod:`simcluster.collectives.tree`,
Sanders, Speck & Traeff 2009). Torus: dimension by dimension
(:mod:`simcluster.collectives.torus`). ``auto``: chosen per message size by
:mod:`simcluster.collectives.select` (the registered ``auto`` is its choice
for large messages).

Direct: every rank sends to every other rank at once (all_to_all: S/n per
pair, one step; all_gather / reduce_scatter: S/n per pair; all_reduce: a
direct reduce-scatter then a direct all-gather; broadcast: root to all).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from simcluster.catalogue import COLLECTIVE_OPS
from simcluster.collectives.rings import Ring, node_split, ring_pairs, rings
from simcluster.registry import Registry

if TYPE_CHECKING:
    from simcluster.topology.topology import Topology

OPS = COLLECTIVE_OPS  # the collectives, named in the catalogue (spec/ validates against it)

LARGE_MESSAGE = float(2**30)  # bytes: the size the registered ``auto`` chooses for


@dataclass(frozen=True)
class Phase:
    """Concurrent hops ``pairs`` (src, dst), each carrying ``factor * S`` bytes, after ``steps`` latencies.

    ``weights`` (optional, one per pair) scales each hop's bytes (a hop of a ring that
    carries a share of the buffer); ``latency`` (optional) replaces ``steps`` x the
    slowest hop's latency when the algorithm knows its critical path better.
    """

    pairs: tuple[tuple[int, int], ...]
    factor: float
    steps: int
    weights: tuple[float, ...] | None = None
    latency: float | None = None


Algorithm = Callable[[str, Sequence[int], "Topology"], list[Phase]]
ALGORITHMS: Registry[Algorithm] = Registry("collective algorithm")

__all__ = ["ALGORITHMS", "OPS", "Phase", "Ring", "chain_pairs", "node_split", "ring_pairs", "rings"]


def chain_pairs(group: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Hops of the chain g[0] -> g[1] -> ... -> g[n-1] (pipelined broadcast)."""
    return tuple((group[i], group[i + 1]) for i in range(len(group) - 1))


def _unsupported(name: str, op: str) -> ValueError:
    return ValueError(f"collective algorithm {name!r} does not implement {op}")


def ring_phase(rs: Sequence[Ring], factor: float, steps: int, n: int, topo: "Topology",
               root: int | None = None) -> Phase:
    """All rings at once: hop bytes factor x share; latency steps/n x the ring's summed hop latencies.

    A chunk crosses a ring's hops in turn, so ``steps`` ring steps on n members take
    steps/n rounds of the ring (exactly steps x alpha on a uniform ring; NCCL's tuning
    model likewise counts intra- and inter-node steps apart, src/graph/tuning.cc).
    With ``root`` (broadcast), the hops into the root are left out: a pipelined chain.
    """
    pairs: list[tuple[int, int]] = []
    weights: list[float] = []
    latency = 0.0
    for r in rs:
        hops = r.hops if root is None else tuple(h for h in r.hops if h[1] != root)
        pairs.extend(hops)
        weights.extend([r.share] * len(hops))
        latency = max(latency, steps / n * sum(topo.route_latency(a, b) for a, b in r.hops))
    return Phase(tuple(pairs), factor, steps, tuple(weights), latency)


@ALGORITHMS.register("ring")
def ring(op: str, group: Sequence[int], topo: "Topology") -> list[Phase]:
    """Ring algorithm (Thakur et al. 2005) over NCCL-style channels; broadcast is a pipelined chain."""
    n = len(group)
    rs = rings(group, topo)
    if op == "all_reduce":
        return [ring_phase(rs, 2 * (n - 1) / n, 2 * (n - 1), n, topo)]
    if op in ("all_gather", "reduce_scatter"):
        return [ring_phase(rs, (n - 1) / n, n - 1, n, topo)]
    if op == "broadcast":
        return [ring_phase(rs, 1.0, n - 1, n, topo, root=group[0])]
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


def hierarchical_applies(op: str, group: Sequence[int], topo: "Topology") -> bool:
    """k >= 2 nodes with the same number g >= 2 of members each, and an op with a 2D-ring form."""
    nodes = node_split(group, topo)
    return (len(nodes) >= 2 and len(nodes[0]) >= 2 and all(len(m) == len(nodes[0]) for m in nodes)
            and op in ("all_reduce", "all_gather", "reduce_scatter"))


@ALGORITHMS.register("hierarchical")
def hierarchical(op: str, group: Sequence[int], topo: "Topology") -> list[Phase]:
    """Intra-node rings, then concurrent inter-node rings per local index, then intra-node rings (2D ring).

    The phases run one after another (Horovod's hierarchical all-reduce). Where it does
    not apply (see :func:`hierarchical_applies`) it is the ring (direct for all_to_all).
    """
    if not hierarchical_applies(op, group, topo):
        return direct(op, group, topo) if op == "all_to_all" else ring(op, group, topo)
    nodes = node_split(group, topo)
    k, g = len(nodes), len(nodes[0])
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
def auto(op: str, group: Sequence[int], topo: "Topology") -> list[Phase]:
    """The algorithm :func:`plan_collective` picks for a large message (LARGE_MESSAGE bytes).

    ``plan_collective(..., algorithm="auto")`` picks per message size instead
    (:mod:`simcluster.collectives.select`).
    """
    from simcluster.collectives.select import choose

    return ALGORITHMS.get(choose(op, tuple(group), LARGE_MESSAGE, topo))(op, group, topo)


# algorithms in their own modules register themselves on import
from simcluster.collectives import torus as _torus, tree as _tree  # noqa: E402,F401
