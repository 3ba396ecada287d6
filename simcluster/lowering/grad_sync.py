"""After the backward pass: gradient reduction, tied-embedding sync, optimizer, ZeRO gather.

- Data-parallel gradients are reduced in buckets (Megatron/PyTorch DDP, Li et
  al. 2020 §3.2.3: default 25 MB), filled in the order backward produces them;
  with ``overlap_grad_reduce`` a bucket's all-reduce (reduce-scatter under ZeRO
  ≥ 1, Rajbhandari et al. 2020; all-reduce under DeepSpeed's pipeline engine with ZeRO-1,
  :func:`pipe_all_reduce`) starts as soon as the last microbatch's
  backward has produced its last gradient, otherwise after the whole backward.
  Gradients travel in fp32 for bf16 (Megatron's ``main_grad``), 16-bit for fp16.
- Tied word embeddings: the first and last stage all-reduce the embedding
  gradient (Shoeybi et al. 2019 §3).
- The optimizer step is memory-bound: Adam reads fp32 master weights, gradient,
  m and v (16 B/param) and writes master, m, v and the 16-bit copy (14 B);
  SGD with momentum reads 12 B and writes 10 B. ZeRO ≥ 1 steps 1/d of the
  parameters (1/zero_shard with hybrid sharding); ZeRO 1 and 2 then all-gather the updated
  16-bit weights, ZeRO-3 leaves them sharded for the next forward's per-layer gathers, except
  DeepSpeed's persistent tensors, re-gathered rank by rank on the host (``zero.persist_gather``,
  :func:`simcluster.plan.plan.zero3_persistent_gather_s`).
"""

from __future__ import annotations

from dataclasses import dataclass

from simcluster.lowering.comms import Comms
from simcluster.lowering.moe import expert_grads, expert_param_gather, optimizer_params
from simcluster.lowering.task import TaskGraph
from simcluster.plan import Plan
from simcluster.plan.costing import optimizer_time
from simcluster.plan.steps import EMBEDDING_GRADS, HEAD_GRADS, HOST_PHASE


@dataclass
class GradSync:
    """What gradient synchronisation needs: the graph so far, the plan, the groups."""

    tg: TaskGraph
    plan: Plan
    comms: Comms
    slow: dict[int, float]  # compute slowdown of straggler ranks
    last_rs: dict[int, int]  # ZeRO >= 2: each rank's last gradient reduce-scatter
    include_optimizer: bool = True


def add_grad_sync(ctx: GradSync, grads: dict[tuple[int, int], int], stage_last: dict[int, int]) -> None:
    """Add buckets, tied-embedding sync, optimizer and ZeRO gather after the last backward."""
    tg, plan, comms = ctx.tg, ctx.plan, ctx.comms
    par = plan.spec.parallelism
    comm: dict[int, list[int]] = {r: [] for r in tg.ranks}
    for s in range(plan.p):
        stage_members = comms.stage_members(s)
        if plan.zero >= 2:  # reduced per layer and microbatch during backward
            for r in stage_members:
                if r in ctx.last_rs:
                    comm[r].append(ctx.last_rs[r])
        elif plan.d > 1:
            _buckets(ctx, s, grads, stage_last, comm)
        if plan.moe is not None and plan.moe.edp > 1:  # routed experts: over their expert-data group
            _buckets(ctx, s, grads, stage_last, comm, expert_grads(plan, s), "edp", "edp")
        if plan.shard_kind == "zs":
            _replicas(ctx, s, stage_last, comm)
    if plan.params.kv_replicated and plan.t > 1:
        _replicated_kv(ctx, stage_last, comm)
    if plan.spec.model.tied_embeddings and plan.p > 1 and plan.embedding_and_head:
        nbytes = plan.params.word_embedding * plan.grad_bytes
        per = plan.grid.per_stage
        for r0 in comms.stage_members(0):
            pair = (r0, r0 + (plan.p - 1) * per)
            t = tg.add(kind="collective", name="dp.all_reduce tied-embedding", ranks=pair,
                       stream="dp", deps=(grads[(pair[0], EMBEDDING_GRADS)], grads[(pair[1], HEAD_GRADS)]),
                       transfers=comms.plan("all_reduce", pair, nbytes, comms.stage_mirrors(r0)), nbytes=nbytes,
                       op="all_reduce", group=pair, phase="dp_comm", stage=0)
            for r in pair:
                comm[r].append(t.id)
    if not ctx.include_optimizer:
        return
    shard = plan.zero_shard if par.zero_stage >= 1 else 1
    for s in range(plan.p):
        stage_members = comms.stage_members(s)
        params = plan.stage_params(s)
        secs, opt_bytes = optimizer_time(plan.cm, plan.spec.training.optimizer, optimizer_params(ctx, s, shard), shard,
                                         plan.stack, plan.stage_layers(s))
        steps = {}
        for r in stage_members:
            steps[r] = tg.add(kind="optimizer", name="optimizer.step", ranks=(r,), stream="compute",
                              deps=tuple([stage_last[r]] + comm[r]), duration=secs * ctx.slow.get(r, 1.0),
                              nbytes=opt_bytes, phase="optimizer", stage=s).id
        if plan.shape.persist_gather_s > 0 and plan.d > 1:  # DeepSpeed ZeRO-3 re-gathers its persistent tensors
            secs = plan.stage_layers(s) * plan.shape.persist_gather_s
            for r in stage_members:
                tg.add(kind="compute", name="zero.persist_gather", ranks=(r,), stream="compute", deps=(steps[r],),
                       duration=secs, phase=HOST_PHASE, stage=s)
        # ZeRO 1 and 2 gather the updated 16-bit weights every rank holds in full; ZeRO-3 keeps them
        # sharded and gathers each layer when the next forward needs it (Rajbhandari et al. 2020 §5)
        if par.zero_stage in (1, 2) and plan.d > 1 and not plan.param_overlap:  # else beside the first forward
            nbytes = params * plan.dtype_bytes
            for ranks, group, mirrors in comms.groups(plan.shard_kind, stage_members):
                tg.add(kind="collective", name="zero.all_gather params", ranks=ranks, stream="dp",
                       deps=tuple(steps[r] for r in ranks), transfers=comms.plan("all_gather", group, nbytes, mirrors),
                       nbytes=nbytes, op="all_gather", group=group, phase="zero_comm", stage=s)
        expert_param_gather(ctx, s, steps)


