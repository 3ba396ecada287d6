"""Sets of time as sorted lists of disjoint [start, end) intervals, and the same algebra
for many keys at once over numpy arrays (:func:`attribute`, what the summary uses).

The list functions are the reference the tests hold the vectorised sweep to.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

Interval = tuple[float, float]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of ``intervals`` as sorted disjoint intervals (empty ones dropped)."""
    out: list[list[float]] = []
    for s, e in sorted(i for i in intervals if i[1] > i[0]):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1][1] = e
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def measure(a: list[Interval]) -> float:
    """Total length of disjoint intervals."""
    return sum(e - s for s, e in a)


def intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """Intersection of two sorted disjoint interval lists."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """``a`` minus ``b``, both sorted and disjoint."""
    out: list[Interval] = []
    j = 0
    for s, e in a:
        cur = s
        while j < len(b) and b[j][1] <= cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] < e:
            if b[k][0] > cur:
                out.append((cur, b[k][0]))
            cur = max(cur, b[k][1])
            k += 1
        if cur < e:
            out.append((cur, e))
    return out


#: Rows per chunk of :func:`attribute` (its arrays are a few times this many events).
_CHUNK_ROWS = 1 << 19


def attribute(key: np.ndarray, start: np.ndarray, end: np.ndarray, cat: np.ndarray, nkeys: int,
              ncat: int, span: float) -> np.ndarray:
    """Seconds of ``[0, span)`` each key spends in each category, by priority: shape
    ``(nkeys, ncat + 1)``.

    Row i is the interval ``[start[i], end[i])`` of key ``key[i]`` (``0 <= key < nkeys``)
    in category ``cat[i]`` (``0 <= cat < ncat``). An instant of a key counts for the
    first category that covers it; the last column is what no category covers. So, with
    categories (busy, a, b, ...), the columns are ``|busy|``, ``|a \\ busy|``,
    ``|b \\ (busy ∪ a)|``, ..., ``|[0, span) \\ all|``: the same as :func:`merge`,
    :func:`subtract`, :func:`intersect` and :func:`measure` applied in that order, for
    every key at once.

    One sweep with numpy: the 2n interval ends sorted by (key, time), a +1/-1 coverage
    count per category by cumulative sums, every elementary segment between consecutive
    ends given to its first covering category (``argmax`` over the counts), and its
    length added up per (key, column) with ``bincount``. The uncovered time before a
    key's first end and after its last is added at the end.
    """
    out = np.zeros((nkeys, ncat + 1))
    s = np.clip(np.asarray(start, dtype=float), 0.0, span)
    e = np.clip(np.asarray(end, dtype=float), 0.0, span)
    keep = e > s
    key, s, e, cat = np.asarray(key)[keep], s[keep], e[keep], np.asarray(cat)[keep]
    order = np.argsort(key, kind="stable")
    key, s, e, cat = key[order], s[order], e[order], cat[order]
    uncovered = np.full(nkeys, span)  # before each key's first interval and after its last
    if len(key):
        heads = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        present = key[heads]
        uncovered[present] = np.minimum.reduceat(s, heads) + (span - np.maximum.reduceat(e, heads))
    out[:, ncat] += uncovered
    bounds = np.searchsorted(key, np.arange(nkeys + 1))
    lo = 0
    while lo < nkeys:  # chunks of whole keys, about _CHUNK_ROWS rows each
        hi = int(np.searchsorted(bounds, bounds[lo] + _CHUNK_ROWS, side="right")) - 1
        hi = min(max(hi, lo + 1), nkeys)
        a, b = bounds[lo], bounds[hi]
        if b > a:
            _sweep(out, key[a:b], s[a:b], e[a:b], cat[a:b], ncat)
        lo = hi
    return out


def _sweep(out: np.ndarray, key: np.ndarray, s: np.ndarray, e: np.ndarray, cat: np.ndarray,
           ncat: int) -> None:
    """Add each elementary segment between a key's first and last ends to ``out``."""
    n = len(key)
    t = np.concatenate([s, e])
    k = np.concatenate([key, key])
    order = np.lexsort((t, k))
    t, k = t[order], k[order]
    c = np.concatenate([cat, cat])[order]
    d = np.where(order < n, 1, -1).astype(np.int32)
    seg = np.where(k[1:] == k[:-1], t[1:] - t[:-1], 0.0)
    owner = np.full(2 * n - 1, ncat, dtype=np.int64)
    for j in range(ncat - 1, -1, -1):  # lower categories overwrite: the first that covers wins
        cover = np.cumsum(np.where(c == j, d, 0))[:-1] > 0
        owner[cover] = j
    width = ncat + 1
    lo = int(k[0])
    idx = (k[:-1] - lo) * width + owner
    nk = int(k[-1]) - lo + 1
    out[lo:lo + nk] += np.bincount(idx, weights=seg, minlength=nk * width).reshape(nk, width)
