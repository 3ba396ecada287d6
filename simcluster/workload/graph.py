"""The operators of a decoder-only transformer (GPT-style, pre-LayerNorm).

Per layer (Shoeybi et al. 2019, Fig. 2; Narayanan et al. 2021, §5.1)::

    ln1 → qkv → attn_core → proj → residual1 → ln2 → fc1 → act → fc2 → residual2

preceded by the token/position embedding and followed by the final LayerNorm,
the logits projection and the cross-entropy loss (then, with ``model.mtp_layers``, each
multi-token-prediction module's embedding, norms, projection and pass through the head:
:func:`_mtp`, costed in the head's task).

With b = micro batch, s = sequence, h = hidden, a = heads, g = kv heads,
d = h / a, f = ffn hidden (SwiGLU doubles the up projection), V = vocab:

- qkv:   Y[bs, (a + 2g)·d] = X[bs, h] W          2·bs·h·(a+2g)d FLOPs
- qk_norm (``model.qk_norm``): a norm of each head's q and k, bs·(a+g)·d elements (Qwen3, Gemma 3)
- post_ln1, post_ln2 (``model.post_norms``): Gemma 2/3's norms of proj's and fc2's outputs before the residual adds
- core:  QKᵀ and softmax·V                        4·b·s²·h FLOPs (Narayanan eq. 2's 4Bs²h term)
- proj:  Y[bs, h] = X[bs, h] W                    2·bs·h² FLOPs
- fc1:   Y[bs, f or 2f] = X[bs, h] W              2·bs·h·f (×2 for SwiGLU)
- fc2:   Y[bs, h] = X[bs, f] W                    2·bs·f·h
- logits: Y[bs, V] = X[bs, h] Wᵀ                  2·bs·h·V

With a = g and f = 4h the layer costs 24·bs·h² + 4·b·s²·h forward, which is
Korthikanti et al. 2022 eq. 7 divided by 3·l (forward only).

Multi-head latent attention (``model.attention: mla``) replaces the attention block's
operators with those of :mod:`simcluster.workload.mla`.

Parameter counts live in :mod:`simcluster.costs.params` and activation memory in
:mod:`simcluster.costs.memory` (Korthikanti et al. 2022 Table 2): one source each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from simcluster.spec.training import TrainingSpec
from simcluster.spec.workload import ModelSpec
from simcluster.workload.mla import mla_attention_ops
from simcluster.workload.ops import DTYPE_BYTES, Op
from simcluster.workload.sliding_window import window_pair_ratio


def _layer(layer: int, m: ModelSpec, b: int, dt: int) -> list[Op]:
    s, h, a, g, f = m.seq_len, m.hidden, m.heads, m.kv_heads or m.heads, m.ffn_hidden or 4 * m.hidden
    d = m.head_dim or h // a
    q = a * d  # h unless head_dim says otherwise
    bs = b * s
    qkv_n = (a + 2 * g) * d
    up_n = 2 * f if m.mlp == "swiglu" else f
    sbh = bs * h

    def gemm(name: str, block: str, n: int, k: int, tp: str, kv: tuple[int, int] = (0, 0)) -> Op:
        flops = 2.0 * bs * n * k
        return Op(name, "gemm", block, layer, flops, 2 * flops, dt * (bs * k + k * n + bs * n), tp,
                  gemm=(bs, n, k), kv=kv)

    def mem(name: str, kind: str, block: str, elems: int, rw: float = 2.0, flops_per: float = 1.0) -> Op:
        return Op(name, kind, block, layer, flops_per * elems, 2 * flops_per * elems, rw * dt * elems,
                  "replicated", elements=elems)

    def act(block: str) -> Op:
        return Op("act", "elementwise", block, layer, 8.0 * bs * f, 16.0 * bs * f, dt * bs * (up_n + f), "column",
                  elements=bs * up_n)

    kv = (2 * g * d, g)  # the K and V columns of the QKV product (replicated when g < t)
    pairs = window_pair_ratio(s, m.sliding_window)  # the window's share of the query-key pairs (1: none or w >= s)
    core = Op("attn_core", "attention", "attn", layer, 4.0 * b * s * s * q * pairs, 8.0 * b * s * s * q * pairs,
              dt * 4 * bs * q, "heads", attn=(b, a, s, d), dropout=m.attention_dropout > 0, alibi=m.alibi,
              window=m.sliding_window or 0)
    qk = bs * (a + g) * d  # each head's queries and keys, normalised (model.qk_norm), split by heads
    qkn = [Op("qk_norm", "norm", "attn", layer, 5.0 * qk, 10.0 * qk, 2.0 * dt * qk, "heads", elements=qk)] \
        if m.qk_norm else []
    if m.parallel_block and m.parallel_block_norms == 2:  # GPT-NeoX's gpt_j_residual (:func:`_neox_parallel`)
        return _neox_parallel(mem, gemm, act, [*qkn, core], sbh, qkv_n, up_n, h, q, f, kv)
    if m.parallel_block:  # one LayerNorm; the QKV and MLP-up GEMMs fused (PaLM §2 "Parallel Layers")
        return [
            mem("ln1", "norm", "attn", sbh, flops_per=5.0),
            gemm("qkv_fc1", "attn", qkv_n + up_n, h, "column", kv),
            *qkn,
            core,
            gemm("proj", "attn", h, q, "row"),
            act("attn"),
            gemm("fc2", "attn", h, f, "row"),
            mem("residual", "elementwise", "attn", sbh, rw=4.0),  # x + attention + MLP
        ]
    attn = mla_attention_ops(layer, m, b, dt) if m.attention == "mla" else [
        mem("ln1", "norm", "attn", sbh, flops_per=5.0),
        gemm("qkv", "attn", qkv_n, h, "column", kv),
        *qkn,
        core,
        gemm("proj", "attn", h, q, "row"),
        *([mem("post_ln1", "norm", "attn", sbh, flops_per=5.0)] if m.post_norms else []),
        mem("residual1", "elementwise", "attn", sbh, rw=3.0),
    ]
    return attn + [
        mem("ln2", "norm", "mlp", sbh, flops_per=5.0),
        gemm("fc1", "mlp", up_n, h, "column"),
        act("mlp"),
        gemm("fc2", "mlp", h, f, "row"),
        *([mem("post_ln2", "norm", "mlp", sbh, flops_per=5.0)] if m.post_norms else []),
        mem("residual2", "elementwise", "mlp", sbh, rw=3.0),
    ]


def _neox_parallel(mem: Callable[..., Op], gemm: Callable[..., Op], act: Callable[[str], Op], core: list[Op],
                   sbh: int, qkv_n: int, up_n: int, h: int, q: int, f: int, kv: tuple[int, int]) -> list[Op]:
    """GPT-NeoX's parallel block (``gpt_j_residual``; EleutherAI/gpt-neox ``megatron/model/transformer.py``
    ``ParallelTransformerLayer.forward`` at commit c560814b, "20B Release", 2022-02-10, the code of
    GPT-NeoX-20B)::

        attention_output = bias_dropout_add(attention(input_layernorm(x)), bias, None)      # x·W + b
        output = bias_dropout_add(mlp(post_attention_layernorm(x)), bias, attention_output)
        output = x + reduce_from_model_parallel_region(output)

    Two LayerNorms of the same x (2 + 2 B per element each), the QKV and MLP-up GEMMs apart (each its own
    ``ColumnParallelLinear``, whose input gradient is all-reduced: two backward reductions, in
    :mod:`simcluster.plan.steps`), and three elementwise kernels: the attention's bias add (read 1, write 1;
    ``dropout`` at p = 0 returns its input, ATen ``_dropout_impl``), the MLP's bias add onto it (read 2,
    write 1) and the residual add (read 2, write 1)."""
    return [
        mem("ln1", "norm", "attn", sbh, flops_per=5.0),
        mem("ln2", "norm", "attn", sbh, flops_per=5.0),
        gemm("qkv", "attn", qkv_n, h, "column", kv),
        *core,  # (the q/k norm and) the attention core
        gemm("proj", "attn", h, q, "row"),
        mem("attn_bias", "elementwise", "attn", sbh, rw=2.0),
        gemm("fc1", "attn", up_n, h, "column"),
        act("attn"),
        gemm("fc2", "attn", h, f, "row"),
        mem("mlp_bias_add", "elementwise", "attn", sbh, rw=3.0),
        mem("residual", "elementwise", "attn", sbh, rw=3.0),
    ]


def _embedding(m: ModelSpec, b: int, dt: int) -> list[Op]:
    """The embedding lookup (and its dropout), then BLOOM's LayerNorm of its output (``model.embed_layernorm``:
    replicated on every tensor rank, after the lookup's all-reduce)."""
    bs, h = b * m.seq_len, m.hidden
    ops = [Op("embedding", "embedding", "embedding", -1, 1.0 * bs * h, 1.0 * bs * h,
              2.0 * dt * bs * h, "vocab", elements=bs * h)]
    if m.embed_layernorm:
        ops.append(Op("embed_ln", "norm", "embedding", -1, 5.0 * bs * h, 10.0 * bs * h, 2.0 * dt * bs * h,
                      "replicated", elements=bs * h))
    return ops


