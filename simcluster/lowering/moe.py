"""A mixture of experts after the backward pass: the routed experts' gradients and weights.

The routed experts of a rank are replicated only over its expert-data group (etp·ep-strided
ranks of its stage, :mod:`simcluster.plan.moe`), so their gradients are reduced there, not over
the whole data-parallel group (Megatron-Core's ``expert_data_parallel_group``): per stage, in
buckets of ``grad_bucket_bytes`` filled as backward produces each MoE layer's expert gradients
(all-reduce, or reduce-scatter under ZeRO-1), and after the optimizer step ZeRO-1 all-gathers
the updated 16-bit expert weights over the same group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simcluster.plan.moe import optimizer_units

if TYPE_CHECKING:
    from simcluster.lowering.grad_sync import GradSync
    from simcluster.plan import Plan


def expert_grads(plan: "Plan", s: int) -> list[tuple[int, float]]:
    """(layer, routed-expert parameters per rank) of stage ``s``'s MoE layers, in backward order."""
    moe = plan.moe
    if moe is None:
        return []
    return [(key, moe.routed_params) for key, _ in plan.grads_produced(s) if key >= 0 and moe.is_moe(key)]


def expert_param_gather(ctx: "GradSync", s: int, steps: dict[int, int]) -> None:
    """ZeRO-1: all-gather stage ``s``'s updated expert weights over the expert-data group, after the optimizer
    step; under ``overlap_param_gather`` beside the next forward instead (simcluster.plan.param_gather): from
    the iteration's start on a stream of its own (``dp-edp``, drawn and counted with data parallelism), no
    compute waiting for it (the experts' first forward comes after the dense layers' first gathers; an
    optimistic bound)."""
    plan, comms = ctx.plan, ctx.comms
    moe = plan.moe
    nbytes = plan.expert_params(s) * plan.dtype_bytes
    if moe is None or moe.edp < 2 or plan.spec.parallelism.zero_stage < 1 or nbytes <= 0:
        return
    beside = plan.param_overlap
    for ranks, group, mirrors in comms.groups("edp", comms.stage_members(s)):
        ctx.tg.add(kind="collective", name="zero.all_gather expert params", ranks=ranks,
                   stream="dp-edp" if beside else "dp",
                   deps=() if beside else tuple(steps[r] for r in ranks if r in steps),
                   transfers=comms.plan("all_gather", group, nbytes, mirrors), nbytes=nbytes, op="all_gather",
                   group=group, phase="zero_comm", stage=s)


def optimizer_params(ctx: "GradSync", s: int, shard: int) -> float:
    """Parameters of stage ``s`` in dense-shard units: the optimizer steps stage_params/shard dense and
    expert_params/edp expert parameters under ZeRO-1, so it is given stage_params + expert·shard/edp."""
    plan = ctx.plan
    if plan.moe is None:
        return plan.stage_params(s)
    return optimizer_units(plan.stage_params(s), plan.expert_params(s), shard, plan.moe.edp,
                           plan.spec.parallelism.zero_stage)
