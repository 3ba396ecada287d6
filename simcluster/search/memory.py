"""Peak memory of a layout from :func:`simcluster.costs.stage_memory`, as the simulator's summary
computes it, so that pruning by memory agrees with the simulator's ``fits_in_memory``.

The simulator's summary takes, for every pipeline stage s, ``stage_memory`` with the stage's
layers (all its model chunks), the embedding on the first stage, the logits on the last, and
``ceil(peak forward units in flight / v)`` microbatches, then the largest stage. Here:

- microbatches in flight: :func:`simcluster.plan.schedules.microbatches_in_flight`, the
  count the simulator's summary uses;
- only the stages that can hold the peak: the first, the last, and among the others the
  first stage of each distinct layer count (microbatches in flight never grow with s, and
  memory grows with both);
- ``stage_memory`` is evaluated once per combination and count in flight (it is the larger of
  moments of the step, :func:`simcluster.costs.memory.stage_memory`, so not affine in the count;
  pruning keeps a margin of :data:`MARGIN` so that it can only keep a layout, never drop one).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING

from simcluster.costs.compute import ComputeModel
from simcluster.costs.memory import stage_memory
from simcluster.costs.partial_recompute import partial, recomputed_layers
from simcluster.plan.ep_overlap import applies, warm_extra
from simcluster.plan.moe import build_moe_plan
from simcluster.plan.moe_memory import moe_stage_memory
from simcluster.plan.partition import model_chunks, partition_layers
from simcluster.plan.schedules import microbatches_in_flight
from simcluster.spec.workload import WorkloadSpec

if TYPE_CHECKING:
    from simcluster.search.layout import Layout

MARGIN = 1e-9  # relative: prune only above capacity × (1 + MARGIN)


@lru_cache(maxsize=4096)
def stage_layers(layers: int, p: int, v: int, mtp: int = 0) -> tuple[int, ...]:
    """Layers each pipeline stage holds over all its model chunks (the default, even split), the last
    stage's ``mtp`` multi-token-prediction layers included (:func:`simcluster.plan.partition.model_chunks`)."""
    chunks = partition_layers(layers, p, v)
    counts = [sum(len(chunks[c * p + s]) for c in range(v)) for s in range(p)]
    counts[-1] += mtp
    return tuple(counts)


@lru_cache(maxsize=4096)
def chunk_spread(layers: int, p: int, v: int) -> tuple[int, float]:
    """(layers of the largest model chunk, ((largest − smallest) / smallest)²); the second is 0 unless
    every stage holds the same layers in chunks of unequal size."""
    sizes = [len(chunk) for chunk in partition_layers(layers, p, v)]
    if len(set(stage_layers(layers, p, v))) > 1 or min(sizes) == 0:
        return max(sizes), 0.0
    return max(sizes), ((max(sizes) - min(sizes)) / min(sizes)) ** 2


@lru_cache(maxsize=4096)
def peak_stages(layers: int, p: int, v: int, mtp: int = 0) -> tuple[tuple[int, int, bool, bool], ...]:
    """(stage, layers, has embedding, has logits) of the stages that can hold the peak."""
    counts = stage_layers(layers, p, v, mtp)
    out = [(0, counts[0], True, p == 1)]
    if p > 1:
        out.append((p - 1, counts[p - 1], False, True))
    seen: set[int] = set()
    for s in range(1, p - 1):
        if counts[s] not in seen:
            seen.add(counts[s])
            out.append((s, counts[s], False, False))
    return tuple(out)


def layout_spec(spec: WorkloadSpec, *, t: int, c: int, d: int, mb: int, sp: bool, e: int, et: int | None,
                schedule: str, p: int | None = None, v: int | None = None, rc: str | None = None,
                zero: int | None = None) -> WorkloadSpec:
    """``spec`` with one layout's keys swapped in (no validation: the space checked the layout)."""
    par: dict[str, object] = {"tensor": t, "context": c, "data": d, "sequence_parallel": sp, "expert": e,
                              "expert_tensor": et, "schedule": schedule}
    par.update({k: x for k, x in (("pipeline", p), ("virtual_stages", v), ("zero_stage", zero)) if x is not None})
    tr: dict[str, object] = {"micro_batch": mb, **({"recompute": rc} if rc is not None else {})}
    for key, value in dependent_values(spec, t=t, sp=sp, rc=rc, zero=zero, p=p, e=e, schedule=schedule).items():
        section, name = key.split(".")
        (par if section == "parallelism" else tr)[name] = value
    return spec.model_copy(update={"parallelism": spec.parallelism.model_copy(update=par),
                                   "training": spec.training.model_copy(update=tr)})


