"""Eager PyTorch's extra kernels per decoder layer: what a stack launches beyond the graph's fused operators.

:mod:`simcluster.workload.graph` lists one kernel per operator (a fused norm reading and writing the
16-bit activation, one activation kernel, one QKV GEMM). Eager PyTorch model code launches more: every
``torch`` call in ``forward`` is at least one ATen op, and autograd runs each op's derivative
(``tools/autograd/derivatives.yaml``) in the backward. This module lists those extra kernels for the
model code the ``pytorch`` stack stands for, each with its bytes per element of the tensor it sweeps:

==========  ======================================================================================
basis       elements (one microbatch, before tensor/context sharding)
==========  ======================================================================================
``x``       b·s·h, the residual stream
``q``       b·s·a·d, the queries (and the K/V after ``repeat_kv``)
``k``       b·s·g·d, the keys (or the values) before ``repeat_kv``
``f``       b·s·f, the MLP's inner activation
``p``       b·a·s², the attention scores (unfused attention only)
==========  ======================================================================================

Llama-style models (``model.mlp: swiglu``): torchtitan's model code
(pytorch/torchtitan commit 9dec370, 2024-12-26, the commit of its H100 benchmark;
``torchtitan/models/norms.py`` ``RMSNorm``, ``torchtitan/models/llama/model.py`` l. 108–124, 201–212,
253, 323–324). The graph's norm operator stands for the final ``output * self.weight`` (read 2, write
2 B) and its backward; the graph's activation operator for the ``*`` of ``silu(w1 x) * w3 x``.

RMSNorm, twice per layer (``self._norm(x.float()).type_as(x)``, ``x * torch.rsqrt(x.pow(2).mean(-1,
keepdim=True) + eps)``); forward: ``x.float()`` (read 2, write 4), ``pow(2)`` (4 + 4), ``mean`` (read 4;
a reduction), ``+ eps`` and ``rsqrt`` (b·s elements: launches, no bytes), ``x * rsqrt`` (4 + 4),
``type_as`` (4 + 2): 36 B per element of x in eight kernels against a fused kernel's 4 B. Backward
(autograd, derivatives.yaml): the weight-gradient reduction of ``* weight`` (read 2), the cast back to
fp32 (2 + 4), ``MulBackward`` of ``x * r`` (``g·r``: 4 + 4; ``g·x``: 8 + 4 and its row sum, read 4),
``RsqrtBackward``/``AddBackward`` (three b·s-element launches), ``MeanBackward`` (expand / N: write 4),
``PowBackward`` (``grad * (2 * x.pow(1))``: 4 + 4, 4 + 4, 8 + 4), the two gradients of ``x.float()``
added (8 + 4) and ``ToCopyBackward`` to bf16 (4 + 2).

Rotary embeddings (``apply_rotary_emb``), on q and on k: ``xq.float()`` (2 + 4), ``view_as_complex``
(a view), the complex multiply by ``freqs_cis`` (read 4, write 4 B per real element; the [s, d/2]
frequencies are cached), ``view_as_real``/``flatten`` (views), ``type_as`` (4 + 2). Backward: the cast
to fp32 (2 + 4), the complex multiply by the conjugate (4 + 4), the cast to bf16 (4 + 2).

``repeat_kv`` (only when g < a; ``n_rep == 1`` returns its input): ``expand(...).reshape(...)`` copies
k and v to a heads (read 2 B per k element, write 2 B per q element); its backward sums the n_rep
copies (read 2 per q element, write 2 per k element).

``F.scaled_dot_product_attention`` on ``transpose(1, 2)`` views and ``.transpose(1, 2).contiguous()``
of its output: no copies (the flash kernel takes strided inputs and returns a transposed view of a
[b, s, a, d] buffer, ATen ``_scaled_dot_product_flash_attention``): host ops only.

Three projections ``wq``, ``wk``, ``wv`` and two ``w1``, ``w3`` instead of the graph's fused QKV and
up GEMMs: their input gradients are added by autograd (2 + 2 read, 2 write per element of x: two adds
in the attention half, one in the MLP half). ``silu`` is its own kernel (2 + 2) and so is its backward
(4 + 2).

GPT/MPT-style models (``model.mlp: gelu``): llm-foundry's MPT (mosaicml/llm-foundry commit 8c8dd48,
``llmfoundry/models/layers/norm.py`` ``LPLayerNorm``: the input and weight cast to the autocast dtype —
no kernel when FSDP already keeps bf16 parameters — then one ``F.layer_norm`` kernel with autocast off;
``llmfoundry/models/layers/ffn.py``: one ``nn.GELU`` kernel; one fused ``Wqkv``; residual dropout at
p = 0 returns its input) and ``nn.LayerNorm`` GPT code launch what the graph lists in the forward. The
backward launches two things more (:data:`GPT_EAGER`):

- the split of the fused QKV output: ``query, key, value = qkv.split(...)`` (llm-foundry
  ``llmfoundry/models/layers/attention.py``, ``MultiheadAttention``/``GroupedQueryAttention.forward``, at
  commit b2a43a147 of its H100 benchmark; nanoGPT-style GPT code alike) is a view, and its derivative
  (PyTorch ``tools/autograd/derivatives.yaml``, ``split_with_sizes``: ``split_with_sizes_backward``) is
  ``at::cat`` of dq, dk and dv — the attention kernel returns each as a tensor of its own — into the
  [b, s, h + 2·g·d] gradient of the QKV output: read 2, write 2 B per element of q, k and v;
- the bias gradients: MPT's linear layers carry biases unless ``no_bias: true``
  (``llmfoundry/models/mpt/configuration_mpt.py``, ``no_bias: bool = False``; ``blocks.py`` builds the
  attention and the FFN with ``bias=not no_bias``; the pretraining yamls of the benchmark tables do not
  set it, and the tables' NumParams count the biases: 6,658,859,008 for MPT-7B at 2k = 12·h²·L + V·h +
  s·h + 13·h·L + 2·h with h = 4096, L = 32, V = 50,368). ``F.linear`` with a bias runs ``addmm`` (the bias
  in the cuBLASLt epilogue: no forward kernel), whose derivative for the bias is the output gradient
  itself (derivatives.yaml ``addmm``: ``self: maybe_multiply(grad, beta.conj())``), which autograd
  reduces to the bias's shape (``sum_to``): one column-sum kernel per linear layer reading its [b·s, N]
  output gradient, 2 B per element of the QKV output (q, k, v), of the projection's and fc2's (x) and
  of fc1's (f). A reduction, charged at the normalization kernels' bandwidth as RMSNorm's weight sum.

Fused model code (``training.fused_kernels: true`` with ``pytorch``; lit-gpt as TinyLlama runs it, whose
README lists "fused layernorm, fused swiglu, fused cross entropy loss, fused rotary positional
embedding" from flash-attn and xformers): RMSNorm is one kernel (the graph's norm), SwiGLU one (the
graph's activation, xformers' ``swiglu`` with w1 and w3 packed), flash-attn takes grouped K/V heads as
they are (no ``repeat_kv``), and the rotary embedding is one in-place kernel on q and one on k
(``flash_attn.layers.rotary``: read 2, write 2 B per element each way): :data:`FUSED_LLAMA`.

Megatron-LM before its fused kernels (``training.fused_kernels: false``; Megatron-LM of Oct 2019,
commit ebbe40c, ``megatron/mpu/transformer.py``, the code of Shoeybi et al. 2019; the scale-mask-softmax
and bias-GeLU / bias-dropout-add fusions came in 2020): the graph's operators stand for the fused
kernels, and the 2019 layer adds, forward: ``query_layer / norm_factor`` and ``key_layer / norm_factor``
(read 2, write 2 B per q and per k element), the QKV bias added after the GEMM (``F.linear`` on a 3-D
input: ``matmul`` then ``+= bias``; 2 + 2 B per q, k and v element), the causal mask as
``torch.mul(scores, ltor_mask) - 10000.0 * (1.0 - ltor_mask)`` (two passes over the scores, 2 + 2 B per
score each, and two [s, s] launches), the context's ``permute(0, 2, 1, 3).contiguous()`` (2 + 2 per q
element), and after each row-parallel GEMM the bias add (2 + 2 per x element) and the dropout (2 + 2 B
and a 1-byte mask) before the residual add the graph counts; the fc1 bias add (2 + 2 per f element;
``gelu_impl`` is one ``torch.jit.script`` kernel, the graph's). Backward: ``MulBackward`` of the mask
(2 + 2 per score), the two scalings' and the permute's backward (2 + 2 per q, k and q element) and the
two dropouts' (2 + 1 + 2 per x element).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simcluster.costs.compute import ComputeModel
from simcluster.workload.graph import ModelOps

Basis = Literal["x", "q", "k", "f", "p"]


@dataclass(frozen=True)
class Kernel:
    """One extra eager kernel of a layer (or a host-only view op when ``terms`` is empty)."""

    name: str
    block: str  # attn | mlp: the block whose pass launches it
    backward: bool
    kind: str  # the compute model's memory kind (copy | elementwise | normalization)
    terms: tuple[tuple[Basis, float], ...]  # (basis, bytes per element of it) read and written
    gqa_only: bool = False  # launched only when kv heads < heads (``repeat_kv``)
    widens: bool = False  # bytes a kernel counted elsewhere moves beyond its count: no launch, no host op


def _k(name: str, block: str, backward: bool, kind: str, *terms: tuple[Basis, float], gqa: bool = False) -> Kernel:
    return Kernel(name, block, backward, kind, tuple(terms), gqa)


def widening(name: str, block: str, backward: bool, kind: str, basis: Basis, per: float) -> Kernel:
    """``per`` more bytes per element of ``basis`` for a kernel counted elsewhere (a graph operator, or a kernel of
    an inventory) that runs in fp32: no launch, no host op of its own."""
    return Kernel(name, block, backward, kind, ((basis, per),), widens=True)


def _view(name: str, block: str, backward: bool = False) -> Kernel:
    return Kernel(name, block, backward, "view", ())


def _rmsnorm(block: str, basis: Basis = "x", name: str = "rmsnorm") -> tuple[Kernel, ...]:
    """torchtitan ``RMSNorm``'s kernels beyond the graph's fused norm (module docstring), over ``basis`` (the
    residual stream; q and k for the per-head norms of ``model.qk_norm``, the same eager module)."""
    f, b = False, True
    return (
        _k(f"{name}.float", block, f, "copy", (basis, 6.0)),
        _k(f"{name}.pow", block, f, "elementwise", (basis, 8.0)),
        _k(f"{name}.mean", block, f, "normalization", (basis, 4.0)),
        _k(f"{name}.add_eps", block, f, "elementwise"),
        _k(f"{name}.rsqrt", block, f, "elementwise"),
        _k(f"{name}.mul_rsqrt", block, f, "elementwise", (basis, 8.0)),
        _k(f"{name}.type_as", block, f, "copy", (basis, 6.0)),
        _k(f"{name}.bwd.weight_sum", block, b, "normalization", (basis, 2.0)),
        _k(f"{name}.bwd.type_as", block, b, "copy", (basis, 6.0)),
        _k(f"{name}.bwd.mul_x", block, b, "elementwise", (basis, 8.0)),
        _k(f"{name}.bwd.mul_r", block, b, "elementwise", (basis, 12.0)),
        _k(f"{name}.bwd.sum_r", block, b, "normalization", (basis, 4.0)),
        _k(f"{name}.bwd.rsqrt", block, b, "elementwise"),
        _k(f"{name}.bwd.rsqrt_pow", block, b, "elementwise"),
        _k(f"{name}.bwd.rsqrt_mul", block, b, "elementwise"),
        _k(f"{name}.bwd.mean", block, b, "elementwise", (basis, 4.0)),
        _k(f"{name}.bwd.pow1", block, b, "copy", (basis, 8.0)),
        _k(f"{name}.bwd.pow_scale", block, b, "elementwise", (basis, 8.0)),
        _k(f"{name}.bwd.pow_mul", block, b, "elementwise", (basis, 12.0)),
        _k(f"{name}.bwd.accumulate", block, b, "elementwise", (basis, 12.0)),
        _k(f"{name}.bwd.float", block, b, "copy", (basis, 6.0)),
    )


def _rope(t: Basis) -> tuple[Kernel, ...]:
    """torchtitan ``apply_rotary_emb`` on q (``t`` = "q") or k ("k")."""
    return (
        _k(f"rope.{t}.float", "attn", False, "copy", (t, 6.0)),
        _view(f"rope.{t}.view_as_complex", "attn"),
        _k(f"rope.{t}.mul", "attn", False, "elementwise", (t, 8.0)),
        _view(f"rope.{t}.view_as_real", "attn"),
        _view(f"rope.{t}.flatten", "attn"),
        _k(f"rope.{t}.type_as", "attn", False, "copy", (t, 6.0)),
        _k(f"rope.{t}.bwd.type_as", "attn", True, "copy", (t, 6.0)),
        _k(f"rope.{t}.bwd.mul", "attn", True, "elementwise", (t, 8.0)),
        _k(f"rope.{t}.bwd.float", "attn", True, "copy", (t, 6.0)),
    )


def _repeat_kv(name: str) -> tuple[Kernel, ...]:
    return (_k(f"repeat_kv.{name}", "attn", False, "copy", ("k", 2.0), ("q", 2.0), gqa=True),
            _k(f"repeat_kv.{name}.bwd.sum", "attn", True, "normalization", ("q", 2.0), ("k", 2.0), gqa=True))


#: torchtitan's Llama layer (9dec370): every kernel and view beyond the graph's operators.
TORCHTITAN_LLAMA: tuple[Kernel, ...] = (
    *_rmsnorm("attn"),
    _view("q.view", "attn"), _view("k.view", "attn"), _view("v.view", "attn"),
    *_rope("q"), *_rope("k"),
    *_repeat_kv("k"), *_repeat_kv("v"),
    _view("q.transpose", "attn"), _view("k.transpose", "attn"), _view("v.transpose", "attn"),
    _view("out.transpose_contiguous", "attn"), _view("out.view", "attn"),
    _k("qkv.bwd.add_dgrad_k", "attn", True, "elementwise", ("x", 6.0)),
    _k("qkv.bwd.add_dgrad_v", "attn", True, "elementwise", ("x", 6.0)),
    *_rmsnorm("mlp"),
    _k("swiglu.silu", "mlp", False, "elementwise", ("f", 4.0)),
    _k("swiglu.bwd.silu", "mlp", True, "elementwise", ("f", 6.0)),
    _k("w1_w3.bwd.add_dgrad", "mlp", True, "elementwise", ("x", 6.0)),
)

#: Llama-style layers with fused model kernels (``training.fused_kernels: true`` with pytorch; module
#: docstring, "Fused model code"): flash-attn's rotary kernel on q and on k, in place, each way.
FUSED_LLAMA: tuple[Kernel, ...] = (
    _k("rotary.q", "attn", False, "elementwise", ("q", 4.0)),
    _k("rotary.k", "attn", False, "elementwise", ("k", 4.0)),
    _k("rotary.q.bwd", "attn", True, "elementwise", ("q", 4.0)),
    _k("rotary.k.bwd", "attn", True, "elementwise", ("k", 4.0)),
)

#: GPT/MPT layers (llm-foundry's MPT; module docstring): ``nn.LayerNorm``/``LPLayerNorm`` and ``nn.GELU`` are one
#: kernel each; the backward adds the QKV split's ``cat`` and one bias-gradient column sum per linear layer.
GPT_EAGER: tuple[Kernel, ...] = (
    _k("qkv.bwd.split_cat", "attn", True, "copy", ("q", 4.0), ("k", 8.0)),
    _k("qkv.bwd.bias_grad", "attn", True, "normalization", ("q", 2.0), ("k", 4.0)),
    _k("proj.bwd.bias_grad", "attn", True, "normalization", ("x", 2.0)),
    _k("fc1.bwd.bias_grad", "mlp", True, "normalization", ("f", 2.0)),
    _k("fc2.bwd.bias_grad", "mlp", True, "normalization", ("x", 2.0)),
)

#: Megatron-LM 2019's layer without fused kernels (module docstring): every kernel beyond the graph's.
MEGATRON_2019: tuple[Kernel, ...] = (
    _k("qkv.bias", "attn", False, "elementwise", ("q", 4.0), ("k", 8.0)),
    _k("q.scale", "attn", False, "elementwise", ("q", 4.0)),
    _k("k.scale", "attn", False, "elementwise", ("k", 4.0)),
    _k("scores.mask_mul", "attn", False, "elementwise", ("p", 4.0)),
    _k("mask.one_minus", "attn", False, "elementwise"),
    _k("mask.times_10000", "attn", False, "elementwise"),
    _k("scores.mask_sub", "attn", False, "elementwise", ("p", 4.0)),
    _k("context.permute", "attn", False, "copy", ("q", 4.0)),
    _k("proj.bias", "attn", False, "elementwise", ("x", 4.0)),
    _k("proj.dropout", "attn", False, "elementwise", ("x", 5.0)),
    _k("fc1.bias", "mlp", False, "elementwise", ("f", 4.0)),
    _k("fc2.bias", "mlp", False, "elementwise", ("x", 4.0)),
    _k("fc2.dropout", "mlp", False, "elementwise", ("x", 5.0)),
    _k("scores.bwd.mask_mul", "attn", True, "elementwise", ("p", 4.0)),
    _k("q.bwd.scale", "attn", True, "elementwise", ("q", 4.0)),
    _k("k.bwd.scale", "attn", True, "elementwise", ("k", 4.0)),
    _k("context.bwd.permute", "attn", True, "copy", ("q", 4.0)),
    _k("proj.bwd.dropout", "attn", True, "elementwise", ("x", 5.0)),
    _k("fc2.bwd.dropout", "mlp", True, "elementwise", ("x", 5.0)),
)


def inventory_bytes(prefix: str, backward: bool, basis: Basis, block: str = "attn",
                    kernels: tuple[Kernel, ...] = TORCHTITAN_LLAMA) -> float:
    """Bytes per element of ``basis`` of the ``kernels`` (default :data:`TORCHTITAN_LLAMA`) named ``prefix``…
    in one direction (RMSNorm: 32 forward, 82 backward; RoPE on q: 20 and 20; :data:`GPT_EAGER`'s QKV split
    cat: 4 per q element)."""
    return sum(per for k in kernels if k.name.startswith(prefix) and k.block == block
               and k.backward == backward for b, per in k.terms if b == basis)


#: Per-head q and k RMSNorms of Llama-style code (``model.qk_norm``: Qwen3's ``q_norm``/``k_norm``, transformers'
#: ``Qwen3RMSNorm``, the RMSNorm above) beyond the graph's ``qk_norm`` operator.
QK_RMSNORM: tuple[Kernel, ...] = (*_rmsnorm("attn", "q", "q_norm"), *_rmsnorm("attn", "k", "k_norm"))
#: Gemma 2/3's post norms (``model.post_norms``: ``post_attention_layernorm``, ``post_feedforward_layernorm``), the
#: same RMSNorm over the residual stream (Gemma's ``x.float()`` and ``(1 + weight)`` scale, no more passes).
POST_RMSNORM: tuple[Kernel, ...] = (*_rmsnorm("attn", "x", "post_attn_norm"), *_rmsnorm("mlp", "x", "post_mlp_norm"))


def layer_kernels(mlp: str) -> tuple[Kernel, ...]:
    """The extra eager kernels of one layer of a model whose MLP is ``mlp`` (swiglu: Llama-style code)."""
    return TORCHTITAN_LLAMA if mlp == "swiglu" else GPT_EAGER


def stack_kernels(mlp: str, eager_layer: bool, fused: bool, flash: bool,
                  fused_model: bool = False) -> tuple[Kernel, ...]:
    """The extra kernels of one layer: eager PyTorch's (``eager_layer``), Megatron-LM 2019's when its
    kernels are not ``fused`` (the score passes only where the scores exist: not with ``flash``), fused
    PyTorch model code's (``fused_model``: :data:`FUSED_LLAMA` for Llama-style models), or none."""
    if eager_layer:
        return layer_kernels(mlp)
    if fused_model:
        return FUSED_LLAMA if mlp == "swiglu" else ()
    if not fused:
        return tuple(k for k in MEGATRON_2019 if not (flash and any(b == "p" for b, _ in k.terms)))
    return ()


