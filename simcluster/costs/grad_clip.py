"""Gradient clipping in the PyTorch trainers: what ``torch.nn.utils.clip_grad_norm_`` moves every step.

Before the step the PyTorch trainers clip the gradient norm: torchtitan's ``train.py``
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
"""

from __future__ import annotations

#: ``clip_grad_norm_`` per fp32 gradient element of the rank's shard: its norm (read 4), the scale (read 4, write 4).
CLIP_GRAD_BYTES = 12.0
#: Its launches: ``_foreach_norm``, the stack and ``vector_norm`` of the norms, the clamp, ``_foreach_mul_``.
CLIP_GRAD_KERNELS = 4
