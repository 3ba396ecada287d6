"""The operators of a mixture-of-experts MLP (Megatron-Core ``MoELayer``; DeepSeek-V3 §2.1.2).

Per MoE layer and microbatch, replacing the dense ``fc1 → act → fc2`` of
:mod:`simcluster.workload.graph` (b·s = T tokens, h hidden, E experts, k top_k,
S shared experts of inner size f_e, n_up = 2·f_e for SwiGLU else f_e)::

    ln2 → router → topk → permute → [dispatch] → experts → [combine] → unpermute → residual2
                        └─────────── shared experts (every token) ──────────────┘

- router:   logits[T, E] = X[T, h]·W_r                2·T·h·E FLOPs (weights replicated over t)
- topk:     softmax (sigmoid for DeepSeek-V3) and top-k over T·E scores, memory-bound
- permute:  gather the T·k routed copies into expert order (read + write T·k·h), memory-bound
- experts:  per expert e with M_e tokens: fc1 [M_e, n_up], act, fc2 [M_e, h]: 2·M_e·h·(n_up + f_e);
            summed over the experts 2·T·k·h·(n_up + f_e) (grouped GEMM; costed in
            :mod:`simcluster.plan.moe` at each rank's per-expert shape)
- shared:   a dense MLP of S·f_e on every token (column/row tensor-parallel)
- unpermute and the weighted combine: read the T·k expert outputs and the gates, write T·h

Dispatch and combine are all-to-all collectives over the expert-parallel group
(:mod:`simcluster.plan.moe`). The ops here are for the whole microbatch of the unsharded
model, as everywhere in ``workload/``.
"""

from __future__ import annotations

from dataclasses import dataclass

from simcluster.spec.training import TrainingSpec
from simcluster.spec.workload import ModelSpec
from simcluster.workload.ops import DTYPE_BYTES, Op


@dataclass(frozen=True)
class MoeOps:
    """One MoE MLP's operators: before dispatch (``pre``, with the shared experts), the routed
    experts' GEMM shapes per routed copy, and after combine (``post``)."""

    pre: tuple[Op, ...]
    post: tuple[Op, ...]
    up_cols: int  # n_up: fc1's output columns of one expert (2·f_e for SwiGLU)
    width: int  # f_e
    tokens: int  # T = b·s of the microbatch
    routed: int  # T·k routed copies


def moe_ops(model: ModelSpec, training: TrainingSpec) -> MoeOps:
    """The MoE MLP operators of one microbatch (see the module docstring)."""
    moe = model.moe
    if moe is None:
        raise ValueError("not a mixture-of-experts model")
    dt = DTYPE_BYTES[training.precision]
    T, h, E, k = training.micro_batch * model.seq_len, model.hidden, moe.experts, moe.top_k
    f = moe.expert_ffn_hidden or model.ffn_hidden or 4 * h
    up = 2 * f if model.mlp == "swiglu" else f

    def mem(name: str, elems: int, rw: float, flops_per: float = 1.0, kind: str = "elementwise") -> Op:
        return Op(name, kind, "mlp", 0, flops_per * elems, 2 * flops_per * elems, rw * dt * elems, "replicated",
                  elements=elems)

    def gemm(name: str, n: int, kk: int, tp: str) -> Op:
        flops = 2.0 * T * n * kk
        return Op(name, "gemm", "mlp", 0, flops, 2 * flops, dt * (T * kk + kk * n + T * n), tp, gemm=(T, n, kk))

    pre = [mem("ln2", T * h, 2.0, 5.0, "norm"),
           Op("router", "gemm", "mlp", 0, 2.0 * T * h * E, 4.0 * T * h * E, dt * (T * h + h * E + T * E),
              "replicated", gemm=(T, E, h)),
           mem("topk", T * E, 2.0, 5.0),  # softmax + top-k: read and write the T·E scores
           mem("permute", T * k * h, 1.0 + 1.0 / k)]  # read T·h once, write T·k·h
    if moe.shared_experts:
        fs = moe.shared_experts * f
        ups = 2 * fs if model.mlp == "swiglu" else fs
        pre += [gemm("shared_fc1", ups, h, "column"),
                Op("shared_act", "elementwise", "mlp", 0, 8.0 * T * fs, 16.0 * T * fs, dt * T * (ups + fs), "column",
                   elements=T * ups),
                gemm("shared_fc2", h, fs, "row")]
    post = [mem("unpermute", T * k * h, 1.0 + 1.0 / k, 2.0),  # read T·k·h and the gates, write T·h
            mem("residual2", T * h, 3.0)]
    return MoeOps(tuple(pre), tuple(post), up, f, T, T * k)
