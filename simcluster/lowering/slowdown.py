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

from typing import Any

from simcluster.costs.compute import ComputeModel
from simcluster.lowering.costing import TRAINING_LOOP_KERNEL_GAP_S, block_cost


def compute_slowdowns(spec: Any, topo: Any, layer_ops: list, shard: tuple, ranks: int) -> dict[int, float]:
    """Slowdown factor of every rank that is not 1 (``shard`` = (t, c, sp, flash))."""
    slow: dict[int, float] = dict(getattr(spec.cluster, "stragglers", {}) or {})
    node_devices = getattr(spec.cluster, "node_devices", None) or {}
    if not node_devices:
        return slow

    def layer_time(device: Any) -> float:
        cm = ComputeModel(device, spec.training.precision, kernel_overhead_s=TRAINING_LOOP_KERNEL_GAP_S)
        b = block_cost(layer_ops, cm, *shard)
        return b.fwd_s + b.bwd_s

    base = layer_time(topo.device)
    factor = {node: layer_time(dev) / base for node, dev in sorted(node_devices.items())}
    gpn = spec.cluster.gpus_per_node
    for r in range(ranks):
        f = factor.get(r // gpn)
        if f is not None and f != 1.0:
            slow[r] = slow.get(r, 1.0) * f
    return slow
