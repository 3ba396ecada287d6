"""The software stack a workload runs and the bytes its data-parallel and pipeline communications move.

:func:`spec_stack` resolves ``training.framework`` with the workload's keys (:func:`simcluster.costs.frameworks.framework`);
:func:`weight_bytes` gives the bytes per parameter of the weight gathers and the gradient reduction;
:func:`plan_sends` how a pipeline send runs (:mod:`simcluster.costs.pipeline_sends`). The plan, the lowering and
the analytical screen share them.
"""

from __future__ import annotations

from simcluster.costs.frameworks import FSDP_FP32_GATHER_BYTES, FSDP_FP32_REDUCE_BYTES, Stack, framework
from simcluster.costs.optimizer_states import BF16_GRAD_REDUCE_BYTES
from simcluster.costs.pipeline_sends import PipelineSends, pipeline_sends
from simcluster.spec.workload import WorkloadSpec
from simcluster.workload import DTYPE_BYTES


def grad_bytes_per_param(precision: str) -> int:
    """Gradient bytes reduced per parameter: Megatron keeps fp32 ``main_grad`` for bf16."""
    return 2 if precision == "fp16" else 4


def spec_stack(spec: WorkloadSpec) -> Stack:
    """The stack of ``spec``'s ``training.framework`` with the spec's ZeRO stage, fused kernels, gradient
    accumulation, loss kernel, train metrics and FSDP parameter dtype
    (:func:`simcluster.costs.frameworks.framework`)."""
    tr = spec.training
    return framework(tr.framework, spec.parallelism.zero_stage, tr.fused_kernels, tr.gradient_accumulation_fusion,
                     tr.precision, spec.num_microbatches, tr.cross_entropy, tr.train_metrics, tr.fsdp_param_dtype,
                     tr.recompute_saves, tr.optimizer_dtype, tr.fp8_weight_cache, tr.grad_reduce_in_bf16,
                     tr.fp8_param_gather)


def weight_bytes(precision: str, stack: Stack) -> tuple[int, int]:
    """(bytes per parameter the weight gathers move, bytes per parameter the gradient reduction moves): the
    precision's element and :func:`grad_bytes_per_param`, or FSDP with fp32 parameters' 4 and 2
    (``training.fsdp_param_dtype: fp32``, :data:`simcluster.costs.frameworks.FSDP_FP32_GATHER_BYTES`), or a bf16
    reduction with bf16 optimizer states (``training.optimizer_dtype: bf16``) or alone (``grad_reduce_in_bf16``).
    FP8 weights (``training.fp8_param_gather``: Megatron-LM's ``--fp8-param-gather``, "keep the compute param in fp8
    ... and perform the param all-gather in fp8", megatron/training/arguments.py) gather 1 byte per parameter; the
    distributed optimizer quantizes its updated shard (``quantize_param_shard``, megatron/core/optimizer/
    distrib_optimizer.py). Left as they are: the per-step weight cast the FP8 GEMMs are charged (about what the
    shard's quantize and the FP8 weight's transpose cost, a few ms a step) and the 2 B per weight held (the FP8
    weight and its transposed copy)."""
    if stack.fsdp_fp32_params:
        return FSDP_FP32_GATHER_BYTES, FSDP_FP32_REDUCE_BYTES
    gather = 1 if stack.fp8_param_gather else DTYPE_BYTES[precision]
    if stack.optimizer_states == "bf16" or stack.grad_reduce_bf16:  # grad_sync_dtype bf16 (costs.optimizer_states)
        return gather, BF16_GRAD_REDUCE_BYTES
    return gather, grad_bytes_per_param(precision)


def plan_sends(spec: WorkloadSpec, schedule: str, sp: bool) -> PipelineSends:
    """The pipeline sends of ``spec``'s stack under ``schedule`` and sequence parallelism ``sp``."""
    par = spec.parallelism
    return pipeline_sends(framework(spec.training.framework), schedule, sp, par.overlap_p2p_comm,
                          par.p2p_scatter_gather)
