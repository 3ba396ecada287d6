"""Mixture of experts: parameter counts (total and active), FLOPs per token, router loads.

With h = hidden, E = routed experts, k = top_k, S = shared experts, f_e = the expert's inner
size and n = 3 matrices for SwiGLU (2 for GeLU), an MoE layer's MLP holds (no biases in
the experts and the router, as Megatron-Core's MoE layer and DeepSeek-V3):

    router  h·E;   routed experts  E·n·h·f_e;   shared experts  S·n·h·f_e

and a token uses the router, k routed and the S shared experts: its *active* MLP
parameters are h·E + (k + S)·n·h·f_e, its forward FLOPs twice that (2 FLOPs per
multiply-add; Kaplan et al. 2020 §2.1's 2N per token, counted over the active parameters
as the MoE papers count: DeepSeek-V3 §4.2's 37B activated of 671B, Mixtral's 13B of 47B).
The attention, norms and embeddings are those of the dense model (:mod:`simcluster.costs.params`).

Router loads: the tokens·k assignments of one microbatch spread over the experts by the
``load_imbalance`` distribution (uniform: exactly balanced), drawn per (layer, microbatch)
from ``numpy.random.default_rng([seed, layer, microbatch])`` so runs are reproducible. A
capacity factor c caps each expert at c·tokens·k/E assignments (Fedus et al. 2021 §2.2,
eq. 3: expert capacity = tokens/experts × capacity factor, per routed copy); the overflow
is dropped.
"""

from __future__ import annotations

import numpy as np

from simcluster.costs import params as P
from simcluster.spec.moe import LoadImbalanceSpec, MoeSpec
from simcluster.spec.workload import ModelSpec


def moe_of(model: ModelSpec) -> MoeSpec:
    """``model.moe`` (raises for a dense model)."""
    if model.moe is None:
        raise ValueError("not a mixture-of-experts model")
    return model.moe


def expert_width(model: ModelSpec) -> int:
    """f_e: ``moe.expert_ffn_hidden``, by default the model's ffn_hidden."""
    return moe_of(model).expert_ffn_hidden or P.ffn_width(model)


def is_moe_layer(model: ModelSpec, layer: int) -> bool:
    """Whether layer ``layer`` (0-based) has routed experts: past the dense layers, every ``every``-th."""
    moe = model.moe
    return moe is not None and layer >= moe.dense_layers and (layer - moe.dense_layers) % moe.every == 0


def moe_layers(model: ModelSpec) -> int:
    """How many layers are MoE layers."""
    return sum(is_moe_layer(model, i) for i in range(model.layers))


def expert_params(model: ModelSpec) -> int:
    """One expert's weights: n·h·f_e, and with ``expert_bias`` its fc1's n_up and fc2's h biases."""
    n, h, f = P.mlp_matrices(model), model.hidden, expert_width(model)
    bias = (n - 1) * f + h if moe_of(model).expert_bias else 0
    return n * h * f + bias


def router_params(model: ModelSpec) -> int:
    """The router's weights: h·E."""
    return model.hidden * moe_of(model).experts


def attention_layer_params(model: ModelSpec, tensor: int = 1) -> float:
    """A layer's parameters but its MLP's split weights and column biases, on one tensor rank
    (attention, norms, the MLP's row bias): :func:`simcluster.costs.params.layer_params` minus
    (n·h·f + (n − 1)·f)/t."""
    n, f = P.mlp_matrices(model), P.ffn_width(model)
    return P.layer_params(model, tensor) - (n * model.hidden * f + (n - 1) * f) / tensor


def moe_dense_params(model: ModelSpec, tensor: int = 1) -> float:
    """Parameters of an MoE layer every rank of a tensor group holds a shard of, reduced over the whole
    data-parallel group: attention, norms, the router (replicated) and the shared experts (split t ways)."""
    return attention_layer_params(model, tensor) + router_params(model) \
        + moe_of(model).shared_experts * expert_params(model) / tensor


def routed_params_per_rank(model: ModelSpec, expert: int, expert_tensor: int) -> float:
    """Routed-expert parameters of one MoE layer on one rank: (E/ep)·n·h·f_e / etp."""
    return moe_of(model).experts / expert * expert_params(model) / expert_tensor


def _layer_sum(model: ModelSpec, routed: int) -> float:
    """All layers' parameters (the multi-token-prediction modules' included: layer indices ``layers`` on)
    with ``routed`` experts counted per MoE layer."""
    every = model.layers + model.mtp_layers
    n_moe = sum(is_moe_layer(model, i) for i in range(every))
    moe = attention_layer_params(model) + router_params(model) \
        + (routed + moe_of(model).shared_experts) * expert_params(model)
    return (every - n_moe) * P.layer_params(model) + n_moe * moe + P.mtp_params(model, shares_embedding_stage=True)


