"""Sliding-window attention: each query attends to at most ``w`` keys, itself and the w − 1 before it.

Mistral 7B (Jiang et al. 2023, §2 "Sliding Window Attention", Table 1: window 4,096 in a context of
8,192) attends over a window instead of the whole causal prefix. Query i (1-based) meets min(i, w)
keys, so a sequence of s tokens has

    P_w(s) = Σ_{i=1..s} min(i, w) = w(w + 1)/2 + (s − w)·w          (w < s)

query-key pairs against the causal prefix's P(s) = s(s + 1)/2. A kernel that skips the blocks outside
the window (FlashAttention-2's ``window_size``, Dao 2023 §3; what Mistral's reference code and
Megatron-Core's ``--window-size`` run) does P_w / P of the causal kernel's work; an unfused
attention materializes the whole s × s scores and masks them (no saving). Model FLOPs count the
window's pairs too: the full-square 4·B·s²·h of the dense count times the same ratio.

Windowed and full layers mixed (``model.full_attention_every`` = N): layer i (0-based) attends over the whole
causal prefix when (i + 1) mod N = 0 and over the window otherwise, as Hugging Face transformers lays them out
(``Gemma2DecoderLayer``: ``is_sliding = not bool(layer_idx % 2)``; Gemma 3: ``bool((layer_idx + 1) %
sliding_window_pattern)``; GPT-OSS's ``layer_types``: sliding, full, sliding, …). Each kind runs its own attention
core (:func:`full_attention`); a per-layer mean (:func:`mean_pair_ratio`) is what whole-model FLOP counts use:

    r̄ = (n_w · P_w/P + n_f) / l,   n_f = ⌊l / N⌋ full layers, n_w = l − n_f windowed
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simcluster.spec.workload import ModelSpec


def window_pair_ratio(seq: int, window: int | None) -> float:
    """P_w(s) / P(s): the share of the causal prefix's query-key pairs a window of ``window`` keys keeps
    (1 when there is no window or it covers the sequence)."""
    s, w = seq, window
    if not w or w >= s:
        return 1.0
    return (w * (w + 1) / 2 + (s - w) * w) / (s * (s + 1) / 2)


def full_attention(model: "ModelSpec", layer: int) -> bool:
    """Whether ``layer`` (0-based; the multi-token-prediction modules' layers continue the count) attends over the
    whole causal prefix although the model has a window: every ``full_attention_every``-th layer."""
    n = model.full_attention_every
    return bool(model.sliding_window) and n is not None and (layer + 1) % n == 0


def full_layers(model: "ModelSpec") -> int:
    """Layers of the model (without multi-token prediction) that attend over the whole causal prefix; 0 when every
    layer is windowed or there is no window (then every layer is "full", but the same as the others)."""
    n = model.full_attention_every
    return model.layers // n if model.sliding_window and n is not None else 0


def mean_pair_ratio(model: "ModelSpec") -> float:
    """r̄ of the module docstring: the query-key pairs of the model's layers over the causal prefix's, per layer."""
    r = window_pair_ratio(model.seq_len, model.sliding_window)
    if r == 1.0:
        return 1.0
    n_full = full_layers(model)
    return ((model.layers - n_full) * r + n_full) / model.layers


def without_window(model: "ModelSpec") -> "ModelSpec":
    """The model with its full-attention layers' shape: no window (for the ops and costs of those layers)."""
    return model.model_copy(update={"sliding_window": None, "full_attention_every": None})
