"""One pass's steps summed in closed form, and the compute's slowdown beside communication.

:class:`PassTime` sums a unit's steps (:mod:`simcluster.plan.steps`) by what they are: compute and the
collectives that block the compute stream in series, the collectives beside a compute (the context ring,
userbuffers' tensor collectives, DualPipe's all-to-alls) at the engine's contention rate (:func:`beside`),
and ZeRO's gathers and reduce-scatters apart, for :mod:`simcluster.search.estimate` to place.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

from simcluster.costs.contention import OVERLAP_COMPUTE_SLOWDOWN
from simcluster.plan.steps import HOST_PHASE, Step


def beside(compute: float, comm: float, blocked: float = 0.0, slowdown: float = OVERLAP_COMPUTE_SLOWDOWN) -> float:
    """Seconds of ``compute`` with ``comm`` seconds of communication issued beside it at its start, the compute
    progressing at 1 − ``slowdown`` of its speed while the communication runs (:mod:`simcluster.costs.contention`,
    the engine's rate): it ends at compute + slowdown·comm when the communication ends first, else with the
    communication, so max(compute + slowdown·comm, comm). ``blocked``: seconds of the span in which no compute runs
    (tensor-parallel collectives on the compute stream), which the communication beside slows not: its slowdown
    is taken over the compute's share of the span."""
    share = (compute - blocked) / compute if compute > 0 else 0.0
    return max(compute + slowdown * comm * share, comm)


@dataclass
class PassTime:
    """Seconds of the steps of one pass, by what they are."""

    compute: float = 0.0
    recompute: float = 0.0
    tp: float = 0.0
    gather: float = 0.0  # ZeRO-3 weight gathers (data-parallel stream)
    reduce: float = 0.0  # ZeRO >= 2 gradient reduce-scatters (data-parallel stream)
    host: float = 0.0  # host work on the compute stream, the GPU idle (phase HOST_PHASE: DeepSpeed's zero.prep)

    def add(self, steps: tuple[Step, ...], coll: Callable[[Step], float]) -> "PassTime":
        """Add ``steps``: compute and blocking collectives in series, a ring (and userbuffers' tensor collectives) beside its compute; MoE
        all-to-alls block (counted with the tensor-parallel ones) or, under DualPipe, run beside the
        layer's compute until its last step, which waits for them (:mod:`simcluster.plan.moe`)."""
        ring = side = a2a = mark = 0.0
        for st in steps:
            if st.what == "compute":
                if st.overlap and a2a:
                    span = self.compute + self.recompute - mark
                    self.tp += beside(span, a2a) - span
                    a2a = 0.0
                secs = beside(st.seconds, max(ring, side))
                ring = side = 0.0
                if st.phase == "recompute":
                    self.recompute += secs
                elif st.phase == HOST_PHASE:
                    self.host += secs
                else:
                    self.compute += secs
            elif st.what == "ring":
                ring = coll(st)
            elif st.what == "tp" and st.overlap:  # userbuffers: beside the next compute, one after another
                side += coll(st)
            elif st.what == "tp" or (st.what == "a2a" and not st.overlap):
                self.tp += coll(st)
            elif st.what == "a2a":
                if not a2a:
                    mark = self.compute + self.recompute
                a2a += coll(st)
            elif st.what == "gather":
                self.gather += coll(st)
            else:
                self.reduce += coll(st)
        return self

    def blend(self, other: "PassTime", w: float) -> "PassTime":
        """(1 − w)·self + w·other, field by field: a layer averaged over dense and MoE layers."""
        return PassTime(*((1 - w) * getattr(self, f) + w * getattr(other, f) for f in _FIELDS))

    def plus(self, other: "PassTime") -> "PassTime":
        """Both passes' steps, field by field (a B pass and its W pass)."""
        return PassTime(*(getattr(self, f) + getattr(other, f) for f in _FIELDS))

    @property
    def serial(self) -> float:
        """What the compute stream waits for: compute, recompute, tensor-parallel collectives and host work."""
        return self.compute + self.recompute + self.tp + self.host


_FIELDS = tuple(f.name for f in fields(PassTime))
