"""Tier 1: estimate every layout of the space, prune those that do not fit, rank the rest.

The loop walks the space group by group (:func:`~simcluster.search.space.enumerate_groups`:
everything but recompute and ZeRO stage), builds the group's shared costs once, and for
each (recompute, ZeRO) pair computes the peak memory first (most layouts of a large model
stop there) and the iteration time only for those that fit. It keeps the ``keep`` best
layouts by the objective, the best per GPU count (the Pareto front), and the pruned
layouts that missed the memory by the least (to check pruning against the simulator).
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from simcluster.search.estimate import Estimate, Estimator
from simcluster.search.layout import Layout
from simcluster.search.space import Space, enumerate_groups, leaf_options

NEAR_MISSES = 8


@dataclass
class Candidate:
    """A layout the analytical tier ranked: its estimate and its score (larger is better)."""

    rank: int
    layout: Layout
    score: float
    estimate: Estimate


@dataclass
class Screening:
    """What tier 1 found."""

    layouts: int = 0  # valid layouts estimated
    fitting: int = 0  # of which fit in memory
    wall_s: float = 0.0
    best: list[Candidate] = field(default_factory=list)  # best first
    per_gpus: dict[int, Candidate] = field(default_factory=dict)  # best layout per GPU count
    near_misses: list[tuple[Layout, float]] = field(default_factory=list)  # (layout, peak bytes)
    per_degrees: dict[tuple[int, ...], Candidate] = field(default_factory=dict)  # best with watched degrees

    @property
    def rate(self) -> float:
        """Layouts screened per second."""
        return self.layouts / self.wall_s if self.wall_s > 0 else float("inf")


def screen(spec: Any, space: Space, estimator: Estimator, score: Callable[[float, int], float],
           keep: int, progress: Callable[[int], None] | None = None,
           watch: set[tuple[int, int, int, int]] = frozenset()) -> Screening:
    """Estimate every layout of ``space``; ``score(iteration_s, gpus)`` ranks (larger is better).

    ``watch``: (tensor, pipeline, data, context) degrees whose best layout is kept too.
    """
    start = time.perf_counter()
    out = Screening()
    heap: list[tuple[float, int, Layout, tuple]] = []  # min-heap of the best `keep`
    misses: list[tuple[float, int, Layout, float]] = []  # max-heap (negated) of the smallest overflows
    per_gpus: dict[int, tuple[float, int, Layout, tuple]] = {}
    per_degrees: dict[tuple[int, ...], tuple[float, int, Layout, tuple]] = {}
    memory = estimator.memory
    n = reported = 0
    for group in enumerate_groups(spec, space):
        g = estimator.group(group.tensor, group.context, group.pipeline, group.data, group.micro_batch,
                            group.virtual_stages, group.schedule, group.sequence_parallel, group.expert,
                            group.expert_tensor)
        gpus = group.gpus
        degrees = (group.tensor, group.pipeline, group.data, group.context)
        watched = degrees in watch
        for rc, z in leaf_options(space, group):
            n += 1
            peak = g.peak_memory(rc, z)
            if not memory.fits(peak):
                if len(misses) < NEAR_MISSES:
                    heapq.heappush(misses, (-peak, n, group._replace(recompute=rc, zero_stage=z), peak))
                elif peak < -misses[0][0]:
                    heapq.heapreplace(misses, (-peak, n, group._replace(recompute=rc, zero_stage=z), peak))
                continue
            out.fitting += 1
            parts = g.time(rc, z)
            s = score(parts[0], gpus)
            entry = (s, -n, group, (rc, z, peak, parts))
            if len(heap) < keep:
                heapq.heappush(heap, entry)
            elif entry > heap[0]:
                heapq.heapreplace(heap, entry)
            best = per_gpus.get(gpus)
            if best is None or entry > best:
                per_gpus[gpus] = entry
            if watched and (degrees not in per_degrees or entry > per_degrees[degrees]):
                per_degrees[degrees] = entry
        if progress is not None and n - reported >= 50_000:
            progress(n - reported)
            reported = n
    if progress is not None and n > reported:
        progress(n - reported)
    out.layouts = n
    out.wall_s = time.perf_counter() - start

    def candidate(rank: int, entry: tuple) -> Candidate:
        s, _, group, (rc, z, peak, parts) = entry
        return Candidate(rank, group._replace(recompute=rc, zero_stage=z), s,
                         Estimate(parts[0], peak, True, *parts[1:]))

    out.best = [candidate(i + 1, e) for i, e in enumerate(sorted(heap, reverse=True))]
    out.per_gpus = {gpus: candidate(0, e) for gpus, e in sorted(per_gpus.items())}
    out.per_degrees = {k: candidate(0, e) for k, e in per_degrees.items()}
    out.near_misses = [(layout, peak) for _, _, layout, peak in sorted(misses, key=lambda m: m[3])]
    return out
