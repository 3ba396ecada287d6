"""Lower an operator graph and a parallel layout into one :class:`TaskGraph`.

Rank symmetry: the tensor-, context- and data-parallel ranks of a pipeline
stage do identical work, so each stage is simulated by one representative rank
(tp = cp = dp = 0). Its collectives are planned on the real topology for its
real group, and the identical groups that run the same collective at the same
moment load the shared links through ``mirror_offsets``. Every simulated rank
stands for t·c·d GPUs (``TaskGraph.multiplicity``).

Per stage and per microbatch the schedule's forward (F) and backward (B) units
become a chain of tasks: per layer an attention block and an MLP block on the
compute stream, each followed (or, with sequence parallelism, surrounded) by a
tensor-parallel collective on the ``tp`` stream (Shoeybi et al. 2019 §3: two
all-reduces per layer forward, two backward); recompute blocks before a layer's
backward (``full``: the whole layer, Narayanan et al. 2021 §3.5; ``selective``:
the attention core, Korthikanti et al. 2022 §5); pipeline sends of
b·s·h/t activations (scatter/gather, Narayanan et al. 2021 §4.1) on the
``pp-fwd``/``pp-bwd`` streams; data-parallel gradient reduction in buckets on
the ``dp`` stream, each launched when the last microbatch's backward has
produced its gradients (``overlap_grad_reduce``) or after the whole backward;
and the optimizer step, memory-bound, on the compute stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

from simcluster.collectives import plan_collective
from simcluster.collectives.transfer import Transfer
from simcluster.costs.compute import ComputeModel
from simcluster.lowering.costing import TRAINING_LOOP_KERNEL_GAP_S, block_cost, op_time, rank_params
from simcluster.lowering.grid import RankGrid
from simcluster.lowering.partition import partition_layers
from simcluster.lowering.schedules import SCHEDULES, peak_in_flight
from simcluster.lowering.task import TaskGraph
from simcluster.workload.graph import DTYPE_BYTES, ops_in_order

# Bytes the optimizer step reads + writes per parameter (fused multi-tensor kernels):
# Adam reads fp32 master, grad, m, v (16 B) and writes master, m, v (12 B) plus the
# 16-bit weight copy (2 B); SGD with momentum reads 12 B and writes 10 B.
OPTIMIZER_BYTES = {"adam": 30.0, "sgd": 22.0}
OPTIMIZER_KERNELS = 8


@dataclass(frozen=True)
class LoweringOptions:
    """Switches for closed-form tests (defaults: a real run)."""

    ideal_network: bool = False  # every transfer is free
    include_optimizer: bool = True
    include_embedding_head: bool = True


def grad_bytes_per_param(precision: str) -> int:
    """Gradient bytes reduced per parameter: Megatron keeps fp32 ``main_grad`` for bf16."""
    return 2 if precision == "fp16" else 4


def lower(graph: nx.DiGraph, spec: Any, topo: Any, cm: ComputeModel | None = None,
          options: LoweringOptions = LoweringOptions()) -> TaskGraph:
    """Build the task graph of one training iteration."""
    return _Lowerer(graph, spec, topo, cm, options).build()


class _Lowerer:
    def __init__(self, graph: nx.DiGraph, spec: Any, topo: Any, cm: ComputeModel | None,
                 options: LoweringOptions):
        self.spec, self.topo, self.opt = spec, topo, options
        par, tr, model = spec.parallelism, spec.training, spec.model
        self.t, self.c, self.d, self.p = par.tensor, par.context, par.data, par.pipeline
        self.v, self.m, self.sp = par.virtual_stages, spec.num_microbatches, par.sequence_parallel
        self.grid = RankGrid(self.t, self.c, self.d, self.p)
        self.chunks = partition_layers(model.layers, self.p, self.v, par.stage_layers)
        self.cm = cm or ComputeModel(topo.device, tr.precision, kernel_overhead_s=TRAINING_LOOP_KERNEL_GAP_S)
        self.schedule = SCHEDULES.get(par.schedule)
        self.tg = TaskGraph()
        dt = DTYPE_BYTES[tr.precision]
        self.dt = dt

        ops = ops_in_order(graph)
        layer0 = [o for o in ops if o.layer == 0]
        self.attn_ops = [o for o in layer0 if o.block == "attn"]
        self.mlp_ops = [o for o in layer0 if o.block == "mlp"]
        self.emb_ops = [o for o in ops if o.block == "embedding"]
        self.head_ops = [o for o in ops if o.block == "head"]
        args = (self.cm, self.t, self.c, self.sp, tr.flash_attention)
        self.attn = block_cost(self.attn_ops, *args)
        self.mlp = block_cost(self.mlp_ops, *args)
        self.emb = block_cost(self.emb_ops, *args)
        self.head = block_cost(self.head_ops, *args)
        core = [o for o in self.attn_ops if o.kind == "attention"]
        self.core_rc_s = sum(op_time(o, *args, False) for o in core)
        self.core_rc_flops = sum(o.fwd_flops for o in core) / (self.t * self.c)
        self.layer_params = rank_params(self.attn_ops + self.mlp_ops, self.t)
        self.emb_params = rank_params(self.emb_ops, self.t)
        self.head_params = rank_params(self.head_ops, self.t)

        b, s, h = tr.micro_batch, model.seq_len, model.hidden
        self.act_bytes = b * (s // self.c) * h * dt  # tensor-parallel collective buffer
        self.p2p_bytes = self.act_bytes / self.t
        kv_dim = model.kv_heads * (h // model.heads)
        self.kv_bytes = 2 * b * s * kv_dim * dt / self.t  # K and V gathered over context ranks
        self.grad_bytes = grad_bytes_per_param(tr.precision)
        self.recompute = tr.recompute

    # -- communication plans ----------------------------------------------------------------
    def plan(self, op: str, group: tuple[int, ...], nbytes: float,
             mirrors: tuple[int, ...]) -> tuple[Transfer, ...]:
        if self.opt.ideal_network or len(group) < 2 or nbytes <= 0:
            return ()
        algo = self.spec.collectives.get(op, "auto") if getattr(self.spec, "collectives", None) else "auto"
        return plan_collective(op, group, nbytes, self.topo, algorithm=algo, mirror_offsets=mirrors)

    # -- building -------------------------------------------------------------------------
    def build(self) -> TaskGraph:
        tg, g = self.tg, self.grid
        reps = tuple(g.rank(pp=s) for s in range(self.p))
        tg.ranks = reps
        tg.multiplicity = {r: g.per_stage for r in reps}
        K = self.p * self.v
        first: dict[tuple[str, int, int], int] = {}
        last: dict[tuple[str, int, int], int] = {}
        send: dict[tuple[str, int, int], int] = {}
        bwd_layer_task: dict[int, int] = {}  # layer (or -1 emb, -2 head) -> task in the last microbatch
        stage_last: dict[int, int] = {}
        in_flight = []
        for s in range(self.p):
            order = self.schedule(self.p, self.m, self.v, s)
            in_flight.append(peak_in_flight(order))
            for kind, mb, ck in order:
                k = ck * self.p + s
                ids = self._unit(kind, s, k, mb, bwd_layer_task if mb == self.m - 1 else None)
                first[(kind, k, mb)], last[(kind, k, mb)] = ids
                stage_last[s] = ids[1]
                nxt = k + 1 if kind == "F" else k - 1
                if 0 <= nxt < K and nxt % self.p != s:
                    to = reps[nxt % self.p]
                    tr = self.plan("send", (reps[s], to), self.p2p_bytes, g.stage_mirror_offsets())
                    task = tg.add(kind="send", name=f"send.{'fwd' if kind == 'F' else 'bwd'} mb{mb}",
                                  ranks=(reps[s],), stream="pp-fwd" if kind == "F" else "pp-bwd",
                                  deps=(ids[1],), transfers=tr, nbytes=self.p2p_bytes, op="send",
                                  group=(reps[s], to), phase="pp_comm", stage=s, microbatch=mb,
                                  chunk=ck)
                    send[(kind, k, mb)] = task.id
                else:
                    send[(kind, k, mb)] = ids[1]
        # cross-stage dependencies of each unit's first task
        for (kind, k, mb), fid in first.items():
            dep = None
            if kind == "F" and k > 0:
                dep = send[("F", k - 1, mb)]
            elif kind == "B":
                dep = send[("B", k + 1, mb)] if k < K - 1 else last[("F", k, mb)]
            if dep is not None:
                tg.tasks[fid].deps = tg.tasks[fid].deps + (dep,)
        produced = [self._stage_params(s, bwd_layer_task) for s in range(self.p)]
        comm = [self._grad_buckets(s, reps[s], stage_last[s], produced[s]) for s in range(self.p)]
        tied = self._tied_embedding_sync(reps, bwd_layer_task)
        if tied is not None:
            comm[0].append(tied)
            comm[-1].append(tied)
        params = [sum(pc for _, pc in produced[s]) for s in range(self.p)]
        if self.opt.include_optimizer:
            for s in range(self.p):
                self._optimizer_step(s, reps[s], [stage_last[s]] + comm[s], params[s])
        tg.meta.update(stages=self.p, microbatches=self.m, chunk_layers=self.chunks,
                       in_flight=in_flight, representatives=list(reps),
                       multiplicity=g.per_stage, params_per_rank=params)
        return tg

    def _unit(self, kind: str, s: int, k: int, mb: int,
              bwd_layer_task: dict[int, int] | None) -> tuple[int, int]:
        """Tasks of one forward or backward unit (model chunk k, microbatch mb)."""
        tg, rep = self.tg, self.grid.rank(pp=s)
        ck = k // self.p
        layers = self.chunks[k]
        K = self.p * self.v
        ids: list[int] = []

        def add(**kw: Any) -> int:
            deps = (ids[-1],) if ids else ()
            task = tg.add(ranks=(rep,), deps=deps, stage=s, microbatch=mb, chunk=ck, **kw)
            ids.append(task.id)
            return task.id

        def compute(name: str, secs: float, flops: float, phase: str, layer: int) -> int:
            return add(kind="compute", name=name, stream="compute", duration=secs, flops=flops,
                       phase=phase, layer=layer)

        def tp(op: str, layer: int, tag: str) -> None:
            if self.t < 2:
                return
            tr = self.plan(op, self.grid.tp_group(rep), self.act_bytes, self.grid.tp_mirror_offsets())
            add(kind="collective", name=f"tp.{op} {tag}", stream="tp", transfers=tr,
                nbytes=self.act_bytes, op=op, group=self.grid.tp_group(rep), phase="tp_comm",
                layer=layer)

        def cp(op: str, layer: int) -> None:
            if self.c < 2:
                return
            tr = self.plan(op, self.grid.cp_group(rep), self.kv_bytes, self.grid.cp_mirror_offsets())
            add(kind="collective", name=f"cp.{op} L{layer}", stream="cp", transfers=tr,
                nbytes=self.kv_bytes, op=op, group=self.grid.cp_group(rep), phase="cp_comm",
                layer=layer)

        def block(name: str, secs: float, flops: float, phase: str, layer: int, fwd: bool,
                  with_cp: bool = False) -> int:
            pre, post = (("all_gather", "reduce_scatter") if self.sp else (None, "all_reduce"))
            if self.sp:
                tp(pre, layer, f"{name} L{layer}")
            if with_cp:
                cp("all_gather" if fwd else "reduce_scatter", layer)
            tid = compute(f"{name} L{layer}", secs, flops, phase, layer)
            tp(post, layer, f"{name} L{layer}")
            return tid

        emb_head = self.opt.include_embedding_head
        if kind == "F":
            if k == 0 and emb_head:
                compute("fwd.embedding", self.emb.fwd_s, self.emb.fwd_flops, "forward", -1)
                tp("reduce_scatter" if self.sp else "all_reduce", -1, "embedding")
            for l in layers:
                block("fwd.attn", self.attn.fwd_s, self.attn.fwd_flops, "forward", l, True, True)
                block("fwd.mlp", self.mlp.fwd_s, self.mlp.fwd_flops, "forward", l, True)
            if k == K - 1 and emb_head:
                if self.sp:
                    tp("all_gather", -1, "head")
                compute("fwd.head", self.head.fwd_s, self.head.fwd_flops, "forward", -1)
        else:
            if k == K - 1 and emb_head:
                tid = compute("bwd.head", self.head.bwd_s, self.head.bwd_flops, "backward", -1)
                if self.sp:
                    tp("reduce_scatter", -1, "head")
                if bwd_layer_task is not None:
                    bwd_layer_task[-2] = tid
            for l in reversed(layers):
                if self.recompute == "full":
                    block("rc.attn", self.attn.fwd_s, self.attn.fwd_flops, "recompute", l, True, True)
                    block("rc.mlp", self.mlp.fwd_s, self.mlp.fwd_flops, "recompute", l, True)
                block("bwd.mlp", self.mlp.bwd_s, self.mlp.bwd_flops, "backward", l, False)
                if self.recompute == "selective":
                    compute(f"rc.attn_core L{l}", self.core_rc_s, self.core_rc_flops, "recompute", l)
                tid = block("bwd.attn", self.attn.bwd_s, self.attn.bwd_flops, "backward", l, False, True)
                if bwd_layer_task is not None:
                    bwd_layer_task[l] = tid
            if k == 0 and emb_head:
                if self.sp:
                    tp("all_gather", -1, "embedding")
                tid = compute("bwd.embedding", self.emb.bwd_s, self.emb.bwd_flops, "backward", -1)
                if bwd_layer_task is not None:
                    bwd_layer_task[-1] = tid
        return ids[0], ids[-1]

    def _stage_params(self, s: int, bwd_layer_task: dict[int, int]) -> list[tuple[int, float]]:
        """(task that finishes the gradients, parameters) of stage s, in the order backward makes them."""
        K = self.p * self.v
        emb_head = self.opt.include_embedding_head
        produced: list[tuple[int, float]] = []
        for k in sorted((k for k in range(K) if k % self.p == s), reverse=True):
            if k == K - 1 and emb_head:
                produced.append((bwd_layer_task[-2], self.head_params))
            for l in reversed(self.chunks[k]):
                produced.append((bwd_layer_task[l], self.layer_params))
            if k == 0 and emb_head:
                produced.append((bwd_layer_task[-1], self.emb_params))
        return produced

    def _grad_buckets(self, s: int, rep: int, stage_last: int,
                      produced: list[tuple[int, float]]) -> list[int]:
        """Bucketed data-parallel gradient reduction (all-reduce, or reduce-scatter under ZeRO)."""
        if self.d < 2:
            return []
        tg, g, par = self.tg, self.grid, self.spec.parallelism
        op = "all_reduce" if par.zero_stage == 0 else "reduce_scatter"
        group, mirrors = g.dp_group(rep), g.dp_mirror_offsets()
        cap = getattr(par, "grad_bucket_bytes", 25e6)
        ids: list[int] = []
        acc = 0.0
        for i, (tid, pcount) in enumerate(produced):
            acc += pcount * self.grad_bytes
            if acc >= cap or i == len(produced) - 1:
                dep = tid if par.overlap_grad_reduce else stage_last
                task = tg.add(kind="collective", name=f"dp.{op} bucket{len(ids)}", ranks=(rep,),
                              stream="dp", deps=(dep,), transfers=self.plan(op, group, acc, mirrors),
                              nbytes=acc, op=op, group=group, phase="dp_comm", stage=s)
                ids.append(task.id)
                acc = 0.0
        return ids

    def _tied_embedding_sync(self, reps: tuple[int, ...], bwd_layer_task: dict[int, int]) -> int | None:
        """All-reduce of the tied word-embedding gradient between the first and last stage."""
        if not (self.spec.model.tied_embeddings and self.p > 1 and self.opt.include_embedding_head):
            return None
        nbytes = self.emb_params * self.grad_bytes
        grp = (reps[0], reps[-1])
        task = self.tg.add(kind="collective", name="dp.all_reduce tied-embedding", ranks=grp,
                           stream="dp", deps=(bwd_layer_task[-1], bwd_layer_task[-2]),
                           transfers=self.plan("all_reduce", grp, nbytes, self.grid.stage_mirror_offsets()),
                           nbytes=nbytes, op="all_reduce", group=grp, phase="dp_comm", stage=0)
        return task.id

    def _optimizer_step(self, s: int, rep: int, deps: list[int], params: float) -> None:
        """The optimizer step (memory-bound) and, under ZeRO, the parameter all-gather."""
        zero = self.spec.parallelism.zero_stage
        shard = self.d if zero >= 1 else 1
        opt_bytes = OPTIMIZER_BYTES[self.spec.training.optimizer] * params / shard
        secs = self.cm.memory_time(opt_bytes, "copy") + OPTIMIZER_KERNELS * self.cm.kernel_overhead_s
        step = self.tg.add(kind="optimizer", name="optimizer.step", ranks=(rep,), stream="compute",
                           deps=tuple(deps), duration=secs, nbytes=opt_bytes, phase="optimizer", stage=s)
        if zero >= 1 and self.d > 1:
            nbytes = params * self.dt
            group = self.grid.dp_group(rep)
            self.tg.add(kind="collective", name="zero.all_gather params", ranks=(rep,), stream="dp",
                        deps=(step.id,),
                        transfers=self.plan("all_gather", group, nbytes, self.grid.dp_mirror_offsets()),
                        nbytes=nbytes, op="all_gather", group=group, phase="zero_comm", stage=s)
