"""The PyTorch trainers' optimizer step: ``clip_grad_norm_``, then ``torch.optim.AdamW``'s foreach path.

Gradient clipping. Before the step the PyTorch trainers clip the gradient norm: torchtitan's ``train.py``
(``torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm, foreach=True)``, ``max_norm`` 1.0,
at commits 83c879f1 of March 2024 and 9dec370 of December 2024, the corpus' two torchtitan
benchmarks), Composer's ``GradientClipping`` (llm-foundry's MPT yamls, ``clipping_threshold: 1.0``),
lit-gpt's ``fabric.clip_gradients`` (TinyLlama, ``grad_clip = 1.0``). ``clip_grad_norm_``
(torch/nn/utils/clip_grad.py) reads every fp32 gradient of the rank's shard for its norm
(``torch._foreach_norm``: 4 B) and always multiplies them by the clamped coefficient
(``torch._foreach_mul_``: 4 + 4 B; "multiplying by the clamped coef is redundant when the coef is
clamped to 1, but doing so avoids a ``if clip_coef < 1:`` conditional which can require a CPU <=>
device synchronization"): :data:`CLIP_GRAD_BYTES` per parameter and :data:`CLIP_GRAD_KERNELS`
launches (the norms, their stack and norm, the clamp, the multiply); the norm's all-reduce over
the shards is a few bytes (left out). The stack that uses them is ``pytorch``
(:mod:`simcluster.costs.frameworks`, ``Stack.clip_grad_bytes``), priced with the optimizer step
(:func:`simcluster.plan.costing.optimizer_time`). Megatron-LM's ``clip_grad_norm_fp32`` is part of
:mod:`simcluster.costs.megatron_optimizer`; DeepSpeed's and XLA's clipping live inside their
optimizer steps.

Foreach AdamW (``torch.optim.AdamW``'s default on CUDA, ``_multi_tensor_adamw``; the ``pytorch``
stack's ``optimizer="foreach"``): eight separate multi-tensor passes over fp32 tensors — weight decay
``p.mul_`` (4 + 4), ``m.lerp_(g)`` (8 + 4), ``v.mul_`` (4 + 4), ``v.addcmul_(g, g)`` (8 + 4), ``sqrt``
(4 + 4), ``div_`` (4 + 4), ``add_(eps)`` (4 + 4), ``p.addcdiv_(m, denom)`` (12 + 4) =
:data:`FOREACH_ADAM_BYTES` per parameter in :data:`FOREACH_ADAM_KERNELS` launches.
"""

from __future__ import annotations

#: ``clip_grad_norm_`` per fp32 gradient element of the rank's shard: its norm (read 4), the scale (read 4, write 4).
CLIP_GRAD_BYTES = 12.0
#: Its launches: ``_foreach_norm``, the stack and ``vector_norm`` of the norms, the clamp, ``_foreach_mul_``.
CLIP_GRAD_KERNELS = 4

#: Foreach AdamW's bytes per parameter and step (the module docstring lists its eight passes).
FOREACH_ADAM_BYTES = 80.0
FOREACH_ADAM_KERNELS = 8  # one multi-tensor launch per elementwise op