def _replicated_kv(ctx: GradSync, stage_last: dict[int, int], comm: dict[int, list[int]]) -> None:
    """K/V heads replicated over the tensor group (g < t): their weight gradients are summed over
    the group after the backward pass, one all-reduce per stage (Megatron-LM's reduction of
    weights shared by tensor ranks)."""
    plan, comms = ctx.plan, ctx.comms
    for s in range(plan.p):
        nbytes = plan.kv_grad_bytes(s)
        for ranks, group, mirrors in comms.groups("tp", comms.stage_members(s)):
            t = ctx.tg.add(kind="collective", name="tp.all_reduce replicated K/V grads", ranks=ranks, stream="tp",
                           deps=tuple(stage_last[r] for r in ranks), transfers=comms.plan("all_reduce", group, nbytes,
                                                                                          mirrors),
                           nbytes=nbytes, op="all_reduce", group=group, phase="tp_comm", stage=s)
            for r in ranks:
                comm[r].append(t.id)


def _replicas(ctx: GradSync, s: int, stage_last: dict[int, int], comm: dict[int, list[int]]) -> None:
    """Hybrid sharding: after the shard groups' reduce-scatters, each rank all-reduces its gradient
    shard with the ranks holding the same shard in the other groups (PyTorch HSDP; PaLM §4's
    pod-level data parallelism), before the optimizer step."""
    plan, comms = ctx.plan, ctx.comms
    nbytes = plan.replica_grad_bytes(s)
    for ranks, group, mirrors in comms.groups("zr", comms.stage_members(s)):
        deps = tuple(dict.fromkeys([stage_last[r] for r in ranks] + [d for r in ranks for d in comm[r]]))
        t = ctx.tg.add(kind="collective", name="dp.all_reduce shard replicas", ranks=ranks, stream="dp", deps=deps,
                       transfers=comms.plan("all_reduce", group, nbytes, mirrors), nbytes=nbytes, op="all_reduce",
                       group=group, phase="dp_comm", stage=s)
        for r in ranks:
            comm[r].append(t.id)


def pipe_all_reduce(plan: Plan) -> bool:
    """ZeRO-1 under a pipeline engine that all-reduces the gradients before the ZeRO step (DeepSpeed's
    ``buffered_allreduce_fallback``, :data:`simcluster.costs.frameworks.Stack.pipe_zero1_all_reduce`)."""
    return plan.stack.pipe_zero1_all_reduce and plan.p > 1 and plan.spec.parallelism.zero_stage == 1


def _buckets(ctx: GradSync, s: int, grads: dict[tuple[int, int], int], stage_last: dict[int, int],
             comm: dict[int, list[int]], produced: list[tuple[int, float]] | None = None, kind: str = "",
             label: str = "dp") -> None:
    """Stage s's data-parallel gradient buckets, filled in the order backward produces them
    (``produced``, ``kind``: other gradients and their group, e.g. MoE experts' over ``edp``)."""
    plan, comms = ctx.plan, ctx.comms
    par = plan.spec.parallelism
    produced = plan.grads_produced(s) if produced is None else produced
    op = "all_reduce" if par.zero_stage == 0 or pipe_all_reduce(plan) else "reduce_scatter"
    kind = kind or (plan.shard_kind if par.zero_stage else "dp")
    for ranks, group, mirrors in comms.groups(kind, comms.stage_members(s)):
        acc, n = 0.0, 0
        for i, (key, pc) in enumerate(produced):
            acc += pc * plan.grad_bytes
            if acc < par.grad_bucket_bytes and i < len(produced) - 1:
                continue
            deps = tuple(grads[(r, key)] if par.overlap_grad_reduce and plan.stack.overlap_grad_reduce else stage_last[r]
                         for r in ranks)
            t = ctx.tg.add(kind="collective", name=f"{label}.{op} bucket{n}", ranks=ranks, stream="dp", deps=deps,
                           transfers=comms.plan(op, group, acc, mirrors), nbytes=acc, op=op, group=group,
                           phase="dp_comm", stage=s)
            for r in ranks:
                comm[r].append(t.id)
            acc, n = 0.0, n + 1
