"""The numpy interval sweep (what the summary uses) against the list algebra it replaces."""

from __future__ import annotations

import random

import numpy as np
import pytest

from simcluster.metrics.intervals import attribute, intersect, measure, merge, subtract


def by_lists(rows, nkeys, ncat, span):
    """Per key: |busy|, |a \\ busy|, ..., |[0, span) \\ all| with merge/subtract/intersect."""
    out = np.zeros((nkeys, ncat + 1))
    for k in range(nkeys):
        free = [(0.0, span)]
        for c in range(ncat):
            got = merge((s, e) for kk, s, e, cc in rows if kk == k and cc == c)
            out[k, c] = measure(intersect(free, got))
            free = subtract(free, got)
        out[k, ncat] = measure(free)
    return out


@pytest.mark.parametrize("seed", range(40))
def test_attribute_equals_merge_subtract_intersect(seed):
    rng = random.Random(seed)
    nkeys, ncat, span = rng.randint(1, 5), rng.randint(1, 4), 10.0
    grid = [i * 0.5 for i in range(21)]  # shared ends: ties, touching and nested intervals
    rows = []
    for _ in range(rng.randint(0, 40)):
        s = rng.choice(grid) if rng.random() < 0.6 else rng.uniform(0, span)
        e = s + rng.choice([0.0, 0.5, 1.0, rng.uniform(0, 4)])
        rows.append((rng.randrange(nkeys), s, min(e, span), rng.randrange(ncat)))
    key, start, end, cat = (np.array([r[i] for r in rows]) for i in range(4))
    got = attribute(key.astype(np.int64), start, end, cat.astype(np.int64), nkeys, ncat, span)
    assert got == pytest.approx(by_lists(rows, nkeys, ncat, span), abs=1e-12)
    assert got.sum(axis=1) == pytest.approx([span] * nkeys)


def test_attribute_in_chunks_equals_one_sweep(monkeypatch):
    rng = np.random.default_rng(0)
    n, nkeys = 5000, 37
    key = rng.integers(0, nkeys, n)
    start = rng.uniform(0, 100, n)
    end = start + rng.exponential(2.0, n)
    cat = rng.integers(0, 3, n)
    whole = attribute(key, start, end, cat, nkeys, 3, 100.0)
    monkeypatch.setattr("simcluster.metrics.intervals._CHUNK_ROWS", 97)
    assert attribute(key, start, end, cat, nkeys, 3, 100.0) == pytest.approx(whole, rel=1e-12, abs=1e-12)
