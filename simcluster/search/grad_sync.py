"""After the last backward: the first stage's data-parallel gradient reduction, weight gather and optimizer step,
in closed form for the analytical tier (:mod:`simcluster.search.estimate`), as lowering adds them
(:mod:`simcluster.lowering.grad_sync`, :mod:`simcluster.lowering.moe`).

Buckets of ``grad_bucket_bytes`` reduced over the data-parallel (or ZeRO shard) group, all-reduced without ZeRO
(and at ZeRO-1 under DeepSpeed's pipeline engine), reduce-scattered with it; with ``overlap_grad_reduce`` beside the last microbatch's backward, which they slow at the
engine's contention rate, the last bucket exposed; under ZeRO 2 and 3 the per-layer reduce-scatters instead. An MoE
layer's routed experts are reduced over their expert-data group after the dense buckets (the same stream: exposed),
stepped with states sharded over it and gathered over it. Hybrid sharding's replica all-reduce, ZeRO 1/2's gather of
the updated weights (beside the next forward under ``overlap_param_gather``: its first layer's exposed, the rest
slowing the forward), replicated K/V heads' and the tied embedding's all-reduces, the optimizer step (memory-bound)
and DeepSpeed's host re-gather of its persistent tensors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simcluster.costs.contention import OVERLAP_COMPUTE_SLOWDOWN
from simcluster.plan.moe import optimizer_units

if TYPE_CHECKING:
    from simcluster.search.estimate import Group


def after_backward(g: "Group", zero: int, x0: float, f_layer: float, dp_rs: float) -> tuple[float, float, float]:
    """(exposed data-parallel communication, optimizer, host work) of the first stage of ``g``'s layout at ZeRO stage
    ``zero``: ``x0`` its unit, ``f_layer`` a layer's forward, ``dp_rs`` a layer's ZeRO-2/3 reduce-scatters (module
    docstring); the host work is DeepSpeed's re-gather of its persistent tensors, the GPU idle."""
    est, b, costs = g.est, g.b, g.est.costs
    t, c, d, p = g.t, g.c, g.d, g.p
    params = b.params_one_stage if p == 1 else b.params
    moe, w = g.moe, est.moe_layers / est.layers
    # an MoE layer's routed experts are reduced, stepped and gathered over the expert-data group instead
    # (lowering.grad_sync, lowering.moe): the layers' mean, dense and MoE weighted by their count
    dense = (1 - w) * params.layer + w * moe.dense_params if moe is not None else params.layer
    expert = g.n0 * w * moe.routed_params if moe is not None else 0.0  # stage 0's, per rank
    edp = moe.edp if moe is not None else 1
    stage = g.n0 * dense + params.embedding + (params.head if p == 1 else 0.0)
    dp = 0.0
    # DeepSpeed's pipeline engine all-reduces before its ZeRO-1 step (lowering.grad_sync.pipe_all_reduce)
    op = "all_reduce" if zero == 0 or (zero == 1 and p > 1 and costs.stack.pipe_zero1_all_reduce) \
        else "reduce_scatter"
    if d > 1:
        if zero >= 2:
            dp = dp_rs
        else:
            gb = costs.grad_bytes
            layer = dense * gb
            per_bucket = max(1, -(-est.bucket // layer))  # layers per bucket
            buckets, rest = divmod(g.n0, per_bucket)
            kind = costs.shard_kind(d) if zero else "dp"
            sync = buckets * costs.time(kind, op, t, c, d, p, per_bucket * layer)
            tail = costs.time(kind, op, t, c, d, p,
                              rest * layer + (params.embedding + (params.head if p == 1 else 0.0)) * gb)
            sync += tail
            if est.overlap:  # beside the last backward B, which it slows by s·(what runs beside it)
                back = x0 - f_layer * g.n0
                slow = OVERLAP_COMPUTE_SLOWDOWN * min(max(0.0, sync - tail), back)
                dp = max(sync - back, slow + tail)
            else:
                dp = sync
        # the routed experts' buckets queue on the same stream behind the dense ones (lowering.grad_sync)
        dp += expert_sync(g, op, expert * costs.grad_bytes, edp)
        if zero >= 1:
            z = costs.shard(d)
            if z < d:  # hybrid sharding: each gradient shard all-reduced with its replicas
                dp += costs.time("zr", "all_reduce", t, c, d, p, stage * costs.grad_bytes / z)
            if zero < 3 and est.param_overlap:  # beside the next forward: its first layer's gather exposed,
                first = costs.time(costs.shard_kind(d), "all_gather", t, c, d, p, params.layer * costs.dt)
                rest = costs.time(costs.shard_kind(d), "all_gather", t, c, d, p, stage * costs.dt) - first
                dp += first + OVERLAP_COMPUTE_SLOWDOWN * min(max(0.0, rest), f_layer * g.n0)  # the rest slows it
            elif zero < 3:  # ZeRO-3 keeps the weights sharded: no gather after the step
                dp += costs.time(costs.shard_kind(d), "all_gather", t, c, d, p, stage * costs.dt)
            if zero < 3 and moe is not None and edp > 1:  # the experts' gather: beside the forward from the
                # iteration's start (nothing waits for it: its contention) or after the step
                gather = expert_sync(g, "all_gather", expert * costs.dt, edp, buckets=False)
                dp += OVERLAP_COMPUTE_SLOWDOWN * min(gather, f_layer * g.n0) if est.param_overlap else gather
    if params.kv_replicated and t > 1:  # replicated K/V heads' gradients over the tensor group
        dp += costs.time("tp", "all_reduce", t, c, d, p, g.n0 * params.kv_replicated * costs.grad_bytes)
    if p > 1 and est.tied:
        dp += costs.time("tied", "all_reduce", t, c, d, p, params.word_embedding * costs.grad_bytes)
    shard = costs.shard(d) if zero >= 1 else 1
    opt = costs.optimizer_s(optimizer_units(stage, expert, shard, edp, zero), shard, g.n0)
    host = g.n0 * est.persist_gather_s(est.spec.parallelism.zero_shard or d, t) if zero >= 3 and d > 1 else 0.0
    return dp, opt, host  # (host: DeepSpeed's re-gather of its persistent tensors after the step)


def expert_sync(g: "Group", op: str, nbytes: float, edp: int, buckets: bool = True) -> float:
    """Seconds of stage 0's routed-expert collectives over the expert-data group: ``nbytes`` per rank in
    buckets of ``grad_bucket_bytes`` (lowering's ``_buckets``) or, ``buckets`` False, at once."""
    if g.moe is None or edp < 2 or nbytes <= 0:
        return 0.0
    n = max(1, -(-nbytes // g.est.bucket)) if buckets else 1
    return n * g.est.costs.ep_time(g.t, g.c, g.d, g.moe.etp, g.moe.ep, nbytes / n, op, "edp")
