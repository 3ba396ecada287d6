"""The loss kernels of each software stack: cross-entropy over the vocabulary, and training
metrics over the logits, as bandwidth-bound passes (kernel kind, bytes per logit element).

:mod:`simcluster.costs.frameworks` gives each stack its passes; the cost model charges them over
the [tokens, V/t] logits of each microbatch.

Cross-entropy over the vocabulary (time: bandwidth-bound passes over the [tokens, V/t] logits)
    megatron, deepspeed (Megatron's ``VocabParallelCrossEntropy``, megatron/core/tensor_parallel/
    cross_entropy.py): forward ``logits.float()`` (read 2, write 4 B), max (read 4), subtract
    (4 + 4), exp in place (4 + 4), sum (4), divide in place (4 + 4): the softmax is saved in fp32
    (4 B per logit, per microbatch in flight); backward subtracts 1 at the targets and scales in
    place (4 + 4), then the cast's backward writes bf16 (4 + 2).
    pytorch (``F.cross_entropy`` under autocast, which runs it in fp32): forward cast (2 + 4),
    log-softmax (4 + 4, a normalisation kernel) and a gather; the caller keeps its bf16 logits
    (2 B) and autograd the fp32 log-softmax output (4 B). Backward: NLL's dense fp32 gradient
    (write 4), log-softmax backward (4 + 4 read, 4 write), cast back (4 + 2). Inside the
    log-softmax backward the output, its gradient and the input gradient are alive together:
    8 B per logit more than what is saved, the "memory spike" of large vocabularies.
    jax (XLA fuses the softmax cross-entropy into the logits' consumers): one fp32 pass each way;
    what it saves is taken as Megatron's 4 B (no measurement: stated assumption).
    megatron_fused (``training.cross_entropy: megatron_fused``; Megatron-Core's ``--cross-entropy-loss-fusion``,
    NeMo's ``cross_entropy_loss_fusion``: megatron/core/fusions/fused_cross_entropy.py at core_r0.9.0): the same
    ``VocabParallelCrossEntropy`` steps grouped into four ``jit_fuser`` functions, ``torch.compile`` from
    PyTorch 2.2 (megatron/core/jit.py), each one kernel with its row reductions: ``calculate_logits_max``
    (read 2, write the fp32 copy 4, its max), ``calculate_predicted_logits`` (subtract, exp in place and sum:
    4 + 4), ``calculate_cross_entropy_loss`` (divide in place: 4 + 4); backward ``calculate_gradients``
    (the target update, scale and the bf16 cast in one: read 4, write 2). Saves the fp32 softmax as the
    unfused one does.
    fused (``training.cross_entropy: fused``, any stack): flash-attn's Triton kernel
    (``flash_attn/ops/triton/cross_entropy.py``; llm-foundry's default ``loss_fn: fused_crossentropy``,
    TinyLlama's fused loss): forward one online-softmax read of the 16-bit logits (2 B), backward
    read 2 and write the 16-bit gradient 2; it saves the logits themselves (2 B) and adds only the
    gradient (2 B) inside its backward.

Training metrics over the logits (``training.train_metrics``; Composer, llm-foundry)
    Composer's trainer updates the model's train metrics after every microbatch's backward
    (``Trainer._train_microbatch`` → ``_eval_train_metrics``: ``eval_forward(batch, outputs)`` reuses the
    logits, then ``update_metric`` under ``torch.no_grad()`` and the run's autocast; composer/trainer/trainer.py,
    v0.13.4 through v0.19). llm-foundry's MPT (``ComposerMosaicGPT`` in May 2023, ``ComposerMPTCausalLM``
    after; ``use_train_metrics`` defaults to true, its flag added Oct 2023 and never set by the benchmark
    yamls) trains with two: ``LanguageCrossEntropy`` and ``LanguagePerplexity`` (its subclass), each of which
    runs ``torch.nn.CrossEntropyLoss(reduction='sum')`` over the whole [tokens, V] logits
    (composer/metrics/nlp.py) — PyTorch's ``F.cross_entropy`` under autocast, whatever loss the model trains
    with: :data:`TORCH_LOSS_FWD` per metric and microbatch (cast 2 + 4, log-softmax 4 + 4 B per logit).
    Charged with the loss's forward (same stream, no overlap; the metric runs after the backward).
    Memory left out: its fp32 copy and log-softmax output (8 B per logit) live after the backward has
    freed the activations.
"""

from __future__ import annotations

#: (kernel kind, bytes per logit element) of each pass of a cross-entropy implementation.
Passes = tuple[tuple[str, float], ...]

MEGATRON_LOSS_FWD: Passes = (("copy", 6.0), ("normalization", 4.0), ("elementwise", 8.0), ("elementwise", 8.0),
                             ("normalization", 4.0), ("elementwise", 8.0))
MEGATRON_LOSS_BWD: Passes = (("elementwise", 8.0), ("copy", 6.0))
TORCH_LOSS_FWD: Passes = (("copy", 6.0), ("normalization", 8.0))
TORCH_LOSS_BWD: Passes = (("elementwise", 4.0), ("normalization", 12.0), ("copy", 6.0))
#: Megatron-Core's fused vocab-parallel cross-entropy (``training.cross_entropy: megatron_fused``, module docstring).
MEGATRON_FUSED_LOSS_FWD: Passes = (("copy", 6.0), ("normalization", 8.0), ("elementwise", 8.0))
MEGATRON_FUSED_LOSS_BWD: Passes = (("elementwise", 6.0),)
XLA_LOSS_FWD: Passes = (("normalization", 6.0),)
XLA_LOSS_BWD: Passes = (("elementwise", 6.0),)

#: ``training.cross_entropy: fused`` (flash-attn ``flash_attn/ops/triton/cross_entropy.py``, the kernel behind
#: ``flash_attn.losses.cross_entropy.CrossEntropyLoss``): forward one online-softmax pass reading the 16-bit
#: logits (2 B) and saving them with one fp32 log-sum-exp per row; backward reads them and writes the
#: 16-bit gradient into a new buffer (2 + 2 B), the only tensor it adds (2 B per logit).
FUSED_LOSS_FWD: Passes = (("normalization", 2.0),)
FUSED_LOSS_BWD: Passes = (("elementwise", 4.0),)
FUSED_LOSS_SAVED_BYTES = 2.0
#: One Composer train metric over the logits (``LanguageCrossEntropy``, ``LanguagePerplexity``:
#: ``torch.nn.CrossEntropyLoss(reduction='sum')`` under autocast, composer/metrics/nlp.py): PyTorch's fp32
#: cross-entropy forward, the cast (2 + 4 B) and the log-softmax (4 + 4 B) per logit (module docstring).
TRAIN_METRIC_PASSES: Passes = TORCH_LOSS_FWD
FUSED_LOSS_TRANSIENT_BYTES = 2.0
