"""Invariants every simulated timeline must keep (checked in every test that simulates).

1. every task ran exactly once (one interval per rank it occupies);
2. no task started before all its dependencies ended;
3. no two intervals overlap on one (rank, stream);
4. the makespan is at least the critical path of compute durations through
   dependencies and stream order;
5. no two *timeline rows* overlap on one (GPU, stream) — the rows fused units expand
   into included (:func:`check_timeline`);
6. each task's releaser (the engine's ``released_by``) is one of its dependencies or the
   task before it on its stream, and the task started the instant it ended (within
   :data:`simcluster.engine.simulate.TIE_REL`: of blockers ending together the engine records a communication).
"""

from __future__ import annotations

from collections import deque
from typing import Sequence

import numpy as np
import pandas as pd

from simcluster.engine.simulate import TIE_REL
from simcluster.lowering.task import TaskGraph

_TOL = 1e-12


class InvariantError(AssertionError):
    """A simulated timeline broke an invariant: a bug in the simulator."""


def check_invariants(tg: TaskGraph, start: Sequence[float], end: Sequence[float],
                     released_by: Sequence[int] | None = None) -> None:
    tasks = tg.tasks
    n = len(tasks)
    if len(start) != n or len(end) != n:
        raise InvariantError("timeline and task graph differ in length")
    for t in tasks:
        s, e = start[t.id], end[t.id]
        if s != s or e != e:
            raise InvariantError(f"task {t.id} ({t.name}) never ran")
        if e < s:
            raise InvariantError(f"task {t.id} ({t.name}) ends before it starts")
        for d in t.deps:
            if s < end[d] - _TOL * max(1.0, end[d]):
                raise InvariantError(f"task {t.id} ({t.name}) starts at {s} before its dependency "
                                     f"{d} ({tasks[d].name}) ends at {end[d]}")
    for (rank, stream), queue in tg.streams.items():
        prev = None
        for tid in queue:
            if prev is not None and start[tid] < end[prev] - _TOL * max(1.0, end[prev]):
                raise InvariantError(f"tasks {prev} and {tid} overlap on gpu{rank}/{stream}")
            prev = tid
    if released_by is not None and len(released_by):
        _check_releasers(tg, start, end, released_by)
    makespan = max(end) if end else 0.0
    cp = critical_path(tg)
    if makespan < cp * (1 - 1e-9):
        raise InvariantError(f"makespan {makespan} is shorter than the critical path {cp}")


def _check_releasers(tg: TaskGraph, start: Sequence[float], end: Sequence[float], released_by: Sequence[int]) -> None:
    before: dict[int, set[int]] = {}
    for queue in tg.streams.values():
        for a, b in zip(queue[:-1], queue[1:]):
            before.setdefault(b, set()).add(a)
    for t in tg.tasks:
        r = released_by[t.id]
        if r < 0:
            if t.deps or t.id in before:
                raise InvariantError(f"task {t.id} ({t.name}) waited for something but has no releaser")
            continue
        if r not in t.deps and r not in before.get(t.id, ()):
            raise InvariantError(f"task {t.id} ({t.name}) released by {r}, neither a dependency nor its stream predecessor")
        if not end[r] <= start[t.id] <= end[r] + TIE_REL * start[t.id]:  # a tie goes to a communication (engine)
            raise InvariantError(f"task {t.id} ({t.name}) starts at {start[t.id]}, its releaser {r} ends at {end[r]}")


def check_timeline(timeline: pd.DataFrame) -> None:
    """No two GPU rows overlap on one (rank, stream): sorted by start, each starts after the last ends."""
    gpu = timeline[timeline["rank"] >= 0]
    if gpu.empty:
        return
    rows = gpu[["rank", "stream", "start_s", "end_s", "task"]].sort_values(["rank", "stream", "start_s", "end_s"],
                                                                        kind="mergesort")
    rank, stream = rows["rank"].to_numpy(), rows["stream"].astype(str).to_numpy()
    start, end = rows["start_s"].to_numpy(float), rows["end_s"].to_numpy(float)
    same = (rank[1:] == rank[:-1]) & (stream[1:] == stream[:-1])
    overlap = same & (start[1:] < end[:-1] - _TOL * np.maximum(1.0, end[:-1]))
    if overlap.any():
        i = int(np.flatnonzero(overlap)[0])
        task = rows["task"].to_numpy()
        raise InvariantError(f"timeline rows {task[i]!r} and {task[i + 1]!r} overlap on gpu{rank[i]}/{stream[i]} "
                             f"({start[i + 1]} < {end[i]})")


def critical_path(tg: TaskGraph) -> float:
    """Longest path of task durations through dependencies and stream order (Kahn's algorithm)."""
    n = len(tg.tasks)
    succ: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    for t in tg.tasks:
        for d in t.deps:
            succ[d].append(t.id)
            indeg[t.id] += 1
    for queue in tg.streams.values():
        for a, b in zip(queue, queue[1:]):
            succ[a].append(b)
            indeg[b] += 1
    finish = [0.0] * n
    ready = deque(i for i in range(n) if indeg[i] == 0)
    seen = 0
    while ready:
        i = ready.popleft()
        seen += 1
        finish[i] += tg.tasks[i].duration
        for j in succ[i]:
            if finish[i] > finish[j]:
                finish[j] = finish[i]
            indeg[j] -= 1
            if indeg[j] == 0:
                ready.append(j)
    if seen != n:
        raise InvariantError("the task graph has a cycle")
    return max(finish) if finish else 0.0
