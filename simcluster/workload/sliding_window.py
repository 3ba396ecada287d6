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
"""

from __future__ import annotations


def window_pair_ratio(seq: int, window: int | None) -> float:
    """P_w(s) / P(s): the share of the causal prefix's query-key pairs a window of ``window`` keys keeps
    (1 when there is no window or it covers the sequence)."""
    s, w = seq, window
    if not w or w >= s:
        return 1.0
    return (w * (w + 1) / 2 + (s - w) * w) / (s * (s + 1) / 2)
