"""The search space: every layout of a workload's model and batch on at most N GPUs.

Candidate values of each key (before any check):

| key | candidates |
|---|---|
| tensor | 1 .. GPUs per node (tensor parallelism stays inside a node's NVLink domain) |
| pipeline | 1 .. layers (uneven stages allowed) |
| data | 1 .. N |
| context | 1, and powers of two c with seq_len / c >= 4,096 tokens per context rank |
| micro_batch | 1 .. global_batch |
| virtual_stages | 1 .. layers (> 1 only with pipeline > 1: on one stage the chunks just run in turn) |
| schedule | gpipe, 1f1b, zero-bubble, interleaved (with pipeline 1 only 1f1b, or the first allowed: one stage runs its microbatches in turn whatever the name) |
| sequence_parallel | false, true (true only with tensor > 1: without it, it changes nothing) |
| recompute | none, selective, full |
| zero_stage | 0 .. 3 (> 0 only when data × context > 1: without it, it changes nothing; 0 and 1 with model.moe) |
| expert | the divisors of model.moe.experts (1 for a dense model) |
| expert_tensor | the tensor degree (Megatron-Core's default; ``search.space`` may list others) |

GPUs used (tensor × pipeline × data × context) must lie in [min_gpus, max_gpus]: by
default max_gpus is the cluster's GPUs and min_gpus more than half of them (a layout that
leaves half the cluster idle is not what a throughput search is for; ``--gpus A-B`` sets
both). ``search.space`` (and ``--fix``) replace a key's candidates with the values given.

Validity is :func:`simcluster.spec.check_workload` and :func:`simcluster.spec.moe.moe_checks`, the checks ``load_workload`` runs,
applied to every layout through a light stand-in for the workload (:class:`_Candidate`);
partial layouts are checked on the way down with the keys not chosen yet at their
defaults, which only skips subtrees in which no layout can pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from simcluster.search.layout import FIELD_KEYS, Layout
from simcluster.spec import check_workload
from simcluster.spec.moe import moe_checks
from simcluster.spec.workload import WorkloadSpec

SCHEDULES = ("gpipe", "1f1b", "zero-bubble", "interleaved")
RECOMPUTE = ("none", "selective", "full")
MIN_TOKENS_PER_CONTEXT_RANK = 4096


@dataclass
class Space:
    """Candidate values of each layout field and the GPU bounds."""

    min_gpus: int
    max_gpus: int
    values: dict[str, list[Any]] = field(default_factory=dict)  # Layout field -> candidates


class _Parallelism:
    __slots__ = ("tensor", "pipeline", "data", "context", "sequence_parallel", "virtual_stages",
                 "stage_layers", "schedule", "zero_stage", "zero_shard", "expert", "expert_tensor")


class _Training:
    __slots__ = ("global_batch", "micro_batch", "recompute")


class _Candidate:
    """A workload with one layout's keys swapped in, without pydantic: what :func:`check_workload`
    reads of the layout comes from here, anything else from the workload itself."""

    __slots__ = ("model", "training", "parallelism", "cluster", "_spec")

    num_gpus = WorkloadSpec.num_gpus
    num_microbatches = WorkloadSpec.num_microbatches

    def __init__(self, spec: Any):
        self._spec, self.model, self.cluster = spec, spec.model, spec.cluster
        self.training, self.parallelism = _Training(), _Parallelism()
        self.training.global_batch = spec.training.global_batch
        self.parallelism.stage_layers = None
        self.parallelism.zero_shard = spec.parallelism.zero_shard  # a workload's hybrid sharding is kept
        self.set(Layout(1, 1, 1, 1, 1, 1, "1f1b", False, "none", 0))

    def __getattr__(self, name: str) -> Any:  # keys no layout changes (fidelity, collectives, ...)
        return getattr(self._spec, name)

    def set(self, layout: Layout) -> "_Candidate":
        for name, value in zip(Layout._fields, layout):
            setattr(self.training if name in ("micro_batch", "recompute") else self.parallelism, name, value)
        return self

    def ok(self, layout: Layout) -> bool:
        cand = self.set(layout)
        return not check_workload(cand) and not moe_checks(cand)  # type: ignore[arg-type]


def default_values(spec: Any, max_gpus: int) -> dict[str, list[Any]]:
    """The candidates of the table above for ``spec``'s model, batch and cluster."""
    m, tr = spec.model, spec.training
    ctx = [c for c in range(1, max_gpus + 1) if c & (c - 1) == 0 and (c == 1 or m.seq_len / c >= MIN_TOKENS_PER_CONTEXT_RANK)]
    return {
        "tensor": list(range(1, min(max_gpus, spec.cluster.gpus_per_node) + 1)),
        "pipeline": list(range(1, min(max_gpus, m.layers) + 1)),
        "data": list(range(1, max_gpus + 1)),
        "context": ctx,
        "micro_batch": list(range(1, tr.global_batch + 1)),
        "virtual_stages": list(range(1, m.layers + 1)),
        "schedule": list(SCHEDULES),
        "sequence_parallel": [False, True],
        "recompute": list(RECOMPUTE),
        "zero_stage": [0, 1] if m.moe is not None else [0, 1, 2, 3],  # ZeRO 2/3 not modelled with MoE
        "expert": [e for e in range(1, m.moe.experts + 1) if m.moe.experts % e == 0] if m.moe is not None else [1],
        "expert_tensor": [None],
    }


