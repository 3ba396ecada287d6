"""Heterogeneous compute: GPUs slower than their peers (stragglers, other devices).

Only simulated with every rank explicit (``fidelity: full``): a rank's compute
durations are multiplied by its slowdown factor.

- ``cluster.stragglers: {rank: f}``: the GPU computes f times slower.
- ``cluster.node_devices: {node: device}``: the node's GPUs compute in proportion
  to a layer's time on their device, T_layer(device) / T_layer(cluster device),
  with T_layer a layer's forward plus backward time from the compute model (one
  factor for every block: an approximation, since the GEMM/memory-bound mix of a
  layer barely changes between its blocks).
"""

from __future__ import annotations

from simcluster.plan import Plan, compute_model
from simcluster.plan.costing import model_blocks
from simcluster.topology.devices import Device
from simcluster.topology.topology import Topology
from simcluster.workload import model_ops


def compute_slowdowns(plan: Plan, topo: Topology) -> dict[int, float]:
    """Slowdown factor of every rank that is not 1."""
    cluster = plan.spec.cluster
    slow: dict[int, float] = dict(cluster.stragglers)
    if not cluster.node_devices:
        return slow

    spec, ops = plan.spec, model_ops(plan.spec.model, plan.spec.training)

    def layer_time(device: Device) -> float:  # the plan's block costs on another device
        b = model_blocks(ops, compute_model(spec, device), plan.t, plan.c, spec.parallelism.sequence_parallel,
                         spec.training.flash_attention, plan.stack).layer
        return b.fwd_s + b.bwd_s

    base = plan.blocks.layer.fwd_s + plan.blocks.layer.bwd_s
    factor = {node: layer_time(dev) / base for node, dev in sorted(cluster.node_devices.items())}
    gpn = cluster.gpus_per_node
    for r in range(plan.grid.size):
        f = factor.get(r // gpn)
        if f is not None and f != 1.0:
            slow[r] = slow.get(r, 1.0) * f
    return slow