def total_params(model: ModelSpec) -> float:
    """Every parameter: the dense layers, the MoE layers with all E experts, embedding and output."""
    return _layer_sum(model, moe_of(model).experts) + P.embedding_params(model) \
        + P.output_params(model, shares_embedding_stage=True)


def active_params(model: ModelSpec) -> float:
    """The parameters one token uses: the MoE layers count top_k routed experts."""
    return _layer_sum(model, moe_of(model).top_k) + P.embedding_params(model) \
        + P.output_params(model, shares_embedding_stage=True)


def moe_mlp_flops_per_token(model: ModelSpec) -> float:
    """Forward FLOPs of one MoE layer's MLP per token: 2·(h·E + (k + S)·n·h·f_e)."""
    moe = moe_of(model)
    return 2.0 * (router_params(model) + (moe.top_k + moe.shared_experts) * expert_params(model))


def expert_loads(imb: LoadImbalanceSpec, experts: int, assignments: float, layer: int, microbatch: int) -> np.ndarray:
    """Token assignments each expert receives in one layer and microbatch (they sum to ``assignments``)."""
    if imb.distribution == "uniform" or imb.skew == 0.0:
        return np.full(experts, assignments / experts)
    rng = np.random.default_rng([imb.seed, layer, microbatch])
    if imb.distribution == "zipf":
        shares = np.arange(1, experts + 1, dtype=float) ** -imb.skew
        shares = shares[rng.permutation(experts)]
    else:  # lognormal
        shares = np.exp(imb.skew * rng.standard_normal(experts))
    out: np.ndarray = assignments * shares / shares.sum()
    return out


def rank_loads(loads: np.ndarray, ranks: int, capacity: float | None) -> np.ndarray:
    """Assignments each of ``ranks`` expert-parallel ranks computes: its E/ranks consecutive experts'
    loads, each capped at ``capacity`` (None: dropless)."""
    kept = loads if capacity is None else np.minimum(loads, capacity)
    out: np.ndarray = kept.reshape(ranks, -1).sum(axis=1)
    return out


def weighted_activation_bytes(gated: bool, dtype_bytes: float, fused: bool) -> tuple[float, float]:
    """(forward, backward) bytes per element of the expert's inner width f_e of its activation weighted by the
    router's probability (Megatron-Core ``TEGroupedMLP.forward``'s ``bias_act_func``; the probabilities fp32).

    fused (``bias_activation_fusion``, Megatron-LM's scripts' default; ``weighted_bias_swiglu_impl``): one kernel
    reads the fc1 output and writes the activation, n_up/f_e + 1 elements of d bytes (GeLU 2d, SwiGLU 3d); its
    backward twice that. Unfused (``TransformerConfig``'s default ``bias_activation_fusion = False``, the else branch;
    ``training.fused_kernels: false``): ``act(x)`` (GLU: ``act(x_glu) * x_linear``), ``* permuted_probs`` (fp32
    result: read d, write 4) and ``.to(original_dtype)`` (read 4, write d), forward 4d + 8 (GLU 7d + 8); backward as
    PyTorch's autograd runs it: the cast's (read d, write 4), the product's gradient to the activation (read 4,
    write 4) cast to its dtype by the engine (read 4, write d), its gradient to the probabilities (read 4 + d,
    write 4) summed over f_e by the engine's ``sum_to`` (read 4), the activation's (read 2d, write d; GLU: the
    product's two (6d), the activation's (3d) and the chunk's concatenation (4d)): 6d + 28 (GLU 16d + 28)."""
    d = dtype_bytes
    if fused:
        fwd = 3 * d if gated else 2 * d
        return fwd, 2 * fwd
    if gated:
        return 7 * d + 8, 16 * d + 28
    return 4 * d + 8, 6 * d + 28


def weighted_bias_bytes(dtype_bytes: float) -> tuple[float, float]:
    """(forward, backward) bytes per element of the experts' output [R, h] of fc2's bias added weighted by the router's
    probability (Megatron-Core ``TEGroupedMLP._apply_bias``, added for GPT-OSS on 2025-09-22, commit a329dd6d: per
    expert ``t + b * p`` with p fp32 [m_e, 1], ``torch.cat``, ``.to(dtype)``): b·p (write 4), the sum (read d + 4,
    write 4), the concatenation (read 4, write 4) and the cast (read 4, write d), 2d + 24; backward as autograd runs
    it: the cast's (read d, write 4), the gradient to t cast to its dtype by the engine (read 4, write d), to b and to
    p each a product (read 4, write 4) summed by ``sum_to`` (read 4), 2d + 32 (the concatenation's gradient is views)."""
    d = dtype_bytes
    return 2 * d + 24, 2 * d + 32
