"""One point of the search space: a parallel layout, and how it is written and shown.

A :class:`Layout` fixes every key :data:`simcluster.spec.workload.SEARCH_KEYS` names; the
rest of the workload (model, global batch, precision, cluster) comes from the workload file.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from simcluster.spec.workload import SEARCH_KEYS

#: Layout field -> the workload's dotted key, in SEARCH_KEYS order.
FIELD_KEYS: dict[str, str] = {key.split(".")[1]: key for key in SEARCH_KEYS}


class Layout(NamedTuple):
    """Tensor, pipeline, data and context degrees, micro batch, virtual stages, schedule,
    sequence parallelism, recompute, ZeRO stage, and a mixture of experts' expert and
    expert-tensor degrees (None: the tensor degree, Megatron-Core's default)."""

    tensor: int
    pipeline: int
    data: int
    context: int
    micro_batch: int
    virtual_stages: int
    schedule: str
    sequence_parallel: bool
    recompute: str
    zero_stage: int
    expert: int = 1
    expert_tensor: int | None = None

    @property
    def gpus(self) -> int:
        """GPUs used: tensor × pipeline × data × context."""
        return self.tensor * self.pipeline * self.data * self.context

    def values(self) -> dict[str, Any]:
        """Dotted workload key -> value (what ``--set`` would write)."""
        return {FIELD_KEYS[name]: value for name, value in zip(self._fields, self)}

    def overrides(self) -> list[str]:
        """The layout as ``--set`` strings (``key=value``; booleans lower-case, no expert-tensor degree ``null``): its
        own keys; with those it decides on a workload, :func:`simcluster.search.memory.layout_overrides`."""
        return [f"{k}={str(v).lower() if isinstance(v, bool) else ('null' if v is None else v)}"
                for k, v in self.values().items()]

    def label(self) -> str:
        """A compact one-line name, e.g. ``t8 p8 d16 mb1 1f1b rc=full``; options at their
        defaults (c 1, v 1, no SP, ZeRO 0) are left out."""
        parts = [f"t{self.tensor}", f"p{self.pipeline}", f"d{self.data}"]
        if self.context > 1:
            parts.append(f"c{self.context}")
        parts.append(f"mb{self.micro_batch}")
        parts.append(self.schedule if self.virtual_stages == 1 else f"{self.schedule} v{self.virtual_stages}")
        if self.sequence_parallel:
            parts.append("sp")
        parts.append(f"rc={self.recompute}")
        if self.zero_stage:
            parts.append(f"zero{self.zero_stage}")
        if self.expert > 1:
            parts.append(f"ep{self.expert}")
        if self.expert_tensor is not None:
            parts.append(f"etp{self.expert_tensor}")
        return " ".join(parts)


def layout_of(spec: Any) -> Layout:
    """The layout a validated workload runs."""
    p, tr = spec.parallelism, spec.training
    return Layout(p.tensor, p.pipeline, p.data, p.context, tr.micro_batch, p.virtual_stages, p.schedule,
                  bool(p.sequence_parallel), tr.recompute, p.zero_stage, p.expert, p.expert_tensor)


def layout_from_values(values: dict[str, Any]) -> Layout:
    """The layout of a row with dotted keys (inverse of :meth:`Layout.values`)."""
    out = Layout(*(values[FIELD_KEYS[name]] for name in Layout._fields))
    et = out.expert_tensor  # a table read back (CSV) holds a missing expert_tensor as NaN
    return out._replace(expert=int(out.expert),
                        expert_tensor=None if et is None or et != et else int(et))
