"""Multi-head latent attention: parameters, FLOPs and stored activations of one layer's attention.

DeepSeek-V2 (arXiv:2405.04434) §2.1.2–2.1.3, eqs. 9–19, as DeepSeek-V3 (arXiv:2412.19437 §2.1.1)
trains it, with h hidden, a heads, d = ``head_dim`` (the non-rotary query/key part), d_R the
RoPE part, d_v the value head, d_c the kv latent and d_c' the query latent (``model.mla``)::

    q_down  W_DQ   h × d_c'              (with no q_lora_rank: W_Q  h × a·(d + d_R))
    q_up    W_UQ,W_QR  d_c' × a·(d + d_R)
    kv_down W_DKV,W_KR h × (d_c + d_R)   (the latent and the shared RoPE key)
    kv_up   W_UK,W_UV  d_c × a·(d + d_v)
    out     W_O    a·d_v × h
    norms   RMSNorm γ on the two latents, d_c' + d_c

No biases (DeepSeek's released modeling code). DeepSeek-V3 (h 7168, a 128, d 128, d_R 64,
d_v 128, d_c 512, d_c' 1536): 11.0M + 37.7M + 4.1M + 16.8M + 117.4M = 187.1M weights a layer.

Forward FLOPs per token (training computes the up-projections, not the absorbed inference
form): 2 × the weights above, plus the attention core per sequence of s tokens (full square,
this package's convention: :mod:`simcluster.workload.ops`)

    QKᵀ over d + d_R and A·V over d_v:   2·s²·a·(d + d_R) + 2·s²·a·d_v

Tensor parallelism (Megatron-Core ``MLASelfAttention``): the up-projections are column-parallel
and the output row-parallel (heads split); the down-projections and the latent norms are
replicated on every tensor rank.
"""

from __future__ import annotations

from simcluster.spec.mla import MlaSpec
from simcluster.spec.workload import ModelSpec


def mla_of(model: ModelSpec) -> MlaSpec:
    """``model.mla`` (raises unless ``model.attention`` is mla)."""
    if model.attention != "mla" or model.mla is None:
        raise ValueError("not multi-head latent attention")
    return model.mla


def nope_dim(model: ModelSpec) -> int:
    """d: the non-rotary query/key dimension of a head (``head_dim``, by default h / a)."""
    return model.head_dim or model.hidden // model.heads


def qk_dim(model: ModelSpec) -> int:
    """d + d_R: a head's query/key dimension."""
    return nope_dim(model) + mla_of(model).rope_head_dim


def q_down_params(model: ModelSpec) -> int:
    """h·d_c' (0 without a query latent)."""
    r = mla_of(model).q_lora_rank
    return model.hidden * r if r else 0


def q_up_params(model: ModelSpec) -> int:
    """d_c'·a·(d + d_R), or h·a·(d + d_R) without a query latent."""
    r = mla_of(model).q_lora_rank
    return (r or model.hidden) * model.heads * qk_dim(model)


def kv_down_params(model: ModelSpec) -> int:
    """h·(d_c + d_R)."""
    mla = mla_of(model)
    return model.hidden * (mla.kv_lora_rank + mla.rope_head_dim)


def kv_up_params(model: ModelSpec) -> int:
    """d_c·a·(d + d_v)."""
    mla = mla_of(model)
    return mla.kv_lora_rank * model.heads * (nope_dim(model) + mla.v_head_dim)


def out_params(model: ModelSpec) -> int:
    """a·d_v·h."""
    return model.heads * mla_of(model).v_head_dim * model.hidden


def matrix_params(model: ModelSpec) -> int:
    """All of the attention's weight matrices."""
    return q_down_params(model) + q_up_params(model) + kv_down_params(model) + kv_up_params(model) + out_params(model)


def split_params(model: ModelSpec) -> int:
    """The matrices tensor parallelism splits: q_up, kv_up (column) and out (row)."""
    return q_up_params(model) + kv_up_params(model) + out_params(model)


def replicated_params(model: ModelSpec) -> int:
    """What every tensor rank holds whole: the down-projections and the latent RMSNorms' γ (d_c' + d_c)."""
    mla = mla_of(model)
    return q_down_params(model) + kv_down_params(model) + (mla.q_lora_rank or 0) + mla.kv_lora_rank


def core_forward_flops(model: ModelSpec, sequences: float) -> float:
    """QKᵀ and A·V of one layer, full square: 2·B·s²·a·(d + d_R + d_v)."""
    return 2.0 * sequences * model.seq_len**2 * model.heads * (qk_dim(model) + mla_of(model).v_head_dim)


def forward_flops_per_token(model: ModelSpec) -> float:
    """One layer's attention forward FLOPs per token: 2·(matrices) + 2·s·a·(d + d_R + d_v)."""
    return 2.0 * matrix_params(model) + core_forward_flops(model, 1.0) / model.seq_len


def up_projection_forward_flops(model: ModelSpec, sequences: float) -> float:
    """What selective recomputation runs again per layer: the up-projections, 2·B·s·(q_up + kv_up weights)."""
    return 2.0 * sequences * model.seq_len * (q_up_params(model) + kv_up_params(model))


def activation_bytes_per_token(model: ModelSpec, v: float, gemm_in: float, tensor: int, sp: bool,
                               recompute_up: bool = False, recompute_norm: bool = False) -> float:
    """Bytes the attention stores per token for its backward (no recomputation, flash attention), with v = 16-bit
    value bytes / 2 and gemm_in the bytes of a cached GEMM input (1 in FP8):

    replicated over t (÷ t with sequence parallelism): the down-projections' input gemm_in·h, the latents'
    RMSNorm inputs 2v·(d_c' + d_c) and the up-projections' inputs gemm_in·(d_c' + d_c); split by heads: Q and K
    2v·a·(d + d_R) each, V 2v·a·d_v, the output projection's input gemm_in·a·d_v (Korthikanti et al. 2022 §4.1's
    accounting, applied to DeepSeek-V2 eqs. 9–19).

    ``recompute_up`` (selective recomputation, DeepSeek-V3 §3.2.3; Megatron-Core's ``mla_up_proj``): the norms and
    up-projections run again, so only the down-projections' input, the latents (2v·(d_c' + d_c + d_R)) and the
    output projection's input are kept. ``recompute_norm`` (Megatron-Core's ``layernorm``, whose input norm is a
    module of its own under MLA): the input norm's output, the down-projections' input, is dropped and the norm
    run again."""
    mla = mla_of(model)
    latents = (mla.q_lora_rank or 0) + mla.kv_lora_rank
    a = model.heads
    down_in = 0.0 if recompute_norm else gemm_in * model.hidden
    if recompute_up:
        replicated = down_in + 2 * v * (latents + mla.rope_head_dim)
        split = gemm_in * a * mla.v_head_dim
        return (replicated / tensor if sp else replicated) + split / tensor
    replicated = down_in + (2 * v + gemm_in) * latents
    split = 2 * v * a * (2 * qk_dim(model) + mla.v_head_dim) + gemm_in * a * mla.v_head_dim
    return (replicated / tensor if sp else replicated) + split / tensor
