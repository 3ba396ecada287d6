"""``auto``: pick the algorithm per collective and message size, as NCCL's tuner does.

NCCL predicts, for every algorithm it can run, time = latency + size /
bandwidth from its topology model and takes the fastest (src/graph/tuning.cc,
ncclTopoTuneModel; src/enqueue.cc, topoGetAlgoInfo). ``auto`` does the same
with this simulator's own plans: each candidate's phases, planned for S = 1
byte (with the mirrored groups' load), predict

    t(S) = sum over phases of  latency + S * nbytes_1 * max_l (weight_l / bandwidth_l)

(the uncontended time the engine gives the plan), and the smallest t(S)
wins, the first candidate on ties. Candidates:

- all_to_all: direct;  send: the route;  broadcast: ring;
- GPU clusters (switched fabrics), as NCCL (src/graph/tuning.cc, v2.8-v2.12:
  ``if (coll != ncclFuncAllReduce && a != NCCL_ALGO_RING) continue;``):
  all_reduce: ring, and tree across >= 2 nodes; all_gather, reduce_scatter: ring.
  Each in one variant per NCCL protocol (LL, LL128, Simple) with NCCL's latency
  and bandwidth factor (:mod:`simcluster.collectives.nccl`), so ``auto`` also
  picks the protocol by size. ``hierarchical`` (a 2D ring NCCL does not have)
  runs only when named in ``collectives:``. Not modelled: CollNet (SHARP
  switches and a plugin), NVLS (2.17+, NVLink SHARP on Hopper NVSwitch
  systems), PAT (2.23+, one GPU per node all-gather/reduce-scatter).
- tori (TPU): ring; torus when the group is a box of the torus; multipod.

So tree wins for small messages across many nodes (log k latency against
2(n-1) ring steps) and ring for large ones (tree's bus bandwidth is 0.92 of
the ring's, as in NCCL's model); inside a node it is the ring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

from simcluster.collectives.algorithms import node_split
from simcluster.collectives.torus import box_lines, multipod_applies
from simcluster.collectives.transfer import Transfer, byte_time

if TYPE_CHECKING:
    from simcluster.topology.topology import Topology


def candidates(op: str, group: Sequence[int], topo: "Topology") -> list[str]:
    """Algorithms ``auto`` considers for ``op`` on ``group`` (see the module docstring)."""
    if op == "all_to_all":
        return ["direct"]
    if op == "broadcast":
        return ["ring"]
    out = ["ring"]
    if topo.is_torus:
        if box_lines(group, topo):
            out.append("torus")
        if multipod_applies(op, group, topo):
            out.append("multipod")
        return out
    if op == "all_reduce" and len(node_split(group, topo)) >= 2:
        out.append("tree")
    return out


def cost(unit: Sequence[Transfer], topo: "Topology") -> tuple[float, float]:
    """(latency L, seconds per byte K) of a plan made for S = 1: t(S) = L + K * S uncontended."""
    bw = topo.link_bandwidth
    L = K = 0.0
    for t in unit:
        L += t.latency
        K += byte_time(t, bw)
    return L, K


Planner = Callable[[str], list[tuple[Transfer, ...]]]
#: A candidate of ``auto``: (algorithm name, latency L, seconds per byte K, its plan for S = 1).
Option = tuple[str, float, float, tuple[Transfer, ...]]


def options(op: str, group: tuple[int, ...], topo: "Topology", plan_unit: Planner) -> list[Option]:
    """Every candidate's variants (one per NCCL protocol) with their cost: [(name, L, K, unit plan)]."""
    out: list[Option] = []
    for name in candidates(op, group, topo):
        for unit in plan_unit(name):
            out.append((name, *cost(unit, topo), unit))
    return out


def pick(opts: Sequence[Option], nbytes: float) -> Option:
    """The option with the smallest L + K * nbytes (the first on ties)."""
    return min(opts, key=lambda o: o[1] + o[2] * nbytes)


def choose(op: str, group: Sequence[int], nbytes: float, topo: "Topology",
           mirror_offsets: Sequence[int] = ()) -> str:
    """The name of the algorithm ``auto`` runs for ``op`` of ``nbytes`` on ``group``."""
    from simcluster.collectives.plan import auto_options

    if op == "send" or len(group) < 2:
        return "direct" if op == "send" else "ring"
    return pick(auto_options(op, tuple(int(r) for r in group), topo, tuple(int(o) for o in mirror_offsets)), nbytes)[0]
