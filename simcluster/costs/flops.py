"""Closed-form FLOP counts of one training iteration, to cross-check the simulator.

Counting (Narayanan et al. 2021, "Efficient Large-Scale Language Model
Training on GPU Clusters Using Megatron-LM", §5.1; Korthikanti et al. 2022,
Appendix A): only matrix products count, 2 FLOPs per multiply-add; the
backward pass costs twice the forward. For B sequences of length s, per layer
forward

    2·B·s·(matrix weights)  +  4·B·s²·h
    = 24·B·s·h² + 4·B·s²·h        (GPT: 12h² weights, g = a, f = 4h, gelu)

(the second term is QKᵀ and A·V, counted in full although causal), and the
logits 2·B·s·h·V. Model FLOPs = 3 × forward, which for GPT is Narayanan's
eq. (3) without recomputation (= Korthikanti's model FLOPs):

    72·B·s·l·h²·(1 + s/(6h) + V/(12·l·h))

Hardware FLOPs add what recomputation re-executes:
  full       one more forward of every layer (not of the logits), giving
             Narayanan eq. (3): 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h));
  selective  one more forward of the attention core, 4·B·s²·h per layer
             (Korthikanti App. A: the s² terms are the ones recomputed); under
             multi-head latent attention also the up-projections (DeepSeek-V3 §3.2.3).
The per-layer weight count generalises the closed form to ffn_hidden, GQA and
SwiGLU (:func:`simcluster.costs.params.layer_matrix_params`).
"""

from __future__ import annotations

from typing import Sequence

from simcluster.costs import mla
from simcluster.costs.moe import moe_layers
from simcluster.costs.params import ffn_width, kv_width, layer_matrix_params, mlp_matrices, q_width
from simcluster.spec.training import TrainingSpec
from simcluster.spec.workload import ModelSpec
from simcluster.workload.sliding_window import mean_pair_ratio


def layer_forward_flops(model: ModelSpec, sequences: float) -> float:
    """Forward FLOPs of one layer for ``sequences`` sequences: 2·B·s·W + 4·B·s²·h."""
    s = model.seq_len
    return 2.0 * sequences * s * layer_matrix_params(model) + attention_core_forward_flops(model, sequences)


def attention_core_forward_flops(model: ModelSpec, sequences: float) -> float:
    """QKᵀ and A·V of one layer, full square: 4·B·s²·a·d (= 4·B·s²·h when a·d = h); under a sliding window
    times the window's share of the causal query-key pairs, with windowed and full layers mixed
    (``model.full_attention_every``) the layers' mean share (:mod:`simcluster.workload.sliding_window`), so that
    ``layers ×`` this is the model's."""
    if model.attention == "mla":  # 2·B·s²·a·(d + d_R + d_v) (simcluster.costs.mla)
        return mla.core_forward_flops(model, sequences)
    return 4.0 * sequences * model.seq_len**2 * q_width(model) * mean_pair_ratio(model)


def logits_forward_flops(model: ModelSpec, sequences: float) -> float:
    """Output projection: 2·B·s·h·V."""
    return 2.0 * sequences * model.seq_len * model.hidden * model.vocab


def forward_flops_per_iteration(model: ModelSpec, training: TrainingSpec) -> float:
    """Forward FLOPs of the global batch: l·layer + logits."""
    b = training.global_batch
    return model.layers * layer_forward_flops(model, b) + logits_forward_flops(model, b)


def model_flops_per_iteration(model: ModelSpec, training: TrainingSpec) -> float:
    """Model FLOPs (no recomputation): 3 × forward; 72·B·s·l·h²·(1 + s/(6h) + V/(12lh)) for GPT."""
    return 3.0 * forward_flops_per_iteration(model, training)


def kept_forward_flops(model: ModelSpec, sequences: float, saves: Sequence[str]) -> float:
    """Forward FLOPs of one layer's outputs that a name-based checkpoint policy keeps (``training.recompute_saves``):
    2·B·s·(weights) of each kept GEMM — qkv h·(a·d + 2·g·d), proj a·d·h, fc1 (n_mlp − 1)·h·f, fc2 f·h — and
    the attention core's when kept."""
    h, f, q = model.hidden, ffn_width(model), q_width(model)
    weights = {"qkv": h * (q + 2 * kv_width(model)), "proj": q * h, "fc1": (mlp_matrices(model) - 1) * h * f,
               "fc2": f * h}
    out = sum(2.0 * sequences * model.seq_len * weights[n] for n in saves if n in weights)
    return out + (attention_core_forward_flops(model, sequences) if "attention" in saves else 0.0)


def hardware_flops_per_iteration(model: ModelSpec, training: TrainingSpec, recomputed_layers: int | None = None) -> float:
    """FLOPs actually executed, recomputation included (full: + l layer forwards, or + the ``recomputed_layers``
    a partial recompute runs again, :mod:`simcluster.costs.partial_recompute`; selective: + l times what
    :func:`_selective_rerun_flops` reruns of a layer;
    selective with ``recompute_saves``: + l layer forwards less what the policy keeps)."""
    b, recompute = training.global_batch, training.recompute
    if recompute == "selective" and training.recompute_saves is not None:
        return model_flops_per_iteration(model, training) + model.layers * (
            layer_forward_flops(model, b) - kept_forward_flops(model, b, training.recompute_saves))
    extra = {
        "none": 0.0,
        "full": (model.layers if recomputed_layers is None else recomputed_layers) * layer_forward_flops(model, b),
        "selective": _selective_rerun_flops(model, training, b),
    }
    if recompute not in extra:
        raise ValueError(f"unknown recompute {recompute!r}; known: {', '.join(extra)}")
    return model_flops_per_iteration(model, training) + extra[recompute]


def _selective_rerun_flops(model: ModelSpec, training: TrainingSpec, sequences: float) -> float:
    """The forward FLOPs selective recompute runs again: per layer the attention core (unless Megatron-Core's
    ``recompute_modules`` leaves ``core_attn`` out) and under MLA the up-projections (unset modules, or
    ``mla_up_proj``); with ``mlp`` each dense layer's MLP GEMMs, 2·B·s·(n_mlp·h·f) (the MoE layers' reruns are the
    simulation's to count)."""
    mods = training.selective_modules(model.attention)
    out = attention_core_forward_flops(model, sequences) if "core_attn" in mods else 0.0
    if model.attention == "mla" and "mla_up_proj" in mods:
        out += mla.up_projection_forward_flops(model, sequences)
    out *= model.layers
    if "mlp" in mods:
        dense = model.layers - moe_layers(model)
        out += dense * 2.0 * sequences * model.seq_len * mlp_matrices(model) * model.hidden * ffn_width(model)
    return out


def narayanan_flops(batch: float, seq: float, layers: float, hidden: float, vocab: float,
                    *, full_recompute: bool) -> float:
    """Narayanan 2021 eq. (3) as printed: 96·B·s·l·h²·(1 + s/(6h) + V/(16lh)) with full
    recomputation, 72·B·s·l·h²·(1 + s/(6h) + V/(12lh)) without."""
    if full_recompute:
        return 96.0 * batch * seq * layers * hidden**2 * (1 + seq / (6 * hidden) + vocab / (16 * layers * hidden))
    return 72.0 * batch * seq * layers * hidden**2 * (1 + seq / (6 * hidden) + vocab / (12 * layers * hidden))


def achieved_flops_per_gpu(flops_per_iteration: float, iteration_s: float, gpus: int) -> float:
    """FLOP/s per GPU: F / (T · n) (Narayanan 2021 §5.1)."""
    return flops_per_iteration / (iteration_s * gpus)
