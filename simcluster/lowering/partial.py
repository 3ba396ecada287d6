"""Partial symmetry: simulate the replicas an asymmetry touches, one representative for the rest.

A straggler, a mixed-device node or a degraded link breaks rank symmetry only for the
GPUs it touches. Their data-parallel replicas (every pipeline stage and tensor/context
rank of each touched data-parallel index: a slow GPU holds back its tensor group at every
layer's collective and its pipeline at every send) are simulated GPU by GPU as in full
fidelity; every other replica does what symmetric fidelity's representative does, so one
representative per stage stands for all of them. The two meet in the data-parallel
collectives (:mod:`simcluster.lowering.comms`). Cost: the symmetric run plus the touched
replicas', t·c·p GPUs each, instead of all t·c·d·p.

Which GPUs a degraded link touches: :func:`simcluster.topology.degrade.touched_gpus` (the
nodes at its ends). Partial symmetry does not apply, and full fidelity runs, when it would
not save anything or cannot be confined: every replica touched, failed links or an
explicit graph (routes chosen around the failure, not a node's own), a spine or torus
link, or hybrid ZeRO sharding (shard groups smaller than the data-parallel group).

Nor when the data-parallel groups of one stage (one per tensor and context index) slow each
other down on links they share: GPUs sharing a NIC (fewer NICs than GPUs per node: DGX-2,
GPT-NeoX-20B's servers), an oversubscribed fat tree whose leaves the groups span (probed by
:func:`_groups_slow_each_other`: a ring all-reduce of the stage's first group takes longer
beside its mirrors than alone). Each group's collective starts when its own members are
ready, so the straggler's group runs after the others, not beside them on the shared link;
partial symmetry's one data-parallel task per stage starts them all at the straggler's time
and overstates their contention (a 1.3× straggler on tensor 4 × data 8 with ZeRO-2: 9 %
slower than full fidelity over a DGX-2's shared NICs, 6 % with 4 NICs on a DGX A100).
"""

from __future__ import annotations

from simcluster.collectives import plan_collective
from simcluster.collectives.transfer import uncontended_time
from simcluster.plan import Plan
from simcluster.topology.degrade import touched_gpus
from simcluster.topology.topology import Topology


#: Bytes of the probe all-reduce :func:`_groups_slow_each_other` times (large: bandwidth, not latency, decides).
PROBE_BYTES = float(2**30)


def explicit_replicas(plan: Plan, topo: Topology, slow: dict[int, float]) -> frozenset[int] | None:
    """Data-parallel indices to simulate explicitly, or None when partial symmetry does not apply."""
    cluster, grid = plan.spec.cluster, plan.grid
    if cluster.failed_links or cluster.graph is not None or plan.zero_shard < plan.d:
        return None
    ranks = {r for r, f in slow.items() if f != 1.0}
    if cluster.degraded_links:
        touched = touched_gpus(topo, cluster.degraded_links)
        if touched is None:
            return None
        ranks |= touched
    replicas = frozenset(grid.coords(r)[2] for r in ranks if r < grid.size)
    if len(replicas) >= grid.d or _groups_slow_each_other(plan, topo):
        return None
    return replicas


def _groups_slow_each_other(plan: Plan, topo: Topology) -> bool:
    """Whether the data-parallel groups of one stage slow each other down when they run together (module
    docstring): a probe ring all-reduce of the stage's first group takes longer beside its (tensor, context)
    mirrors than alone, stage by stage."""
    g = plan.grid
    mirrors = tuple(g.rank(tp, cp) for cp in range(g.c) for tp in range(g.t) if tp or cp)
    if not mirrors:
        return False
    bw = topo.link_bandwidth
    for pp in range(g.p):
        group = g.dp_group(g.rank(pp=pp))
        alone = uncontended_time(plan_collective("all_reduce", group, PROBE_BYTES, topo, algorithm="ring"), bw)
        beside = uncontended_time(plan_collective("all_reduce", group, PROBE_BYTES, topo, algorithm="ring",
                                                  mirror_offsets=mirrors), bw)
        if beside > alone * (1 + 1e-9):
            return True
    return False
