"""Megatron-LM 2019's ``FP16_Optimizer``: the per-tensor passes around its fused Adam step.

Megatron-LM as released for Shoeybi et al. 2019 (arXiv:1909.08053; NVIDIA/Megatron-LM commit abe36e2,
2019-07-29, ``pretrain_gpt2.py``, ``fp16/fp16.py``, ``fp16/loss_scaler.py``, ``fp16/fp16util.py``,
``mpu/grads.py``) wraps Apex's ``FusedAdam`` in ``FP16_Optimizer`` with dynamic loss scaling. Each step,
besides the fused Adam pass over the fp32 master weights (:data:`simcluster.plan.costing.OPTIMIZER_BYTES`),
it loops in Python over every parameter tensor:

Loops that wait for the GPU on every tensor (the host and the GPU take turns)
    ``update_master_grads`` → ``_check_overflow`` → ``DynamicLossScaler.has_overflow_serial``:
    ``float(x.float().sum())`` per fp16 gradient: the cast (read 2, write 4 B), the sum (read 4 B) and a
    device-to-host read of the result; 3 host ops per tensor.
    ``clip_master_grads`` → ``mpu.clip_grad_norm``: ``p.grad.data.norm(2)`` per fp32 master gradient
    (read 4 B) then ``.item()``; 2 host ops per tensor. (The ``mul_`` by the clip coefficient runs only on
    steps whose norm exceeds ``--clip-grad``: left out.)
    Together :data:`SYNC_BYTES` = 14 B per parameter and :data:`SYNC_OPS` = 5 host ops per tensor; per
    tensor the host op and the kernel it waits for add, so the loops cost
    ``memory_time(14 · P) + 5 · T · host_op_s``.

Loops that queue kernels without waiting (the GPU runs ahead of the host)
    ``_model_grads_to_master_grads``: ``master.grad.data.copy_(model.grad.data)`` (read 2, write 4 B);
    ``_downscale_master``: ``param.grad.data.mul_(1/loss_scale)`` (read 4, write 4 B);
    ``zero_grad``: ``p.grad.zero_()`` on the fp32 master gradients (write 4 B) and on the fp16 model
    gradients (write 2 B); ``_master_params_to_model_params``: ``model.data.copy_(master.data)`` (read 4,
    write 2 B), of which the fused step's 30 B already count the 2 B written: 4 B more.
    Together :data:`ASYNC_BYTES` = 24 B per parameter, :data:`ASYNC_OPS` = 5 host ops per tensor, costing
    ``max(memory_time(24 · P), 5 · T · host_op_s)`` (the stack's host-dispatch rule,
    :mod:`simcluster.costs.frameworks`).

Tensors ``T``: Megatron-LM 2019's GPT-2 layer (``mpu/transformer.py``) holds 12 — two LayerNorms (weight,
bias) and four linear layers (weight, bias): ``query_key_value``, ``dense``, ``dense_h_to_4h``,
``dense_4h_to_h`` — and the model 4 more: word and position embeddings, the final LayerNorm's weight and
bias (``model/gpt2_modeling.py``).

The tiny model-parallel all-reduces of the overflow flag and of the squared norm are left out.
"""

from __future__ import annotations

from simcluster.costs.compute import ComputeModel

#: Bytes per parameter of the loops that read a result back every tensor: overflow check's cast and sum
#: (2 + 4 + 4) and the clip's norm (4) (module docstring).
SYNC_BYTES = 14.0
#: Host ops per tensor of those loops: ``.float()``, ``.sum()``, ``float()``; ``.norm()``, ``.item()``.
SYNC_OPS = 5
#: Bytes per parameter of the loops that only queue kernels: master-grad copy (6), downscale (8),
#: zero_grad of both gradients (4 + 2) and the master-to-model copy's read (4) (module docstring).
ASYNC_BYTES = 24.0
#: Host ops per tensor of those loops: ``copy_``, ``mul_``, two ``zero_``, ``copy_``.
ASYNC_OPS = 5
#: Parameter tensors per transformer layer in Megatron-LM 2019's GPT-2 (``mpu/transformer.py``).
TENSORS_PER_LAYER = 12
#: Parameter tensors outside the layers: word and position embeddings, final LayerNorm weight and bias.
OTHER_TENSORS = 4


def tensors(layers: int) -> int:
    """Parameter tensors one rank holding ``layers`` layers loops over: ``12 · layers + 4``."""
    return TENSORS_PER_LAYER * layers + OTHER_TENSORS


def extra_time(cm: ComputeModel, params: float, n_tensors: int, host_op_s: float) -> tuple[float, float]:
    """(seconds, bytes) of FP16_Optimizer's per-tensor loops over ``params`` parameters in ``n_tensors``
    tensors, beyond the fused Adam step:

        t = memory_time(14 · P) + 5 · T · host_op_s  +  max(memory_time(24 · P), 5 · T · host_op_s)
    """
    sync_bytes, async_bytes = SYNC_BYTES * params, ASYNC_BYTES * params
    secs = cm.memory_time(sync_bytes, "elementwise") + SYNC_OPS * n_tensors * host_op_s
    secs += max(cm.memory_time(async_bytes, "elementwise"), ASYNC_OPS * n_tensors * host_op_s)
    return secs, sync_bytes + async_bytes
