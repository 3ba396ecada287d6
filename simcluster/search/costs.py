"""The analytical tier's ingredients, each computed once and shared by many layouts.

- Compute: the plan's per-rank block costs (:func:`simcluster.plan.costing.model_blocks`,
  the function lowering's plan uses) on one layer's operators, for each (tensor, context,
  micro batch, sequence parallel); parameter counts and byte sizes from the same plan
  functions (:func:`simcluster.plan.plan.layer_params`, :func:`~simcluster.plan.plan.activation_bytes`).
- Communication: the collective planner's own estimate t(S) = L + K·S
  (:mod:`simcluster.collectives.select`, with ``auto`` the fastest candidate per size, the
  algorithm lowering would plan) for the groups of pipeline stage 0's representative of
  the rank grid, with the identical groups' load (rank symmetry's mirror offsets), once
  per (kind, op, tensor, context, data, pipeline).
"""

from __future__ import annotations

from dataclasses import dataclass

from simcluster.collectives.dedup import Dedup, dedup_all_to_all
from simcluster.collectives.plan import algorithm_options, plan_collective
from simcluster.collectives.select import cost
from simcluster.plan.costing import Blocks, model_blocks, optimizer_time
from simcluster.plan.grid import RankGrid
from simcluster.plan.moe import expert_data_group, expert_data_mirrors, expert_group, expert_mirrors
from simcluster.plan.plan import Params, activation_bytes, compute_model, layer_params
from simcluster.plan.stack_bytes import spec_stack, weight_bytes
from simcluster.spec.workload import WorkloadSpec
from simcluster.topology.topology import Topology
from simcluster.workload import ModelOps, model_ops
from simcluster.workload.sliding_window import full_layers, without_window


@dataclass(frozen=True)
class LayoutCosts:
    """Per-rank block costs, parameters and byte sizes of one (t, c, micro batch, sp)."""

    blocks: Blocks
    params: Params  # the head's parameters as a pipeline of more than one stage holds them
    params_one_stage: Params  # ... and as one stage holding the embedding too
    act_bytes: float  # the tensor-parallel collective buffer b·(s/c)·h
    p2p_bytes: float  # a pipeline send: act_bytes, or act_bytes / t where the stack splits it
    kv_bytes: float  # keys and values exchanged over the context ring per layer
    full: Blocks | None = None  # a full-attention layer's among windowed ones (model.full_attention_every)


