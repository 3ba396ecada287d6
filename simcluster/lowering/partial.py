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
"""

from __future__ import annotations

from simcluster.plan import Plan
from simcluster.topology.degrade import touched_gpus
from simcluster.topology.topology import Topology


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
    return replicas if len(replicas) < grid.d else None
