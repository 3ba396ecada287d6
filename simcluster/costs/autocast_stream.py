"""Autocast with fp32 parameters: the residual stream runs in fp32, and every layer pays for it.

Plain ``torch.autocast`` training (``training.framework: pytorch`` below ZeRO-3: one GPU, DDP, or ZeRO-1/2
sharding only the optimizer) keeps the parameters in fp32. Autocast changes the dtype of *some* ops only
(PyTorch ``docs/source/amp.rst``, "Autocast Op Reference", CUDA): ``linear``, ``matmul`` and the other
GEMMs "can autocast to float16" (bfloat16 alike) and cast their inputs; ``layer_norm``, ``pow``, ``rsqrt``,
``softmax``, ``cross_entropy`` … "can autocast to float32"; every other op runs "in the type defined by its
inputs", a mix of fp32 and 16-bit inputs promoting to fp32 (``torch.result_type``). So:

- the token embedding (``F.embedding``, not listed) returns the dtype of its fp32 weight: the residual
  stream x is fp32 from the first layer on;
- each residual add ``x + branch(x)`` adds an fp32 and a 16-bit tensor: fp32 out, read 4 + 2, write 4 B per
  element (10 B where the graph's 16-bit add moves 6);
- the norm before each half runs in fp32 (``layer_norm`` is on the float32 list; torchtitan's RMSNorm takes
  ``x.float()`` anyway, and its ``* weight`` multiplies by an fp32 weight): read 4, write 4 B (8 where the
  graph's 16-bit norm moves 4);
- each GEMM that reads the fp32 normed activation casts it to 16 bits first, one ``_to_copy`` kernel per
  GEMM (autocast caches the casts of leaf tensors — the weights — only): read 4, write 2 B.

The backward mirrors it (``torch/csrc/autograd/engine.cpp`` ``validate_outputs`` casts a gradient to its
input's dtype): the fp32 gradient of each residual add is cast to 16 bits for the branch (4 + 2 B), each
cast's ``ToCopyBackward`` casts the 16-bit input gradient back to fp32 (2 + 4 B), the norm's backward runs
in fp32 (twice the graph's bytes), and the gradients that meet at x (skip and norm) or at the normed
activation (one per GEMM that read it) are added in fp32: 12 B per element where 16-bit adds move 6.

Per layer and element of x (h per token), beyond the graph's operators and :mod:`simcluster.costs.eager`'s
16-bit inventory:

==========================  ==================================  ====================================
code                        forward                             backward
==========================  ==================================  ====================================
GPT (``nn.LayerNorm``)      2 × (norm 4 + cast 6 + add 4) = 28  2 × (cast 6 + cast 6 + norm 8 + add 6) = 52
Llama (torchtitan)          norms 2 × 4, casts 5 × 6, adds 2×4  norms 2 × 8, casts 5 × 6, adds 3 × 6 and
                            = 46, less RMSNorm's ``x.float()``  2 × (6 + 6) = 88, less RMSNorm's two
                            and ``type_as`` (2 × 12): 22        backward casts (2 × 12): 64
==========================  ==================================  ====================================

(Llama code casts the normed input three times in the attention half, for ``wq``, ``wk`` and ``wv``, and
twice in the MLP's, for ``w1`` and ``w3``; its RMSNorm's ``x.float()`` and ``type_as(x)`` are no-ops on an fp32
x.) Memory (:func:`saved_bytes`): GPT code's norms save their fp32 input (4 B, not 2); Llama code's RMSNorm
keeps its fp32 ``x.float()`` anyway, but ``* weight`` saves an fp32 ``x̂`` (4, not 2) and each GEMM its own
16-bit cast: +4 B per element of x per layer for GPT code, +10 for Llama code.

Fused model code (``training.fused_kernels: true``: lit-gpt as TinyLlama runs it) takes the fp32 stream into
its fused norm (read and write 4 B) and casts once per half, for its one QKV GEMM and for xformers' SwiGLU
with w1 and w3 packed. Left out: the embedding's fp32 output and the final norm's fp32 pass and cast before
the head (once per model, not per layer).

Where it applies (:func:`simcluster.costs.frameworks.fp32_residual_stream`): ``pytorch`` below ZeRO-3, and
FSDP with fp32 parameters (``training.fsdp_param_dtype: fp32``: Lightning's ``bf16-mixed``, whose
``FSDPPrecision`` sets ``MixedPrecision(param_dtype=torch.float32, reduce_dtype=torch.bfloat16)`` and runs the
forward under ``torch.autocast``, lightning-fabric ≥ 2.0.3).
"""

from __future__ import annotations

