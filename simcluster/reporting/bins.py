"""Intervals into time bins, exactly and in O(n log n): busy shares and carried bytes.

Both work on a cumulative function evaluated at the bin edges: with the intervals' starts
and ends sorted and their prefix sums, ``∫ rate over [0, x)`` is
``x·R(start < x) − Σ rate·start − x·R(end < x) + Σ rate·end``, so no interval is visited
once per bin.
"""

from __future__ import annotations

import numpy as np


def merge_intervals(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of intervals ``[starts[i], ends[i])`` as sorted, disjoint intervals."""
    if len(starts) == 0:
        return np.zeros(0), np.zeros(0)
    order = np.lexsort((ends, starts))
    s, e = np.asarray(starts, float)[order], np.asarray(ends, float)[order]
    run_end = np.maximum.accumulate(e)
    new = np.ones(len(s), bool)
    new[1:] = s[1:] > run_end[:-1]  # a new merged interval begins where the start passes every earlier end
    idx = np.flatnonzero(new)
    out_e = np.append(run_end[idx[1:] - 1], run_end[-1])
    return s[idx], out_e


def cumulative(edges: np.ndarray, starts: np.ndarray, ends: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """``C(x) = Σ rate_i · |[starts_i, ends_i) ∩ [−∞, x)|`` at every edge."""
    edges = np.asarray(edges, float)
    if len(starts) == 0:
        return np.zeros(len(edges))
    s_order, e_order = np.argsort(starts, kind="stable"), np.argsort(ends, kind="stable")
    s, rs = np.asarray(starts, float)[s_order], np.asarray(rate, float)[s_order]
    e, re_ = np.asarray(ends, float)[e_order], np.asarray(rate, float)[e_order]
    cr_s = np.concatenate([[0.0], np.cumsum(rs)])
    crs_s = np.concatenate([[0.0], np.cumsum(rs * s)])
    cr_e = np.concatenate([[0.0], np.cumsum(re_)])
    cre_e = np.concatenate([[0.0], np.cumsum(re_ * e)])
    i = np.searchsorted(s, edges, side="left")
    j = np.searchsorted(e, edges, side="left")
    return edges * cr_s[i] - crs_s[i] - (edges * cr_e[j] - cre_e[j])


def busy_fraction_per_bin(starts: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of each bin ``[edges[k], edges[k+1])`` covered by the union of the intervals."""
    s, e = merge_intervals(np.asarray(starts, float), np.asarray(ends, float))
    c = cumulative(edges, s, e, np.ones(len(s)))
    width = np.diff(np.asarray(edges, float))
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(width > 0, np.diff(c) / np.where(width > 0, width, 1.0), 0.0)
    return np.clip(frac, 0.0, 1.0)


def bytes_per_bin(starts: np.ndarray, ends: np.ndarray, nbytes: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bytes carried in each bin, each interval's bytes spread evenly over it.

    Zero-length intervals put all their bytes in the bin holding their start.
    """
    starts, ends, nbytes = (np.asarray(a, float) for a in (starts, ends, nbytes))
    dur = ends - starts
    pos = dur > 0
    rate = np.zeros(len(starts))
    rate[pos] = nbytes[pos] / dur[pos]
    out = np.diff(cumulative(edges, starts[pos], ends[pos], rate[pos]))
    if (~pos).any():
        idx = np.clip(np.searchsorted(edges, starts[~pos], side="right") - 1, 0, len(edges) - 2)
        np.add.at(out, idx, nbytes[~pos])
    return np.maximum(out, 0.0)


def time_bins(t_end: float, bins: int = 200, t_start: float = 0.0) -> np.ndarray:
    """``bins + 1`` evenly spaced edges over ``[t_start, t_end]``."""
    return np.linspace(t_start, t_end if t_end > t_start else t_start + 1.0, bins + 1)
