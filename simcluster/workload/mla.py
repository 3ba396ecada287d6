"""The operators of multi-head latent attention (DeepSeek-V2 §2.1, eqs. 9–19; DeepSeek-V3 §2.1.1).

They replace ``ln1 → qkv → attn_core → proj → residual1`` of :mod:`simcluster.workload.graph`
when ``model.attention`` is mla (b·s = T tokens; sizes as in :mod:`simcluster.costs.mla`)::

    ln1 → q_down → q_norm → q_up → kv_down → kv_norm → kv_up → attn_core → proj → residual1

- q_down:  Y[T, d_c'] = X[T, h]·W_DQ          replicated over the tensor ranks (none without d_c')
- q_norm:  RMSNorm over T·d_c'                 replicated
- q_up:    Y[T, a·(d + d_R)] = C_Q·[W_UQ W_QR]  column-parallel (heads split)
- kv_down: Y[T, d_c + d_R] = X[T, h]·[W_DKV W_KR]  replicated (the latent and the shared RoPE key)
- kv_norm: RMSNorm over T·d_c                  replicated
- kv_up:   Y[T, a·(d + d_v)] = C_KV·[W_UK W_UV]   column-parallel
- core:    QKᵀ over d + d_R and A·V over d_v: 2·b·s²·a·(d + d_R + d_v) FLOPs forward; costed as a
           flash kernel of head dimension d_eff = (d + d_R + d_v)/2, which keeps both its FLOPs
           (4·b·s²·a·d_eff) and its Q, K, V, O bytes (4·b·s·a·d_eff): the kernel's efficiency
           curve is read at d_eff (DeepSeek-V3: 160, between the fitted 128 and 256)
- proj:    Y[T, h] = O[T, a·d_v]·W_O           row-parallel

With ``recompute: selective`` the latents' norms and the up-projections run again before the
backward (:data:`SELECTIVE_RECOMPUTE`; DeepSeek-V3 §3.2.3 "Recomputation of RMSNorm and MLA
Up-Projection"), with the attention core as Megatron's selective recomputation does.

The RoPE rotation itself (elementwise on T·a·d_R + T·d_R values) is left out, as it is for the
dense model's rotary embedding.
"""

from __future__ import annotations

from simcluster.spec.workload import ModelSpec
from simcluster.workload.ops import Op

#: What ``recompute: selective`` runs again before the backward under MLA, besides the attention core: the
#: latents' RMSNorms and the up-projections (DeepSeek-V3 §3.2.3), so that Q, K and V are not stored.
SELECTIVE_RECOMPUTE: tuple[str, ...] = ("q_norm", "q_up", "kv_norm", "kv_up")


def mla_attention_ops(layer: int, m: ModelSpec, b: int, dt: int) -> list[Op]:
    """One layer's attention block under MLA, for a microbatch of ``b`` sequences at ``dt`` bytes a value."""
    spec = m.mla
    if m.attention != "mla" or spec is None:
        raise ValueError("not multi-head latent attention")
    s, h, a = m.seq_len, m.hidden, m.heads
    T = b * s
    d, dr, dv, dc, dq = m.head_dim or h // a, spec.rope_head_dim, spec.v_head_dim, spec.kv_lora_rank, spec.q_lora_rank

    def gemm(name: str, n: int, k: int, tp: str) -> Op:
        flops = 2.0 * T * n * k
        return Op(name, "gemm", "attn", layer, flops, 2 * flops, dt * (T * k + k * n + T * n), tp, gemm=(T, n, k))

    def norm(name: str, elems: int) -> Op:
        return Op(name, "norm", "attn", layer, 5.0 * elems, 10.0 * elems, 2.0 * dt * elems, "replicated",
                  elements=elems)

    d_eff = (d + dr + dv) // 2
    core_fwd = 2.0 * b * s * s * a * (d + dr + dv)
    ops = [norm("ln1", T * h)]
    if dq:
        ops += [gemm("q_down", dq, h, "replicated"), norm("q_norm", T * dq)]
    ops += [gemm("q_up", a * (d + dr), dq or h, "column"),
            gemm("kv_down", dc + dr, h, "replicated"), norm("kv_norm", T * dc),
            gemm("kv_up", a * (d + dv), dc, "column"),
            Op("attn_core", "attention", "attn", layer, core_fwd, 2 * core_fwd, dt * 4 * T * a * d_eff, "heads",
               attn=(b, a, s, d_eff)),
            gemm("proj", h, a * dv, "row"),
            Op("residual1", "elementwise", "attn", layer, 1.0 * T * h, 2.0 * T * h, 3.0 * dt * T * h, "replicated",
               elements=T * h)]
    return ops
