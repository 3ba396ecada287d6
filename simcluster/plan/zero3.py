"""ZeRO-3's per-layer collectives as each stack issues them: how many gathers and reduce-scatters a
layer makes, which are prefetched or fetched again, and DeepSpeed's host work around them.

The mechanisms and their sources: the "ZeRO-3 parameter fetches" section of
:mod:`simcluster.costs.frameworks`, and :mod:`simcluster.costs.deepspeed_zero3`.
:func:`simcluster.plan.plan.build_plan` puts these counts into the unit shape; the search screen
(:mod:`simcluster.search.estimate`) reads the same.
"""

from __future__ import annotations

import math

from simcluster.costs.deepspeed_zero3 import module_weights
from simcluster.costs.frameworks import framework
from simcluster.costs.params import head_dim
from simcluster.plan.steps import Step
from simcluster.spec.workload import WorkloadSpec
from simcluster.workload import ModelOps, model_ops


def _tensor(spec: WorkloadSpec, tensor: int | None) -> int:
    return spec.parallelism.tensor if tensor is None else tensor


def _zero(spec: WorkloadSpec, zero: int | None) -> int:
    return spec.parallelism.zero_stage if zero is None else zero


def zero3_gathers(spec: WorkloadSpec, ops: ModelOps | None = None, tensor: int | None = None) -> tuple[int, bool]:
    """(all-gathers per layer, prefetched) of ZeRO-3 under the spec's stack.

    One gather per layer, or one per linear layer under DeepSpeed's per-module fetch. Prefetched
    always under FSDP; under DeepSpeed only when each fetched module's weights (per tensor rank) fit
    its prefetch bucket (``deepspeed_zero3.DEEPSPEED_PREFETCH_BUCKET``). ``tensor``: the tensor degree
    (default the spec's; the search screen passes each layout's, as it does ``zero`` below).
    """
    stack = framework(spec.training.framework)
    modules = module_weights(ops or model_ops(spec.model, spec.training), _tensor(spec, tensor))
    parts = len(modules) if stack.zero3_fetch == "module" else 1
    return parts, max(modules, default=0.0) <= stack.zero3_prefetch_params


def zero3_refetch(spec: WorkloadSpec, ops: ModelOps | None = None, tensor: int | None = None,
                  recompute: str | None = None) -> tuple[int, float]:
    """(modules, share of the layer's weights) ZeRO-3 gathers again between recompute and backward.

    DeepSpeed keeps a module's weights after its use only while the parameters fetched before its
    next use stay under ``stage3_max_reuse_distance``. Under full recompute the trace runs
    rc(m1..mk) then bwd(mk..m1), so module i waits 2·Σ_{j>i} |m_j| parameters: released (and
    fetched again) when that reaches the limit (:mod:`simcluster.costs.deepspeed_zero3`).
    Stacks that gather one unit per layer keep it through recompute and backward: (0, 0).
    """
    stack = framework(spec.training.framework)
    if stack.zero3_fetch != "module" or (spec.training.recompute if recompute is None else recompute) != "full":
        return 0, 0.0
    sizes = module_weights(ops or model_ops(spec.model, spec.training), _tensor(spec, tensor))
    again = [s for i, s in enumerate(sizes) if 2 * sum(sizes[i + 1:]) >= stack.zero3_reuse_distance]
    return len(again), (sum(again) / sum(sizes) if sizes else 0.0)


def collective_prep_s(spec: WorkloadSpec, ranks: int, zero: int | None = None) -> float:
    """Host seconds before each ZeRO-3 gather or reduce-scatter over ``ranks`` ranks: DeepSpeed's
    per-rank list views and copies (``zero3_host_ops_per_rank`` × ``HOST_OP_S`` per rank), 0 elsewhere."""
    stack = framework(spec.training.framework)
    return ranks * stack.zero3_host_ops_per_rank * stack.host_op_s if _zero(spec, zero) >= 3 else 0.0


def fetch_syncs(spec: WorkloadSpec, zero: int | None = None) -> bool:
    """Whether the stack's ZeRO-3 host work before each collective starts after a device-wide sync, so that the
    gradient reduce-scatters in flight end first (DeepSpeed ≤ 0.4: :mod:`simcluster.costs.deepspeed_zero3`)."""
    return _zero(spec, zero) >= 3 and framework(spec.training.framework).zero3_fetch_sync


