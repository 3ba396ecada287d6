"""Error bars: how the σ of each part of a prediction combine into its interval.

Model (docs/validation.md, "Error bars"). The iteration time T of the average simulated rank
splits into parts the summary already separates (:func:`simcluster.metrics.summary._breakdown`):
compute (forward, backward), recompute, optimizer, host wait, bubble, and exposed communication by kind
(tp, pp, dp). Each part i of duration t_i carries a relative log-normal uncertainty σ_i: the
true duration is t_i · exp(σ_i · ε_i), ε_i standard normal. To first order in σ (the
delta method; Fenton 1960 for sums of log-normals),

    ln T_true − ln T ≈ Σ_i w_i σ_i ε_i,      w_i = t_i / T,

so with parts in correlation groups G (ε the same inside a group, independent across groups)

    σ_T² = Σ_G (Σ_{i∈G} w_i σ_i)²  +  σ_stack²,

and the interval at level L is [T·e^(−zσ_T), T·e^(+zσ_T)], z = Φ⁻¹((1+L)/2) (1.2816 at 80 %).

Correlation groups, and why:

- compute, recompute, optimizer and bubble form one group: they come from the same fitted
  curves of the same device (a curve that is 5 % slow for one GEMM is slow for the next of a
  similar shape), and the bubble is idle time waiting for other stages' compute
  ((p − 1) microbatch slots in 1F1B, Narayanan et al. 2021 §2.2.1), so it scales with it.
  Full correlation is the conservative choice (it adds σ linearly). Host wait (DeepSpeed ZeRO-3's
  per-rank host loops) stays in this group with the compute σ, as it was priced before it was told
  apart from compute; its own constant (the host time of an eager op, 5–25 µs) has no σ of its own.
- exposed communication of each kind is its own group: tensor-parallel traffic runs on NVLink,
  data-parallel and pipeline traffic mostly on InfiniBand, each with its own calibrated link
  efficiency, and none of them shares a constant with the compute curves. To first order only
  the exposed share moves T; communication hidden under compute does not.
- the software stack (``training.framework``) is one independent factor on all of T.

Derived figures scale as 1/T (tokens/s = tokens / T, MFU and TFLOP/s = FLOPs / T), so their
intervals are the time interval inverted: [x·T/T_high, x·T/T_low]. Peak memory has its own
σ_M (formula and allocator terms, :func:`simcluster.metrics.uncertainty.memory_sigma`) and the same
interval form.

Where each σ comes from: :mod:`simcluster.metrics.uncertainty`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Iterable, Mapping, Sequence

#: The default interval level (the contract's 80 %).
LEVEL = 0.8


def z_score(level: float = LEVEL) -> float:
    """The standard normal quantile of a two-sided interval at ``level``: Φ⁻¹((1 + level)/2)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    return NormalDist().inv_cdf(0.5 + level / 2.0)


@dataclass(frozen=True)
class Part:
    """One part of the iteration: its seconds, its σ and its correlation group."""

    name: str
    seconds: float
    sigma: float
    group: str


def combined_sigma(parts: Sequence[Part], common: float = 0.0) -> float:
    """σ_T of the sum of ``parts`` (module docstring): within a group the weighted σ add, groups
    and the ``common`` factor (the stack's) add in quadrature. 0 when the parts take no time."""
    total = sum(p.seconds for p in parts)
    if total <= 0.0:
        return 0.0
    groups: dict[str, float] = {}
    for p in parts:
        groups[p.group] = groups.get(p.group, 0.0) + p.seconds / total * p.sigma
    return math.sqrt(sum(s * s for s in groups.values()) + common * common)


def interval(value: float, sigma: float, level: float = LEVEL) -> list[float]:
    """[value·e^(−zσ), value·e^(+zσ)]: the log-normal interval at ``level`` (σ = 0: [value, value])."""
    k = math.exp(z_score(level) * sigma)
    return [value / k, value * k]


def inverted(value: float, time: float, time_interval: Sequence[float]) -> list[float]:
    """The interval of a figure proportional to 1/T (tokens/s, MFU, TFLOP/s): [v·T/T_high, v·T/T_low]."""
    lo, hi = time_interval
    if time <= 0.0 or lo <= 0.0:
        return [value, value]
    return [value * time / hi, value * time / lo]


#: Figures proportional to 1/T: their interval is the time interval inverted.
PER_TIME = ("tokens_per_s", "mfu", "hfu", "model_tflops_per_gpu", "hardware_tflops_per_gpu")
#: Memory figures beside the peak: their interval is the peak's, relative (the same σ).
MEMORY_LIKE = ("peak_memory_reserved_bytes", "torch_max_memory_allocated_bytes", "torch_max_memory_reserved_bytes")


def metric_interval(metric: str, predicted: float, summary: Mapping[str, object]) -> list[float]:
    """The interval of summary figure ``metric`` (value ``predicted``) from a summary's intervals:
    its own ``METRIC_interval`` where the summary has one, else the inverted time interval for the
    figures of :data:`PER_TIME`; the allocator's reserved peak and PyTorch's statistics (:data:`MEMORY_LIKE`) take
    the peak memory's relative interval (the same log-normal σ, :func:`simcluster.metrics.uncertainty.memory_sigma`;
    the reserve's own spread is not quantified apart)."""
    own = summary.get(f"{metric}_interval")
    if isinstance(own, (list, tuple)) and len(own) == 2:
        return [float(own[0]), float(own[1])]
    mem, mem_int = summary.get("peak_memory_bytes"), summary.get("peak_memory_bytes_interval")
    if metric in MEMORY_LIKE and isinstance(mem, (int, float)) and mem > 0 \
            and isinstance(mem_int, (list, tuple)):
        return [float(mem_int[0]) * predicted / mem, float(mem_int[1]) * predicted / mem]
    if metric not in PER_TIME:
        raise KeyError(f"no interval for summary figure {metric!r}")
    T, t_int = summary.get("iteration_time_s"), summary.get("iteration_time_s_interval")
    if not isinstance(T, (int, float)) or not isinstance(t_int, (list, tuple)):
        raise KeyError("the summary has no iteration time interval")
    return inverted(predicted, float(T), [float(t_int[0]), float(t_int[1])])


def inside(value: float, bounds: Sequence[float]) -> bool:
    """Whether ``value`` lies in the closed interval ``bounds`` = [low, high]."""
    return bounds[0] <= value <= bounds[1]


def coverage(rows: Iterable[Mapping[str, object]]) -> float:
    """The share of ``rows`` whose ``inside`` is true (rows without one are left out; 0 for none):
    for intervals at level L, about L when the σ are right."""
    flags = [bool(r["inside"]) for r in rows if "inside" in r]
    return sum(flags) / len(flags) if flags else 0.0


def iteration_parts(breakdown: Mapping[str, float], compute: float, comm: float) -> list[Part]:
    """The parts of one (averaged) rank's breakdown with their σ and groups (module docstring)."""
    parts = [Part(k, breakdown.get(k, 0.0), compute, "compute")
             for k in ("compute", "recompute", "optimizer", "host_wait", "bubble")]
    parts += [Part(f"exposed_{k}_comm", breakdown.get(f"exposed_{k}_comm", 0.0), comm, f"comm-{k}")
              for k in ("tp", "pp", "dp")]
    return parts
