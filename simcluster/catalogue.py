"""The catalogue: every name a user may write in a workload or cluster file, and the devices.

A leaf module (it imports only :mod:`simcluster.registry`), so that :mod:`simcluster.spec`
can validate names without importing the packages that own what the names stand for:

| names | owned by (the registry of real objects) |
|---|---|
| :data:`SCHEDULES` | the pipeline schedules (``SCHEDULES`` of ``simcluster.plan.schedules``) |
| :data:`FABRICS` | the fabric builders (``simcluster.topology.fabrics.FABRICS``) |
| :data:`COLLECTIVE_ALGORITHMS` | the collective algorithms (``simcluster.collectives.ALGORITHMS``) |
| :data:`COLLECTIVE_OPS` | the collectives themselves (``simcluster.collectives.OPS`` is this tuple) |
| :data:`PRECISIONS`, :data:`OPTIMIZERS`, :data:`RECOMPUTE` | the cost model's tables (``simcluster.costs``) |

``tests/test_catalogue.py`` checks that each list of names equals its owner's registry, so the
two cannot drift apart. Devices are data, not behaviour, so the catalogue holds them whole
(:data:`DEVICES`); :mod:`simcluster.topology.devices` is the same registry.

Device figures are dense (no sparsity) tensor-core peaks for 16-bit inputs with fp32
accumulation, HBM capacity and bandwidth, each from the vendor's datasheet:

- V100 SXM2 32 GB: NVIDIA Tesla V100 datasheet (2020): 125 TFLOP/s fp16 tensor,
  15.7 TFLOP/s fp32, 900 GB/s HBM2.
- A100 SXM4 40/80 GB: NVIDIA A100 datasheet (2021): 312 TFLOP/s bf16/fp16,
  19.5 TFLOP/s fp32, 1,555 GB/s (40 GB) and 2,039 GB/s (80 GB).
- H100 SXM5 80 GB: NVIDIA H100 datasheet (2023): 989 TFLOP/s bf16 dense,
  67 TFLOP/s fp32, 3.35 TB/s HBM3.
- H200 SXM 141 GB: NVIDIA H200 datasheet (2024): 989 TFLOP/s bf16 dense,
  67 TFLOP/s fp32, 4.8 TB/s HBM3e.
- TPU v3: Google Cloud TPU system architecture page: 123 TFLOP/s bf16 per chip,
  32 GiB HBM per chip, 900 GB/s.
- TPU v4: Jouppi et al., ISCA 2023, Table 2: 275 TFLOP/s bf16, 32 GiB HBM2,
  1,200 GB/s.

FP8 tensor cores (:data:`FP8_PEAK_FLOPS`, ``training.precision: fp8``): Hopper only. NVIDIA H100
datasheet (2023): H100 SXM 3,958 TFLOP/s FP8 *with sparsity*, 1,979 dense; H200 datasheet
(2024): the same 1,979 dense (same GH100 die and clocks); the H800 (preset ``hgx-h800``) is an
H100 with a slower NVLink, same tensor cores. V100, A100 and TPU v3/v4 have no FP8 tensor cores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from simcluster.registry import Registry

GiB = 1024**3

#: Pipeline schedules (``parallelism.schedule``).
SCHEDULES: tuple[str, ...] = ("gpipe", "1f1b", "interleaved", "zero-bubble", "dualpipe")
#: Fabrics (``intra_node.fabric``, ``inter_node.fabric``).
FABRICS: tuple[str, ...] = ("nvswitch", "nvlink-mesh", "pcie", "fat-tree", "rail-optimized", "torus", "none")
#: Collective algorithms (the values of a workload's ``collectives:`` section).
COLLECTIVE_ALGORITHMS: tuple[str, ...] = ("auto", "direct", "hierarchical", "multipod", "ring", "torus", "tree")
#: Collectives (the keys of a workload's ``collectives:`` section).
COLLECTIVE_OPS: tuple[str, ...] = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all", "send")

Precision = Literal["bf16", "fp16", "fp32", "fp8"]
Optimizer = Literal["adam", "sgd"]
Recompute = Literal["none", "selective", "full"]
Framework = Literal["megatron", "deepspeed", "pytorch", "jax"]
#: ``training.precision``, ``training.optimizer``, ``training.recompute``.
PRECISIONS: tuple[str, ...] = get_args(Precision)
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
RECOMPUTE: tuple[str, ...] = get_args(Recompute)
#: ``training.framework``: the software stacks (``simcluster.costs.frameworks.FRAMEWORKS``).
FRAMEWORKS: tuple[str, ...] = get_args(Framework)


@dataclass(frozen=True)
class Device:
    """One accelerator's datasheet figures, SI units."""

    name: str
    peak_flops: float  # dense 16-bit tensor FLOP/s
    peak_flops_fp32: float  # dense fp32 FLOP/s (non tensor core)
    memory_bytes: float
    memory_bandwidth: float  # bytes/s
    vendor: str = "nvidia"
    #: [low, high] the true dense 16-bit peak lies in where it is not known (a power-capped part), else None
    peak_flops_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.peak_flops_range is not None:  # a list (JSON, YAML) or a tuple: a hashable pair of floats
            object.__setattr__(self, "peak_flops_range", tuple(float(x) for x in self.peak_flops_range))

    def to_dict(self) -> dict[str, Any]:
        """The figures as a plain dict (field name -> value)."""
        return asdict(self)


#: Devices by name (``device:`` of a cluster file).
DEVICES: Registry[Device] = Registry("device")

for _d in (
    Device("v100", 125e12, 15.7e12, 32 * GiB, 900e9),
    Device("a100-40gb", 312e12, 19.5e12, 40 * GiB, 1555e9),
    Device("a100-80gb", 312e12, 19.5e12, 80 * GiB, 2039e9),
    Device("h100", 989e12, 67e12, 80 * GiB, 3.35e12),
    Device("h200", 989e12, 67e12, 141e9, 4.8e12),
    Device("tpu-v3", 123e12, 123e12 / 8, 32 * GiB, 900e9, vendor="google"),
    Device("tpu-v4", 275e12, 275e12 / 8, 32 * GiB, 1200e9, vendor="google"),
):
    DEVICES.add(_d.name, _d)

#: Dense FP8 tensor-core peaks, FLOP/s, of the devices that have FP8 (module docstring); a device
#: not listed has none, and ``training.precision: fp8`` on it is an error.
FP8_PEAK_FLOPS: dict[str, float] = {"h100": 1979e12, "h200": 1979e12}

#: Devices with Hopper's tensor cores (TMA, wgmma), where FlashAttention-3 and cuDNN's fused attention
#: run and ``training.attention_kernel`` chooses between them and FlashAttention-2.
HOPPER_DEVICES: tuple[str, ...] = ("h100", "h200")