def make_space(spec: Any, max_gpus: int, min_gpus: int, limits: dict[str, list[Any]]) -> Space:
    """The space for ``spec`` with ``limits`` (dotted key -> allowed values) applied.

    Each numeric key's candidates are first checked one at a time (the others at their
    defaults), so that e.g. only the tensor degrees that divide the heads remain.
    """
    values = default_values(spec, max_gpus)
    by_key = {key: name for name, key in FIELD_KEYS.items()}
    for key, allowed in limits.items():
        values[by_key[key]] = list(dict.fromkeys(allowed))
    cand = _Candidate(spec)
    neutral = Layout(1, 1, 1, 1, 1, 1, "1f1b", False, "none", 0)
    for name in ("tensor", "pipeline", "data", "context", "micro_batch"):
        values[name] = [v for v in values[name] if cand.ok(neutral._replace(**{name: v}))]
    return Space(min_gpus, max_gpus, values)


def enumerate_groups(spec: Any, space: Space) -> Iterator[Layout]:
    """Every valid layout of ``space`` with recompute "none" and ZeRO stage 0, in a fixed
    order (tensor outermost): the other recompute modes and ZeRO stages of each are valid
    too (the checks do not read them; ``tests/search`` holds them to that)."""
    cand = _Candidate(spec)
    V = space.values
    lo, hi = space.min_gpus, space.max_gpus
    for t in V["tensor"]:
        for c in V["context"]:
            for p in V["pipeline"]:
                if t * c * p > hi:
                    continue
                for d in V["data"]:
                    gpus = t * c * p * d
                    if gpus < lo or gpus > hi:
                        continue
                    for mb in V["micro_batch"]:
                        if cand.ok(Layout(t, p, d, c, mb, 1, "1f1b", False, "none", 0)):
                            yield from _inner(cand, t, p, d, c, mb, V)


def _inner(cand: _Candidate, t: int, p: int, d: int, c: int, mb: int, V: dict[str, list[Any]]) -> Iterator[Layout]:
    for v in V["virtual_stages"]:
        if v > 1 and p == 1:
            continue  # model chunks on a single stage run one after another: nothing changes
        if v > 1 and not cand.ok(Layout(t, p, d, c, mb, v, "interleaved", False, "none", 0)):
            continue  # too many stages, or microbatches not a multiple of pipeline: for any schedule
        for sched in _schedules(V["schedule"], p):
            for sp in V["sequence_parallel"]:
                if sp and t == 1:
                    continue
                for e in V["expert"]:
                    for et in V["expert_tensor"]:
                        layout = Layout(t, p, d, c, mb, v, sched, sp, "none", 0, e, et)
                        if cand.ok(layout):
                            yield layout


def _schedules(allowed: list[str], p: int) -> list[str]:
    """The schedules worth trying on ``p`` stages: all of them with a pipeline; without one a single stage runs its
    microbatches one after another whatever the schedule is called, so one of them (1F1B when allowed), not the
    same layout under three names (a zero-bubble "schedule" on one stage would only split the weight gradients
    off, which no stack does without a pipeline)."""
    if p > 1:
        return allowed
    return ["1f1b"] if "1f1b" in allowed else [s for s in allowed if s != "interleaved"][:1]


def leaf_options(space: Space, layout: Layout) -> list[tuple[str, int]]:
    """The (recompute, ZeRO stage) pairs to try with a group (ZeRO > 0 only when data × context > 1)."""
    zeros = [z for z in space.values["zero_stage"] if z == 0 or layout.data * layout.context > 1]
    return [(rc, z) for rc in space.values["recompute"] for z in zeros]


def enumerate_layouts(spec: Any, space: Space) -> Iterator[Layout]:
    """Every valid layout of ``space``, in a fixed order (tensor outermost, ZeRO innermost)."""
    for group in enumerate_groups(spec, space):
        for rc, z in leaf_options(space, group):
            yield group._replace(recompute=rc, zero_stage=z)