class Costs:
    """Compute and collective estimates for one workload on one topology."""

    def __init__(self, spec: WorkloadSpec, topo: Topology):
        self.spec, self.topo = spec, topo
        self.training = spec.training
        # the spec's ZeRO stage decides the stack's mechanisms (PyTorch: autocast, or FSDP at stage 3)
        self.stack = spec_stack(spec)
        self.cm = compute_model(spec, topo.device)
        # bytes per parameter of the weight gathers and of the gradient reduction, as the plan moves them
        self.dt, self.grad_bytes = weight_bytes(spec.training.precision, self.stack)
        self.algorithms = dict(spec.collectives)
        self._ops: dict[int, ModelOps] = {}
        self._blocks: dict[tuple[int, int, int, bool], LayoutCosts] = {}
        self._coll: dict[tuple[object, ...], tuple[tuple[float, float], ...]] = {}
        self._opt: dict[tuple[float, int, int], float] = {}

    # -- compute --------------------------------------------------------------------------
    def ops(self, mb: int) -> ModelOps:
        """One layer's, the embedding's and the head's operators for micro batch ``mb``."""
        hit = self._ops.get(mb)
        if hit is None:
            hit = self._ops[mb] = model_ops(self.spec.model, self.training.model_copy(update={"micro_batch": mb}))
        return hit

    def blocks(self, t: int, c: int, mb: int, sp: bool) -> LayoutCosts:
        """Costs of a (tensor, context, micro batch, sequence parallel) combination."""
        key = (t, c, mb, sp)
        hit = self._blocks.get(key)
        if hit is None:
            blocks = model_blocks(self.ops(mb), self.cm, t, c, sp, self.training.flash_attention, self.stack)
            full = model_blocks(model_ops(without_window(self.spec.model), self.training.model_copy(
                update={"micro_batch": mb})), self.cm, t, c, sp, self.training.flash_attention, self.stack) \
                if full_layers(self.spec.model) else None
            hit = LayoutCosts(blocks, layer_params(self.spec, t, 2), layer_params(self.spec, t, 1),
                              *activation_bytes(self.spec, t, c, mb, sp), full=full)
            self._blocks[key] = hit
        return hit

    def optimizer_s(self, params: float, shard: int, layers: int = 0) -> float:
        """The optimizer step over ``params / shard`` parameters of ``layers`` layers (memory-bound, as lowering
        charges it; the layers count FP16_Optimizer's per-tensor loops, :mod:`simcluster.costs.fp16_optimizer`)."""
        key = (params, shard, layers)
        hit = self._opt.get(key)
        if hit is None:
            hit = self._opt[key] = optimizer_time(self.cm, self.training.optimizer, params, shard, self.stack,
                                                  layers)[0]
        return hit

    # -- communication --------------------------------------------------------------------
    def _group(self, kind: str, grid: RankGrid) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if kind == "tp":
            return grid.tp_group(0), grid.tp_mirror_offsets()
        if kind == "cp":
            return grid.cp_group(0), grid.cp_mirror_offsets()
        if kind == "dp":
            return grid.dp_group(0), grid.dp_mirror_offsets()
        z = self.shard(grid.d)
        if kind == "zs":  # hybrid sharding: a ZeRO shard group, and the replicas of a shard
            return grid.shard_group(0, z), grid.shard_mirror_offsets(z)
        if kind == "zr":
            return grid.replica_group(0, z), grid.replica_mirror_offsets(z)
        if kind == "send":  # stage 0 to stage 1
            return (0, grid.per_stage), grid.stage_mirror_offsets()
        if kind == "tied":  # first and last stage: the tied word embedding's gradient
            return (0, (grid.p - 1) * grid.per_stage), grid.stage_mirror_offsets()
        raise ValueError(f"unknown group kind {kind!r}")

    def shard(self, d: int) -> int:
        """ZeRO shard group size for ``d`` data-parallel ranks: ``zero_shard`` where it divides d, else d."""
        z = self.spec.parallelism.zero_shard
        return z if z and d % z == 0 else d

    def shard_kind(self, d: int) -> str:
        """``zs`` (hybrid sharding) or ``dp``: where ZeRO's collectives run (as the plan decides)."""
        return "zs" if self.shard(d) < d else "dp"

    def lines(self, kind: str, op: str, t: int, c: int, d: int, p: int) -> tuple[tuple[float, float], ...]:
        """(L, K) of every algorithm the collective may run: t(S) = min over them of L + K·S."""
        key = (kind, op, t, c, d, p if kind == "tied" else 0)
        hit = self._coll.get(key)
        if hit is None:
            hit = self._coll[key] = self._options(op, *self._group(kind, RankGrid(t, c, d, p)))
        return hit

    def _options(self, op: str, group: tuple[int, ...], mirrors: tuple[int, ...]) -> tuple[tuple[float, float], ...]:
        """(L, K) of every way ``op`` over ``group`` may run under the workload's algorithm choice (one line for a
        send, which has one plan; nothing to pay for a group of one)."""
        algorithm = self.algorithms.get(op, "auto")
        if len(group) < 2 or len(set(group)) < 2:
            return ((0.0, 0.0),)
        if op == "send":
            return (cost(plan_collective(op, group, 1.0, self.topo, algorithm=algorithm, mirror_offsets=mirrors),
                         self.topo),)
        return tuple((L, K) for _, L, K, _ in algorithm_options(op, group, self.topo, algorithm, mirrors))

    def ep_time(self, t: int, c: int, d: int, etp: int, ep: int, nbytes: float, op: str = "all_to_all",
                kind: str = "ep", share: Dedup | None = None) -> float:
        """Seconds of one MoE collective of ``nbytes`` per rank over stage 0's expert group (``ep``: the
        all-to-all's) or expert-data group (``edp``: the routed experts' gradients and weights), uncontended
        but for the stage's other such groups (:mod:`simcluster.plan.moe`); ``share``: a deduplicating
        dispatcher's all-to-all (:mod:`simcluster.collectives.dedup`)."""
        if nbytes <= 0:
            return 0.0
        key = (kind, op, t * c * d, etp, ep, share)
        hit = self._coll.get(key)
        if hit is None:
            grid = RankGrid(t, c, d, 1)
            group, mirrors = ((expert_group(grid, etp, ep, 0), expert_mirrors(grid, etp, ep)) if kind == "ep" else
                              (expert_data_group(grid, etp, ep, 0), expert_data_mirrors(grid, etp, ep)))
            hit = self._coll[key] = (cost(dedup_all_to_all(group, 1.0, self.topo, share, mirrors), self.topo),) \
                if share is not None and op == "all_to_all" else self._options(op, group, mirrors)
        return min(L + K * nbytes for L, K in hit)

    def time(self, kind: str, op: str, t: int, c: int, d: int, p: int, nbytes: float) -> float:
        """Seconds of one collective of ``nbytes`` on stage 0's ``kind`` group, uncontended."""
        if nbytes <= 0:
            return 0.0
        return min(L + K * nbytes for L, K in self.lines(kind, op, t, c, d, p))
