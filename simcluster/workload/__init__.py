"""The operators of a decoder-only transformer (knows nothing of devices or time)."""

from simcluster.workload.graph import ModelOps, model_ops
from simcluster.workload.ops import DTYPE_BYTES, Op

__all__ = ["DTYPE_BYTES", "ModelOps", "Op", "model_ops"]