from simcluster.costs.eager import FUSED_LLAMA, Kernel, layer_kernels, widening

#: RMSNorm's kernels that do nothing on an fp32 x (``x.float()``, ``type_as(x)`` and their backward):
#: dispatched, no kernel (``Tensor.to`` returns its input when the dtype already matches).
NO_OPS_ON_FP32 = frozenset({"rmsnorm.float", "rmsnorm.type_as", "rmsnorm.bwd.type_as", "rmsnorm.bwd.float"})

#: GEMMs per half that read the fp32 normed activation: GPT code's fused Wqkv and fc1; Llama code's wq, wk,
#: wv and w1, w3.
CASTS = {"gelu": {"attn": 1, "mlp": 1}, "swiglu": {"attn": 3, "mlp": 2}}


def _widen(name: str, block: str, backward: bool, kind: str, per: float) -> Kernel:
    """``per`` more bytes per element of x for a kernel that runs in fp32 (:func:`simcluster.costs.eager.widening`)."""
    return widening(name, block, backward, kind, "x", per)


def _half(block: str, casts: int) -> tuple[Kernel, ...]:
    """The fp32 stream's kernels of one half (``block``) whose normed activation ``casts`` GEMMs read: the
    casts (forward) and their backward, the branch gradient's cast, and the widened norm, add and
    gradient sums (module docstring)."""
    out = [_widen(f"fp32.{block}.norm", block, False, "normalization", 4.0),
           _widen(f"fp32.{block}.residual", block, False, "elementwise", 4.0),
           _widen(f"fp32.{block}.norm.bwd", block, True, "normalization", 8.0),
           _widen(f"fp32.{block}.accumulate.bwd", block, True, "elementwise", 6.0),
           Kernel(f"fp32.{block}.residual.bwd.cast", block, True, "copy", (("x", 6.0),))]
    for i in range(casts):
        out += [Kernel(f"fp32.{block}.cast{i}", block, False, "copy", (("x", 6.0),)),
                Kernel(f"fp32.{block}.cast{i}.bwd", block, True, "copy", (("x", 6.0),))]
    # the adds of the GEMMs' input gradients (Llama code's, listed in the 16-bit inventory) run in fp32
    out += [_widen(f"fp32.{block}.dgrad_add{i}.bwd", block, True, "elementwise", 6.0) for i in range(1, casts)]
    return tuple(out)


def stream_kernels(mlp: str, parallel: bool = False, fused: bool = False) -> tuple[Kernel, ...]:
    """The eager layer's kernels (:func:`simcluster.costs.eager.layer_kernels`) with an fp32 residual stream:
    RMSNorm's casts become dispatched no-ops and each half gains :func:`_half`'s kernels (module docstring).
    A ``parallel`` block (one norm, one residual add, one fused input GEMM) has one such half. ``fused`` model
    code (lit-gpt: flash-attn's RMSNorm takes the fp32 input, one QKV GEMM, xformers' SwiGLU with w1 and w3
    packed): :data:`simcluster.costs.eager.FUSED_LLAMA` and one cast per half."""
    if fused:
        base: tuple[Kernel, ...] = FUSED_LLAMA if mlp == "swiglu" else ()
        return base + (_half("attn", 1) if parallel else _half("attn", 1) + _half("mlp", 1))
    base = tuple(Kernel(k.name, k.block, k.backward, "view", ()) if k.name in NO_OPS_ON_FP32 else k
                 for k in layer_kernels(mlp))
    casts = CASTS["swiglu" if mlp == "swiglu" else "gelu"]
    if parallel:
        return base + _half("attn", 1)
    return base + _half("attn", casts["attn"]) + _half("mlp", casts["mlp"])


def saved_bytes(mlp: str, parallel: bool = False, fused: bool = False) -> float:
    """What an fp32 residual stream adds to one layer's saved activations, bytes per element of x (module
    docstring). GPT code: each norm's fp32 input, +2 twice (once in a ``parallel`` block). Llama code (whose
    RMSNorm already keeps an fp32 ``x.float()``, :func:`simcluster.costs.memory.eager_saved_bytes`): ``x̂``
    in fp32, +2 twice, and one saved 16-bit cast per GEMM reading it instead of one per half (wk, wv and
    w3: +2 each): 10. ``fused`` model code: each fused norm's fp32 input, as GPT code."""
    if parallel:
        return 2.0
    if fused:
        return 2 * 2
    if mlp == "swiglu":
        return 2 * 2 + 2 * (CASTS["swiglu"]["attn"] - 1 + CASTS["swiglu"]["mlp"] - 1)
    return 2 * 2
