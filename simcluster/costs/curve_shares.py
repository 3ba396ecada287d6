"""Which fitted curve a compute part's seconds come from: GEMM, flash attention or memory-bound.

An iteration's compute time is a sum of kernel times, each read from one of the three curves of
:mod:`simcluster.costs.compute` (GEMM efficiency by shape, attention, bandwidth by kernel kind). The
error bars (:mod:`simcluster.metrics.uncertainty`) weight each curve's σ by its share of those seconds:
with the curves' errors fully correlated, ln T's σ from kernels is Σ_c s_c σ_c, s_c = t_c / Σ t
(the delta method, :mod:`simcluster.metrics.error_bars`).

:class:`TallyingModel` is a :class:`~simcluster.costs.compute.ComputeModel` that, besides answering, adds
each *outermost* call's seconds to the curve the call reads: ``gemm_time`` to ``gemm``; ``memory_time`` and
``quantize_time`` (FP8 casts, memory-bound) to ``memory``; ``attention_time`` to ``attention`` — flash
attention reads the attention curve; unfused attention (batched GEMMs and softmax/dropout passes inside
``attention_time``) is counted there too, so it carries the attention curve's σ, the largest of the
three. A GEMM's own FP8 quantize (called from inside ``gemm_time``) stays in ``gemm``: only outermost
calls count, so nothing is counted twice.
"""

from __future__ import annotations

from typing import Any, Callable

from simcluster.costs.compute import ComputeModel

#: The curves, in the order the error bars list them.
CURVES: tuple[str, ...] = ("gemm", "attention", "memory")


class TallyingModel(ComputeModel):
    """A copy of a compute model that tallies the seconds it answers by curve (module docstring)."""

    seconds: dict[str, float]
    _depth: int

    @classmethod
    def of(cls, model: ComputeModel) -> "TallyingModel":
        """A tallying copy of ``model`` (same device, precision, kernel and clock), its tally at 0."""
        tally = cls.__new__(cls)
        tally.__dict__.update(model.__dict__)
        tally.seconds = dict.fromkeys(CURVES, 0.0)
        tally._depth = 0
        return tally

    def _count(self, curve: str, call: Callable[..., float], *args: Any, **kwargs: Any) -> float:
        self._depth += 1
        try:
            t = call(*args, **kwargs)
        finally:
            self._depth -= 1
        if self._depth == 0:
            self.seconds[curve] += t
        return t

    def gemm_time(self, *args: Any, **kwargs: Any) -> float:
        return self._count("gemm", super().gemm_time, *args, **kwargs)

    def memory_time(self, *args: Any, **kwargs: Any) -> float:
        return self._count("memory", super().memory_time, *args, **kwargs)

    def quantize_time(self, *args: Any, **kwargs: Any) -> float:
        return self._count("memory", super().quantize_time, *args, **kwargs)

    def attention_time(self, *args: Any, **kwargs: Any) -> float:
        return self._count("attention", super().attention_time, *args, **kwargs)

    def shares(self) -> dict[str, float]:
        """Each curve's share of the tallied seconds (they sum to 1; all 0 before any call)."""
        total = sum(self.seconds.values())
        return {c: (s / total if total > 0 else 0.0) for c, s in self.seconds.items()}