def dependent_values(spec: WorkloadSpec, *, t: int, sp: bool, rc: str | None,
                     zero: int | None = None, p: int | None = None, e: int | None = None,
                     schedule: str | None = None) -> dict[str, object]:
    """Workload keys a layout decides besides the searched ones, where the workload sets them: userbuffers'
    overlap (``parallelism.tp_comm_overlap``) only with sequence-parallel tensor groups, the overlapped weight
    gather (``parallelism.overlap_param_gather``) only at ZeRO 1 or 2, the deferred output-layer weight gradient
    (``parallelism.defer_embedding_wgrad_compute``) only with a pipeline, the workload's selective policy
    (``training.recompute_saves``) and Megatron-Core's recomputed modules (``training.recompute_modules``) only with
    selective recompute, its partial full recompute
    (``training.recompute_num_layers``) only with full recompute, Megatron-Core's merged 1F1B
    (``parallelism.moe_a2a_overlap`` and ``delay_wgrad_compute``) only where the layout can merge passes
    (:func:`simcluster.plan.ep_overlap.applies`). Every candidate's workload then validates (the search's sweep sets
    them per point, :func:`simcluster.search.simulate.layout_sweep`)."""
    out: dict[str, object] = {}
    par = spec.parallelism
    if par.moe_a2a_overlap:
        merges = applies(e if e is not None else par.expert, p if p is not None else par.pipeline,
                         schedule or par.schedule, rc if rc is not None else spec.training.recompute,
                         zero if zero is not None else par.zero_stage)
        out["parallelism.moe_a2a_overlap"] = merges
        if par.delay_wgrad_compute:
            out["parallelism.delay_wgrad_compute"] = merges
    if spec.parallelism.defer_embedding_wgrad_compute:
        out["parallelism.defer_embedding_wgrad_compute"] = (p if p is not None else spec.parallelism.pipeline) > 1
    if spec.parallelism.tp_comm_overlap:
        out["parallelism.tp_comm_overlap"] = t > 1 and sp
    if spec.parallelism.overlap_param_gather:
        out["parallelism.overlap_param_gather"] = (zero if zero is not None else spec.parallelism.zero_stage) in (1, 2)
    if spec.training.recompute_saves is not None:
        keeps = (rc if rc is not None else spec.training.recompute) == "selective"
        out["training.recompute_saves"] = list(spec.training.recompute_saves) if keeps else None
    if spec.training.recompute_modules is not None:
        keeps = (rc if rc is not None else spec.training.recompute) == "selective"
        out["training.recompute_modules"] = list(spec.training.recompute_modules) if keeps else None
    if spec.training.recompute_num_layers is not None:
        full = (rc if rc is not None else spec.training.recompute) == "full"
        out["training.recompute_num_layers"] = spec.training.recompute_num_layers if full else None
    return out


def layout_dependent_values(spec: WorkloadSpec, lay: "Layout") -> dict[str, object]:
    """:func:`dependent_values` of the layout ``lay``."""
    return dependent_values(spec, t=lay.tensor, sp=lay.sequence_parallel, rc=lay.recompute, zero=lay.zero_stage,
                            p=lay.pipeline, e=lay.expert, schedule=lay.schedule)


def layout_overrides(spec: WorkloadSpec, lay: "Layout") -> list[str]:
    """``lay`` as ``--set`` strings on ``spec``'s file, with the keys the layout decides there
    (:func:`dependent_values`): what a candidate is simulated with outside the search's own sweep (the
    benchmarks, the tests), so that every layout the search screens loads (JSON values: YAML flow)."""
    return lay.overrides() + [f"{key}={json.dumps(value)}" for key, value in layout_dependent_values(spec, lay).items()]


