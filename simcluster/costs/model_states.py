"""Model states per parameter: the weights, gradients and optimizer states each software stack keeps, before and
after ZeRO sharding (what :func:`simcluster.costs.memory.stage_memory` multiplies by a stage's parameters).

Model states (Rajbhandari et al. 2020, ZeRO, §3.1): mixed-precision Adam
keeps 2 B of 16-bit weights + 2 B of 16-bit gradients + 12 B of fp32 master
weights, momentum and variance = 16 B/param (ZeRO's accounting, which the stacks other than Megatron keep).
Megatron keeps its bf16 (and Transformer Engine FP8) gradients in a 4 B fp32 ``main_grad`` buffer and under
fp16 an fp32 gradient copy in its optimizer (:func:`simcluster.costs.optimizer_states.megatron_state_bytes`:
2 + 4 + 12, 2 + 2 + 16); with ``training.grad_reduce_in_bf16`` a 2 B buffer.
SGD with momentum: 2 + 2 + 8 (master + momentum). fp8 (DeepSeek-V3 §3.3.4): Adam's moments in
BF16, 2 + 2 + 8 (SGD 2 + 2 + 6); its GEMM inputs (QKV, projection, fc1, fc2) are stored in FP8,
one byte each instead of two (§3.3.1; Transformer Engine saves the quantized input alike). fp32 training: 4 + 4 + 8
(Adam m, v; no master copy) or 4 + 4 + 4 (SGD momentum).
ZeRO shards over the d·c ranks that hold the same weights (Megatron's
data-parallel-with-context group): stage ≥ 1 the optimizer states,
≥ 2 also the gradients, 3 also the weights. PyTorch autocast keeps fp32 weights and
gradients and 16-bit copies of the weights; FSDP2 fp32 shards (:func:`held_bytes_per_param`).
"""

from __future__ import annotations

from simcluster.costs.frameworks import Stack, framework
from simcluster.costs.optimizer_states import BF16_STATE_BYTES, megatron_state_bytes, state_bytes_per_param
from simcluster.spec.parallelism import ParallelismSpec
from simcluster.spec.training import TrainingSpec


def fsdp2(training: TrainingSpec, parallelism: ParallelismSpec) -> bool:
    """PyTorch with ZeRO-3 is FSDP2 (:func:`simcluster.costs.frameworks.framework`)."""
    return training.framework == "pytorch" and parallelism.zero_stage >= 3


def state_stack(training: TrainingSpec, parallelism: ParallelismSpec) -> Stack:
    """The stack whose model code and parameter dtypes decide what is kept (its ZeRO stage, fused kernels and
    FSDP parameter dtype; :func:`simcluster.costs.frameworks.framework`)."""
    return framework(training.framework, parallelism.zero_stage, fused_kernels=training.fused_kernels,
                     fsdp_param_dtype=training.fsdp_param_dtype, optimizer_dtype=training.optimizer_dtype,
                     grad_reduce_bf16=training.grad_reduce_in_bf16)


def fsdp_fp32(training: TrainingSpec, parallelism: ParallelismSpec) -> bool:
    """FSDP with fp32 parameters under autocast (``training.fsdp_param_dtype: fp32``, Lightning's bf16-mixed)."""
    return state_stack(training, parallelism).fsdp_fp32_params and training.precision != "fp32"


def lazy_gradients(training: TrainingSpec, parallelism: ParallelismSpec) -> bool:
    """Whether the gradients do not exist yet while the loss's backward runs: FSDP2 assigns each sharded
    gradient after its reduce-scatter (``FSDPParam``'s post-backward) and ``optimizer.zero_grad()`` sets them
    to None (``set_to_none=True``, PyTorch ≥ 2.0's default), so with one microbatch per step (no gradient
    accumulation) none exists before the backward of the last layer."""
    m = training.global_batch // (training.micro_batch * (parallelism.data or 1))
    return fsdp2(training, parallelism) and m <= 1


def zero_shard(parallelism: ParallelismSpec) -> int:
    """Ranks ZeRO shards over: data × context, or a hybrid shard group of ``zero_shard`` data ranks."""
    if parallelism.zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"zero_stage must be 0..3, not {parallelism.zero_stage!r}")
    return (parallelism.zero_shard or parallelism.data or 1) * parallelism.context


def held_bytes_per_param(training: TrainingSpec, parallelism: ParallelismSpec) -> tuple[int, int, int, int, int]:
    """(weights, gradients, optimizer states, 16-bit weight copies, gathered weight) bytes per parameter
    before ZeRO sharding, as the stack keeps them (module docstring)."""
    w_b, g_b, o_b = state_bytes_per_param(training.precision, training.optimizer, training.fp8_recipe)
    gathered = w_b  # bytes of a weight ZeRO-3 gathers
    cast = 0
    stack = state_stack(training, parallelism)
    if stack.optimizer_states == "bf16":  # bf16 states, no master (costs.optimizer_states)
        w_b, g_b, o_b = BF16_STATE_BYTES[training.optimizer]
        return w_b, g_b, o_b, 0, w_b
    if stack.name == "megatron" and not stack.grad_reduce_bf16:  # fp32 main gradients (costs.optimizer_states)
        w_b, g_b, o_b = megatron_state_bytes(training.precision, training.fp8_recipe, (w_b, g_b, o_b))
    if stack.fsdp_fp32_params and training.precision != "fp32":  # fsdp_fp32()
        # FSDP with fp32 parameters under autocast: fp32 shards, gradients and Adam's m, v; fp32 gathers; each
        # GEMM's bf16 cast of its gathered weight kept by autograd for its backward (whole, not sharded)
        return 4, 4, o_b - 4, 2, 4
    if stack.autocast and training.precision != "fp32":
        # fp32 parameters, gradients and optimizer states; 16-bit copies of the weights (frameworks docstring)
        w_b, g_b, o_b, cast = 4, 4, o_b - 4, 2  # no separate fp32 master copy (o_b - 4)
    elif fsdp2(training, parallelism) and training.precision != "fp32":
        # FSDP2's MixedPrecisionPolicy keeps the sharded parameters in fp32 and reduces gradients in fp32
        # (torchtitan: param_dtype bf16, reduce_dtype fp32): 4 + 4 + Adam's m, v (the same 16 B in all)
        w_b, g_b, o_b = 4, 4, w_b + g_b + o_b - 8
    return w_b, g_b, o_b, cast, gathered