def _head(m: ModelSpec, b: int, dt: int, prefix: str = "") -> list[Op]:
    bs, h, V = b * m.seq_len, m.hidden, m.vocab
    flops = 2.0 * bs * V * h
    return [
        Op(prefix + "final_ln", "norm", "head", -1, 5.0 * bs * h, 10.0 * bs * h, 2.0 * dt * bs * h, "replicated",
           elements=bs * h),
        Op(prefix + "logits", "gemm", "head", -1, flops, 2 * flops, dt * (bs * h + h * V + bs * V), "vocab",
           gemm=(bs, V, h)),
        # fp32 softmax cross-entropy over the vocabulary-parallel logits
        Op(prefix + "loss", "loss", "head", -1, 5.0 * bs * V, 5.0 * bs * V, (dt + 4.0) * bs * V, "vocab",
           elements=bs * V),
    ]


def _mtp(m: ModelSpec, b: int, dt: int) -> list[Op]:
    """What each multi-token-prediction module adds to the last stage besides its transformer layer
    (DeepSeek-V3 §2.2, eqs. 21–23): the shifted tokens' embedding, RMSNorms of it and of the previous
    depth's output, the projection M_k [2h → h] of their concatenation, and a pass through the shared
    output head and the cross-entropy (its own final norm, as the released checkpoint's
    ``shared_head.norm``). The module's layer is a layer of the last chunk (:mod:`simcluster.plan.partition`)."""
    bs, h = b * m.seq_len, m.hidden
    out: list[Op] = []
    for k in range(1, m.mtp_layers + 1):
        pre = f"mtp{k}."
        proj = 2.0 * bs * (2 * h) * h
        out += [Op(pre + "embedding", "embedding", "head", -1, 1.0 * bs * h, 1.0 * bs * h, 2.0 * dt * bs * h, "vocab",
                   elements=bs * h),
                Op(pre + "norms", "norm", "head", -1, 10.0 * bs * h, 20.0 * bs * h, 4.0 * dt * bs * h, "replicated",
                   elements=2 * bs * h),
                Op(pre + "eh_proj", "gemm", "head", -1, proj, 2 * proj, dt * (3 * bs * h + 2 * h * h), "column",
                   gemm=(bs, h, 2 * h))]
        out += _head(m, b, dt, pre)
    return out


