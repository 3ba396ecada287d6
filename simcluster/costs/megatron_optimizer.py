"""Megatron-LM's mixed-precision optimizer step: the passes around its fused Adam (stack optimizer ``megatron``).

Sources: NVIDIA/Megatron-LM ``megatron/optimizer/optimizer.py`` (``MixedPrecisionOptimizer.step``) and
``megatron/training.py`` (``train_step``) at 7fccd6a (2022-05), ``megatron/model/distributed.py``
(``zero_grad_buffer``, ``allreduce_gradients``); the same passes in Megatron-Core's
``megatron/core/optimizer/optimizer.py``, ``distrib_optimizer.py`` and ``distributed/param_and_grad_buffer.py``
at core_r0.9.0. Every pass is a memory-bound (multi-tensor) kernel.

Per weight the rank holds (its whole local model), g bytes per gradient element:
    ``zero_grad_buffer`` at the start of the iteration sets the contiguous gradient buffer to zero (write g);
    the gradients are scaled by 1/d before the data-parallel reduction (``buffer_.data /=
    data_parallel_world_size`` in ``allreduce_gradients``, run even at d = 1; Megatron-Core's
    ``start_grad_sync``: ``grad_data *= gradient_scaling_factor`` unless ``average_in_collective``):
    read g, write g.
    g = 4 under bf16 and FP8 (``accumulate_allreduce_grads_in_fp32``, forced on for bf16: fp32 ``main_grad``)
    and fp32; 2 under fp16 (the buffer holds the parameters' dtype).
Per weight the optimizer updates (its 1/d shard under the distributed optimizer):
    fp16 only: ``_copy_model_grads_to_main_grads`` (``main_grad.float()``: read 2, write 4) and
    ``_unscale_main_grads_and_check_for_nan`` (``torch._amp_foreach_non_finite_check_and_unscale_``:
    read 4, write 4); under bf16 ``.float()`` of the fp32 buffer is the buffer itself and no scaler runs;
    the gradient norm (``clip_grad_norm_fp32``: ``multi_tensor_l2norm``, read 4);
    Apex ``FusedAdam`` (read master weight, gradient, m, v: 16; write master, m, v: 12);
    16-bit precisions: ``_copy_main_params_to_model_params`` (``multi_tensor_scale`` fp32 → 16-bit: read 4,
    write 2).
So bf16: 12 B per held weight and 38 B per updated one (50 B at d = 1, against the 30 B of one fused
pass); fp16: 6 + 52 = 58 B; fp32 (``FP32Optimizer``): 12 + 32 B.

Left out: the ``multi_tensor_scale`` by the clip coefficient (only on steps whose gradient norm exceeds
``--clip-grad``); the tiny all-reduces of the norm and the overflow flag; the SC'21 scripts' fp16 path
without contiguous buffers, which flattens, divides and unflattens the gradients around the all-reduce
(12 B per held weight instead of 6); NeMo's Apex ``DistributedFusedAdam`` is costed as Megatron-Core's
distributed optimizer. With ``grad_sync_dtype: bf16`` (NeMo's recipes; Megatron-Core's ``--grad-reduce-in-bf16``:
``training.grad_reduce_in_bf16``) the contiguous gradient buffer is bf16: g = 2, and the norm and Adam read 2-byte
gradients (34 B per updated weight instead of 38).
"""

from __future__ import annotations

#: The zeroing (1 write) and the 1/d scaling (1 read, 1 write) of every held gradient element.
HELD_PASSES = 3
#: Bytes per updated weight of the step's passes after the reduction, by precision (module docstring):
#: the gradient norm (4), Apex FusedAdam (28), the master-to-16-bit copy (6); fp16 adds the gradients' cast to
#: fp32 (6) and the unscale with its overflow check (8).
UPDATED_BYTES = {"bf16": 38.0, "fp8": 38.0, "fp16": 52.0, "fp32": 32.0}
#: Bytes per element of Megatron's contiguous gradient buffer, by precision (module docstring).
GRAD_BUFFER_BYTES = {"bf16": 4.0, "fp8": 4.0, "fp16": 2.0, "fp32": 4.0}


#: bf16 gradients (``training.grad_reduce_in_bf16``): the norm and Adam read 2-byte gradients, 2 + 2 B fewer per
#: updated weight, and the held passes run over a 2-byte buffer.
BF16_GRAD_UPDATED_SAVING = 4.0


def step_bytes(precision: str, params: float, shard: int = 1, bf16_grads: bool = False) -> float:
    """Bytes Megatron's Adam step moves on a rank holding ``params`` weights and updating ``params / shard``
    (``bf16_grads``: the gradient buffer in bf16, ``training.grad_reduce_in_bf16``)."""
    held = 2.0 if bf16_grads else GRAD_BUFFER_BYTES[precision]
    updated = UPDATED_BYTES[precision] - (BF16_GRAD_UPDATED_SAVING if bf16_grads else 0.0)
    return HELD_PASSES * held * params + updated * params / shard