def zero3_layer_tensors(spec: WorkloadSpec, ops: ModelOps | None = None,
                        tensor: int | None = None) -> tuple[float, ...]:
    """Elements of each tensor of one layer on one tensor rank, as :mod:`simcluster.costs.params` counts
    them: each GEMM's weight (n·k/t) and bias (n/t column-parallel, n row-parallel), each norm's γ and β (h)."""
    t, h = _tensor(spec, tensor), spec.model.hidden
    out: list[float] = []
    for op in (ops or model_ops(spec.model, spec.training)).layer:
        if op.kind == "gemm" and op.gemm:
            _, n, k = op.gemm
            out += [n * k / t, n / t if op.tp == "column" else float(n)]
        elif op.name == "qk_norm":  # the q and k norms' scales, one head's width each (costs.params)
            out += [float(head_dim(spec.model))] * 2
        elif op.kind == "norm":
            out += [float(h), float(h)]
    return tuple(out)


def zero3_grad_parts(spec: WorkloadSpec, ops: ModelOps | None = None, zero: int | None = None) -> int:
    """Reduce-scatters per layer and microbatch of ZeRO-3's gradients: one per tensor under DeepSpeed
    (``_reduce_scatter_gradients``, persistent tensors included: :mod:`simcluster.costs.deepspeed_zero3`), else one."""
    if not framework(spec.training.framework).zero3_persistence_threshold or _zero(spec, zero) < 3:
        return 1
    return len(zero3_layer_tensors(spec, ops))


def zero3_persistent_gather_s(spec: WorkloadSpec, ranks: int, ops: ModelOps | None = None, tensor: int | None = None,
                              zero: int | None = None) -> float:
    """Host seconds per layer of DeepSpeed's re-gather of its persistent tensors after each optimizer step:
    ``Init._allgather_params`` copies each tensor of n < ``stage3_param_persistence_threshold`` elements
    rank by rank, ⌈n / ⌈n/N⌉⌉ pieces, each ``zero3_host_ops_per_rank`` × ``host_op_s`` (0 elsewhere)."""
    stack = framework(spec.training.framework)
    limit = stack.zero3_persistence_threshold
    if not limit or _zero(spec, zero) < 3 or ranks <= 1:
        return 0.0
    pieces = 0
    for n in zero3_layer_tensors(spec, ops, tensor):
        if n < limit:
            pieces += math.ceil(n / math.ceil(n / ranks))
    return pieces * stack.zero3_host_ops_per_rank * stack.host_op_s


def _lead(steps: list[tuple[int, Step]]) -> int:
    """Steps a layer's backward opens with to fetch its weights: DeepSpeed's host preparation, the gather."""
    n = 1 if steps and steps[0][1].name == "zero.prep" else 0
    return n + 1 if len(steps) > n and steps[n][1].what == "gather" else 0


def prefetch_window(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """The steps of one layer's pass that the next layer's prefetched gather runs beside: lowering issues a
    prefetched gather a block ahead of need (:meth:`simcluster.lowering.lower.Lowerer._unit`: after the block before
    the last one computed), so it is hidden only behind what follows the layer's second-to-last block — the last
    block and the tensor collectives around it. A layer of one block (the parallel block) is hidden whole."""
    blocks = [i for i, st in enumerate(steps) if st.what == "compute" and st.block]
    return steps[blocks[-2] + 1:] if len(blocks) >= 2 else steps


def backward_prefetch(layers: list[list[tuple[int, Step]]]) -> list[tuple[int, Step]]:
    """ZeRO-3's backward prefetch: each layer's weight gather is issued before the reduce-scatter
    of the layer after it, so that on the data-parallel stream (one queue: collectives of one
    communicator run in issue order) the gather is not held up by that reduce-scatter (PyTorch
    FSDP's ``BACKWARD_PRE``, Zhao et al. 2023 §3.3; DeepSpeed ZeRO-3 prefetches alike)."""
    out: list[tuple[int, Step]] = []
    for i, steps in enumerate(layers):
        nxt = layers[i + 1] if i + 1 < len(layers) else []
        gather = nxt[:_lead(nxt)]
        body = steps[_lead(steps):] if i else steps
        if gather and body and body[-1][1].what == "reduce_grads":
            body = body[:-1] + gather + body[-1:]
        elif gather:
            body = body + gather
        out += body
    return out
