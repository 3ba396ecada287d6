"""How long compute takes and how much memory a GPU holds.

- :class:`ComputeModel` (``compute.py``): kernel times from a roofline with a
  shape-dependent efficiency fitted to H100 measurements (``efficiency.py``,
  refit with ``python -m simcluster.costs.calibration``).
- :func:`stage_memory` (``memory.py``): bytes held by one GPU of a pipeline
  stage (ZeRO model states, Korthikanti activations, workspace).
- :func:`replay_reserve` (``reserve.py``): what PyTorch's CUDA caching allocator
  (modelled in ``allocator.py``) reserves beyond those tensors, by replaying a step, within the
  room the device leaves (with its cache flushes when that room runs out).
- ``flops.py``: closed-form FLOPs per iteration (Narayanan 2021, Korthikanti 2022).
- ``params.py``: parameter counts.
"""

from simcluster.costs.compute import ComputeModel
from simcluster.costs.flops import (
    hardware_flops_per_iteration,
    model_flops_per_iteration,
    narayanan_flops,
)
from simcluster.costs.memory import MemoryBreakdown, activation_bytes_per_layer, memory_per_stage, stage_memory
from simcluster.costs.params import layer_params, total_params

__all__ = [
    "ComputeModel",
    "MemoryBreakdown",
    "activation_bytes_per_layer",
    "hardware_flops_per_iteration",
    "layer_params",
    "memory_per_stage",
    "model_flops_per_iteration",
    "narayanan_flops",
    "stage_memory",
    "total_params",
]
