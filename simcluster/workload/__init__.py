"""The operator graph of a decoder-only transformer (knows nothing of devices or time)."""

from simcluster.workload.graph import build_operator_graph, layer_ops, ops_in_order
from simcluster.workload.ops import Op

__all__ = ["Op", "build_operator_graph", "layer_ops", "ops_in_order"]