@dataclass(frozen=True)
class ModelOps:
    """The operators of one microbatch, in forward execution order.

    Every transformer layer has the same operators (``layer``, with ``layer`` = 0; a
    layer's index only labels its tasks), so one layer's list stands for all of them.
    Within a layer each operator consumes its predecessor's output; the residual
    paths add the block's input at ``residual1`` and ``residual2``.
    """

    layer: tuple[Op, ...]
    embedding: tuple[Op, ...]
    head: tuple[Op, ...]
    mlp: str = "gelu"  # model.mlp: which eager model code a stack runs (simcluster.costs.eager)
    rotary_pct: float = 1.0  # model.rotary_pct: below 1, partial rotary's copies (simcluster.costs.partial_rotary)

    def block(self, name: str) -> tuple[Op, ...]:
        """The operators of block ``attn``, ``mlp``, ``embedding`` or ``head``."""
        if name == "embedding":
            return self.embedding
        if name == "head":
            return self.head
        return tuple(op for op in self.layer if op.block == name)

    def by_name(self) -> dict[str, Op]:
        """Every operator by its name (one layer's, the embedding's and the head's)."""
        return {op.name: op for op in self.embedding + self.layer + self.head}


def model_ops(model: ModelSpec, training: TrainingSpec) -> ModelOps:
    """The operators of one microbatch of ``model`` trained as ``training`` says."""
    dt = DTYPE_BYTES[training.precision]
    b = training.micro_batch
    return ModelOps(tuple(_layer(0, model, b, dt)),
                    tuple(_embedding(model, b, dt)), tuple(_head(model, b, dt) + _mtp(model, b, dt)), model.mlp,
                    model.rotary_pct)
