"""The analytical tier's ingredients, each computed once and shared by many layouts.

- Compute: per-rank block costs from the calibrated compute model through
  :func:`simcluster.lowering.costing.block_cost` (the same function lowering uses), on the
  operator graph built once per micro batch (a one-layer copy of the model: every layer
  has the same operators), for each (tensor, context, micro batch, sequence parallel).
- Communication: the collective planner's own estimate t(S) = L + K·S
  (:mod:`simcluster.collectives.select`, with ``auto`` the fastest candidate per size, the
  algorithm lowering would plan) for the groups of pipeline stage 0's representative of
  the rank grid, with the identical groups' load (rank symmetry's mirror offsets), once
  per (kind, op, tensor, context, data, pipeline).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simcluster.collectives.plan import auto_options, plan_collective
from simcluster.collectives.select import cost
from simcluster.costs.compute import ComputeModel
from simcluster.lowering.costing import TRAINING_LOOP_KERNEL_GAP_S, BlockCost, block_cost, op_time, rank_params
from simcluster.lowering.grad_sync import OPTIMIZER_BYTES, OPTIMIZER_KERNELS, grad_bytes_per_param
from simcluster.lowering.grid import RankGrid
from simcluster.workload import build_operator_graph
from simcluster.workload.graph import DTYPE_BYTES, ops_in_order


@dataclass(frozen=True)
class Blocks:
    """Per-rank costs of one layer's halves, the embedding and the head, for one microbatch."""

    attn: BlockCost
    mlp: BlockCost
    emb: BlockCost
    head: BlockCost
    core_rc_s: float  # selective recompute: the attention core's forward again
    layer_params: float  # parameters per rank of one layer, the embedding, the head
    emb_params: float
    head_params: float
    act_bytes: float  # the tensor-parallel collective buffer b·(s/c)·h
    p2p_bytes: float  # a pipeline send: act_bytes / t
    kv_bytes: float  # keys and values exchanged over the context ring per layer


class Costs:
    """Compute and collective estimates for one workload on one topology."""

    def __init__(self, spec: Any, topo: Any):
        self.spec, self.topo = spec, topo
        self.training = spec.training
        self.cm = ComputeModel(topo.device, spec.training.precision, kernel_overhead_s=TRAINING_LOOP_KERNEL_GAP_S)
        self.dt = DTYPE_BYTES[spec.training.precision]
        self.grad_bytes = grad_bytes_per_param(spec.training.precision)
        self.opt_bytes = OPTIMIZER_BYTES[spec.training.optimizer]
        self.algorithms = dict(getattr(spec, "collectives", None) or {})
        self._ops: dict[int, tuple[list, list, list, list]] = {}
        self._blocks: dict[tuple, Blocks] = {}
        self._coll: dict[tuple, tuple[tuple[float, float], ...]] = {}
        self._opt: dict[float, float] = {}

    # -- compute --------------------------------------------------------------------------
    def ops(self, mb: int) -> tuple[list, list, list, list]:
        """(attention ops, MLP ops, embedding ops, head ops) of one layer for micro batch ``mb``."""
        hit = self._ops.get(mb)
        if hit is None:
            one_layer = self.spec.model.model_copy(update={"layers": 1})
            training = self.training.model_copy(update={"micro_batch": mb})
            ops = ops_in_order(build_operator_graph(one_layer, training))
            hit = ([o for o in ops if o.layer == 0 and o.block == "attn"],
                   [o for o in ops if o.layer == 0 and o.block == "mlp"],
                   [o for o in ops if o.block == "embedding"], [o for o in ops if o.block == "head"])
            self._ops[mb] = hit
        return hit

    def blocks(self, t: int, c: int, mb: int, sp: bool) -> Blocks:
        """Block costs of a (tensor, context, micro batch, sequence parallel) combination."""
        key = (t, c, mb, sp)
        hit = self._blocks.get(key)
        if hit is None:
            attn, mlp, emb, head = self.ops(mb)
            args = (self.cm, t, c, sp, self.training.flash_attention)
            core = [o for o in attn if o.kind == "attention"]
            m = self.spec.model
            act = mb * (m.seq_len // c) * m.hidden * self.dt
            kv = 2 * mb * m.seq_len * m.kv_heads * (m.hidden // m.heads) * self.dt / t
            hit = Blocks(block_cost(attn, *args), block_cost(mlp, *args), block_cost(emb, *args),
                         block_cost(head, *args), sum(op_time(o, *args, False) for o in core),
                         rank_params(attn + mlp, t), rank_params(emb, t), rank_params(head, t),
                         act, act / t, kv)
            self._blocks[key] = hit
        return hit

    def optimizer_s(self, params: float) -> float:
        """The optimizer step over ``params`` parameters (memory-bound, as lowering charges it)."""
        hit = self._opt.get(params)
        if hit is None:
            hit = self.cm.memory_time(self.opt_bytes * params, "copy") + OPTIMIZER_KERNELS * self.cm.kernel_overhead_s
            self._opt[params] = hit
        return hit

    # -- communication --------------------------------------------------------------------
    def _group(self, kind: str, grid: RankGrid) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if kind == "tp":
            return grid.tp_group(0), grid.tp_mirror_offsets()
        if kind == "cp":
            return grid.cp_group(0), grid.cp_mirror_offsets()
        if kind == "dp":
            return grid.dp_group(0), grid.dp_mirror_offsets()
        if kind == "send":  # stage 0 to stage 1
            return (0, grid.per_stage), grid.stage_mirror_offsets()
        if kind == "tied":  # first and last stage: the tied word embedding's gradient
            return (0, (grid.p - 1) * grid.per_stage), grid.stage_mirror_offsets()
        raise ValueError(f"unknown group kind {kind!r}")

    def lines(self, kind: str, op: str, t: int, c: int, d: int, p: int) -> tuple[tuple[float, float], ...]:
        """(L, K) of every algorithm the collective may run: t(S) = min over them of L + K·S."""
        key = (kind, op, t, c, d, p if kind == "tied" else 0)
        hit = self._coll.get(key)
        if hit is None:
            group, mirrors = self._group(kind, RankGrid(t, c, d, p))
            algorithm = self.algorithms.get(op, "auto")
            if len(group) < 2 or len(set(group)) < 2:
                hit = ((0.0, 0.0),)
            elif algorithm == "auto" and op != "send":
                hit = tuple((L, K) for _, L, K, _ in auto_options(op, group, self.topo, mirrors))
            else:
                unit = plan_collective(op, group, 1.0, self.topo, algorithm=algorithm, mirror_offsets=mirrors)
                hit = (cost(unit, self.topo),)
            self._coll[key] = hit
        return hit

    def time(self, kind: str, op: str, t: int, c: int, d: int, p: int, nbytes: float) -> float:
        """Seconds of one collective of ``nbytes`` on stage 0's ``kind`` group, uncontended."""
        if nbytes <= 0:
            return 0.0
        return min(L + K * nbytes for L, K in self.lines(kind, op, t, c, d, p))