def kernel_bytes(k: Kernel, sizes: dict[str, float]) -> float:
    """Bytes ``k`` moves, with ``sizes`` the elements of each basis on one rank."""
    return sum(per * sizes[basis] for basis, per in k.terms)


def launches(k: Kernel, gqa: bool) -> bool:
    """Whether ``k`` launches a GPU kernel (views and widenings do not; ``repeat_kv`` only under GQA)."""
    return k.kind != "view" and not k.widens and (gqa or not k.gqa_only)


def dispatched(k: Kernel, gqa: bool) -> bool:
    """Whether the host dispatches ``k`` at all (``repeat_kv`` returns its input without GQA; a widening is
    part of another kernel)."""
    return not k.widens and (gqa or not k.gqa_only)


def basis_sizes(ops: ModelOps, t: int, c: int, sp: bool) -> tuple[dict[str, float], bool]:
    """({basis: elements on one rank}, whether K/V heads g < a) of a layer's operators under (t, c, sp).

    x is split by t only under sequence parallelism (as the graph's replicated norms); q, k and f are
    split by t (heads, columns), all by c.
    """
    by = {op.name: op for op in ops.layer}
    core = next(op for op in ops.layer if op.kind == "attention")
    assert core.attn is not None
    b, a, s, d = core.attn
    qkv = next(op for op in ops.layer if op.kind == "gemm" and op.kv != (0, 0))
    fc2 = by["fc2"]
    assert qkv.gemm is not None and fc2.gemm is not None
    bs = qkv.gemm[0]
    g = qkv.kv[1]
    x = next(op for op in ops.layer if op.kind == "norm").elements
    sizes = {"x": x / ((t if sp else 1) * c), "q": b * s * a * d / (t * c), "p": b * a * s * s / (t * c),
             "k": bs * (qkv.kv[0] // (2 * g)) * max(1, g // t) / c,  # g < t: one replicated K/V head per rank
             "f": fc2.gemm[0] * fc2.gemm[2] / (t * c)}
    return sizes, g < a


@dataclass(frozen=True)
class EagerCost:
    """Seconds and host ops of one block's extra eager kernels, forward and backward."""

    fwd_s: float = 0.0
    bwd_s: float = 0.0
    host_fwd: int = 0
    host_bwd: int = 0


def block_extra(ops: ModelOps, block: str, cm: ComputeModel, t: int, c: int, sp: bool,
                kernels: tuple[Kernel, ...] | None = None) -> EagerCost:
    """:class:`EagerCost` of ``block``'s extra ``kernels`` (default :func:`layer_kernels`): each launched kernel
    one bandwidth-bound ``memory_time`` of its bytes (the launch floor included), each dispatched op one host
    op, each widening (``Kernel.widens``) its bytes at the kernel kind's bandwidth (no floor: the kernel it
    widens pays it). A parallel block (no MLP block) takes the MLP half's kernels too."""
    kernels = layer_kernels(ops.mlp) if kernels is None else kernels
    if not kernels:
        return EagerCost()
    parallel = not ops.block("mlp")
    sizes, gqa = basis_sizes(ops, t, c, sp)
    secs, host = [0.0, 0.0], [0, 0]
    for k in kernels:
        if not (k.block == block or (parallel and block == "attn")):
            continue
        if k.widens:
            secs[k.backward] += cm.memory_body_time(kernel_bytes(k, sizes), k.kind)
            continue
        if not dispatched(k, gqa):
            continue
        host[k.backward] += 1
        if launches(k, gqa):
            secs[k.backward] += cm.memory_time(kernel_bytes(k, sizes), k.kind)
    return EagerCost(secs[0], secs[1], host[0], host[1])