class MemoryModel:
    """Peak bytes per GPU of layouts of one workload."""

    def __init__(self, spec: WorkloadSpec):
        self.spec = spec
        self.model = spec.model
        self._moe: dict[tuple[object, ...], float] = {}
        self.training = spec.training
        self.parallelism = spec.parallelism
        self.capacity = spec.cluster.device.memory_bytes
        self._stages: dict[tuple[object, ...], float] = {}

    def _stage(self, t: int, c: int, d: int, p: int, mb: int, sp: bool, rc: str, zero: int,
               layers: int, emb: bool, logits: bool, in_flight: int, recomputed: int | None = None) -> float:
        """Peak bytes of one stage with ``in_flight`` microbatches in flight (``recomputed``: of its layers,
        those a partial full recompute runs again)."""
        z = self.parallelism.zero_shard
        z = z if z and d % z == 0 else None  # hybrid sharding where it divides d (as the screen's costs)
        one_step = self.training.global_batch // (mb * d) <= 1  # FSDP2's lazy gradients (costs.memory)
        key = (t, c, (z or d) * c if zero else 0, p > 1, mb, sp, rc, zero, layers, emb, logits, in_flight, one_step,
               recomputed)
        hit = self._stages.get(key)
        if hit is None:
            tr = self.training.model_copy(update={"micro_batch": mb, "recompute": rc, "recompute_num_layers": None})
            par = self.parallelism.model_copy(update={"tensor": t, "context": c, "data": d, "pipeline": p,
                                                      "sequence_parallel": sp, "zero_stage": zero,
                                                      "zero_shard": z})
            hit = self._stages[key] = stage_memory(self.model, tr, par, layers_on_stage=layers, has_embedding=emb,
                                                   has_logits=logits, microbatches_in_flight=in_flight,
                                                   recomputed_on_stage=recomputed).total
        return hit

    def peak(self, t: int, c: int, d: int, p: int, v: int, m: int, schedule: str, mb: int, sp: bool,
             rc: str, zero: int, e: int = 1, et: int | None = None) -> float:
        """The largest per-GPU footprint over the pipeline stages."""
        if self.model.moe is not None:
            return self._moe_peak(t, c, d, p, v, m, schedule, mb, sp, rc, zero, e, et)
        best = 0.0
        n = self.training.recompute_num_layers if rc == "full" else None
        sizes = [len(chunk) for chunk in partition_layers(self.model.layers, p, v)] if n is not None else []
        for s, layers, emb, logits in peak_stages(self.model.layers, p, v, self.model.mtp_layers):
            recomputed = sum(min(n, sizes[k * p + s]) for k in range(v)) if n is not None else None
            best = max(best, self._stage(t, c, d, p, mb, sp, rc, zero, layers, emb, logits,
                                         microbatches_in_flight(schedule, p, m, v, s), recomputed))
        return best

    def _moe_peak(self, t: int, c: int, d: int, p: int, v: int, m: int, schedule: str, mb: int, sp: bool,
                  rc: str, zero: int, e: int, et: int | None) -> float:
        """A mixture of experts: :func:`simcluster.plan.moe_memory.moe_stage_memory` of every stage (what the
        simulator's summary takes), each stage's MoE layers counted."""
        key = (t, c, d, p, v, m, schedule, mb, sp, rc, zero, e, et)
        hit = self._moe.get(key)
        if hit is None:
            spec = layout_spec(self.spec, t=t, c=c, d=d, mb=mb, sp=sp, e=e, et=et, schedule=schedule, p=p, v=v,
                               rc=rc, zero=zero)
            mp = build_moe_plan(spec, ComputeModel(spec.cluster.device, spec.training.precision,
                                                   fp8_recipe=spec.training.fp8_recipe))
            chunks = model_chunks(self.model, p, v)
            rcl = recomputed_layers(chunks, spec.training) if partial(spec.training) else None
            hit = max(moe_stage_memory(mp, [i for k in range(v) for i in chunks[k * p + s]], has_embedding=s == 0,
                                       has_logits=s == p - 1, recomputed=rcl,
                                       in_flight=microbatches_in_flight(schedule, p, m, v, s, warm_extra(spec))).total
                      for s in range(p))
            self._moe[key] = hit
        return hit

    def fits(self, peak: float) -> bool:
        """Whether a peak may fit (kept when within the rounding margin of the capacity)."""
        return peak <= self.capacity * (1 + MARGIN)
