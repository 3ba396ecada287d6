"""Eager PyTorch attention without a fused kernel: the passes over the scores that model code launches.

With ``training.flash_attention: false`` the graph's attention core (:meth:`simcluster.costs.compute.ComputeModel.
attention_time`) is Megatron's unfused path: the two batched GEMMs, one fused scale-mask-softmax kernel
(``FusedScaleMaskSoftmax``: read 2, write 2 B per score) and the dropout (2 + 2 B and a 1-byte mask). Plain
PyTorch model code writes the same attention as separate ATen ops, each a pass over the b·a·s² scores:

- karpathy/nanoGPT ``model.py`` (``CausalSelfAttention.forward``, the branch without ``flash``):
  ``att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))``, then
  ``att = att.masked_fill(self.bias[:,:,:T,:T] == 0, float('-inf'))``, ``F.softmax``, ``self.attn_dropout``,
  ``att @ v``;
- rasbt/LLMs-from-scratch ``ch03`` ``MultiHeadAttention`` (and ``ch05/10_llm-training-speed/00_orig.py``):
  ``attn_scores.masked_fill_(mask_bool, -torch.inf)`` with ``mask_bool = self.mask.bool()[:T, :T]``, then
  ``torch.softmax(attn_scores / keys.shape[-1]**0.5, dim=-1)``, ``self.dropout``, ``attn_weights @ values``;
- Hugging Face ``transformers`` GPT-2 ``eager`` attention (``eager_attention_forward``): ``torch.matmul``, a
  division by ``value.size(-1) ** 0.5``, ``torch.where(causal_mask, ...)``, ``softmax``, ``dropout``, ``matmul``.

So beyond the graph's softmax and dropout, a forward makes two passes more over the scores — the scaling and the
mask (read 2, write 2 B per score each; the [s, s] boolean mask built each forward is one small launch) — and
the backward two (``MulBackward``/``DivBackward``: the gradient times a constant; ``MaskedFillBackward``: the
gradient with the masked entries zeroed; 2 + 2 B each, PyTorch ``tools/autograd/derivatives.yaml``).

Under autocast (``torch.autocast`` with fp32 parameters, :func:`simcluster.costs.frameworks.fp32_residual_stream`)
``softmax`` is on the "autocast to float32" list (PyTorch ``docs/source/amp.rst``, "Autocast Op Reference", CUDA)
while ``matmul`` casts to 16 bits: the softmax writes fp32 probabilities (4 B, +2), the dropout then runs on
fp32 (read 4, write 4: +4), and ``att @ v`` casts them back to 16 bits first (one ``_to_copy``: read 4, write
2). The backward mirrors it: the probabilities' 16-bit gradient is cast to fp32 (``ToCopyBackward``: 2 + 4), the
dropout's backward runs in fp32 (+4) and the softmax's reads an fp32 gradient and fp32 output (+4; it returns the
16-bit gradient of its 16-bit input). The softmax keeps its fp32 output for its backward: +2 B per score saved
(:func:`saved_bytes_per_score`; the cast keeps the 16-bit probabilities the graph counts, the dropout its mask).
Without an attention dropout (``model.attention_dropout: 0``) PyTorch's ``dropout`` returns its input: no dropout
pass to widen.
"""

from __future__ import annotations

from simcluster.costs.eager import Kernel, widening


def _pass(name: str, backward: bool, kind: str, per: float) -> Kernel:
    return Kernel(name, "attn", backward, kind, (("p", per),))


def _widen(name: str, backward: bool, kind: str, per: float) -> Kernel:
    """``per`` more bytes per score for a pass the graph counts (its softmax, its dropout) that runs in fp32."""
    return widening(name, "attn", backward, kind, "p", per)


#: The 16-bit passes of eager attention beyond the graph's softmax and dropout (module docstring).
SCORE_PASSES: tuple[Kernel, ...] = (
    Kernel("scores.mask_bool", "attn", False, "elementwise", ()),
    _pass("scores.scale", False, "elementwise", 4.0),
    _pass("scores.mask", False, "elementwise", 4.0),
    _pass("scores.bwd.mask", True, "elementwise", 4.0),
    _pass("scores.bwd.scale", True, "elementwise", 4.0),
)


def score_kernels(autocast: bool, dropout: bool) -> tuple[Kernel, ...]:
    """The kernels eager attention adds to a layer's attention half: :data:`SCORE_PASSES`, and under ``autocast``
    the fp32 softmax's widening, the cast of the probabilities to 16 bits and back in the backward, and the fp32
    dropout's widening when there is a ``dropout`` (module docstring)."""
    if not autocast:
        return SCORE_PASSES
    fp32 = [_widen("softmax.fp32", False, "softmax", 2.0), _pass("probs.to_16bit", False, "copy", 6.0),
            _pass("probs.bwd.to_fp32", True, "copy", 6.0), _widen("softmax.bwd.fp32", True, "softmax", 4.0)]
    if dropout:
        fp32 += [_widen("dropout.fp32", False, "dropout", 4.0), _widen("dropout.bwd.fp32", True, "dropout", 4.0)]
    return SCORE_PASSES + tuple(fp32)


def saved_bytes_per_score(autocast: bool) -> float:
    """Bytes per score eager attention saves beyond the graph's count (16-bit softmax output, dropout output and
    mask): the softmax's fp32 output under ``autocast``, +2; none in 16-bit code."""
    return 2.0 if autocast else 0.0
