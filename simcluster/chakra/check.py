"""Checks of a task graph read from outside (a Chakra folder) before it is simulated.

A graph written by simcluster's own lowering is sound by construction; one read from
files may not be: ids out of range, durations or sizes that are negative, infinite or
NaN, and orders that can never all run. :func:`graph_problems` finds these without
simulating and returns one reason per problem (empty when the graph is sound).

A deadlock is a cycle in the "must finish before" relation: a task's dependencies, and
on each (rank, stream) the task before it (a collective occupies the streams of all its
simulated ranks, so a rank that never joins it, or joins in another order, closes a
cycle too). The report names the tasks on one such cycle and their ranks.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

MAX_LISTED = 5


def _bad_number(value: Any) -> bool:
    """Not a finite number >= 0."""
    return isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0


def _task_problems(tasks: Sequence[Any], n_links: int) -> list[str]:
    n = len(tasks)
    out: list[str] = []
    for i, t in enumerate(tasks):
        name = f"task {i} ({getattr(t, 'name', '?')})"
        if getattr(t, "id", None) != i:
            out.append(f"{name}: has id {getattr(t, 'id', None)!r}, expected {i}")
        for field in ("duration", "flops", "nbytes"):
            if _bad_number(getattr(t, field, 0.0)):
                out.append(f"{name}: {field} {getattr(t, field, None)!r} is not a finite number >= 0")
        for d in getattr(t, "deps", ()):
            if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d < n:
                out.append(f"{name}: dependency {d!r} is not a task id (0 to {n - 1})")
            elif d == i:
                out.append(f"{name}: depends on itself")
        for tr in getattr(t, "transfers", ()):
            links, weights = tuple(getattr(tr, "links", ())), tuple(getattr(tr, "weights", ()))
            if _bad_number(getattr(tr, "nbytes", None)) or _bad_number(getattr(tr, "latency", None)):
                out.append(f"{name}: a transfer's bytes or latency is not a finite number >= 0")
            elif len(links) != len(weights) or any(_bad_number(w) or w == 0 for w in weights):
                out.append(f"{name}: a transfer's weights do not match its links")
            elif any(isinstance(l, bool) or not isinstance(l, int) or not 0 <= l < n_links for l in links):
                out.append(f"{name}: a transfer uses a link that is not in the cluster (0 to {n_links - 1})")
    return out


def _stream_problems(n: int, streams: dict[tuple[int, str], list[int]]) -> list[str]:
    out: list[str] = []
    for (rank, stream), order in streams.items():
        seen: set[int] = set()
        for tid in order:
            if isinstance(tid, bool) or not isinstance(tid, int) or not 0 <= tid < n:
                out.append(f"rank {rank} stream {stream}: {tid!r} is not a task id (0 to {n - 1})")
            elif tid in seen:
                out.append(f"rank {rank} stream {stream}: task {tid} is listed twice")
            seen.add(tid)
    return out


def _label(tasks: Sequence[Any], tid: int, streams_of: dict[int, list[int]]) -> str:
    ranks = sorted(set(streams_of.get(tid, [])))
    where = f"rank{'s' if len(ranks) != 1 else ''} {', '.join(map(str, ranks))}" if ranks else "on no stream"
    return f"{tasks[tid].name} (task {tid}, {where})"


def deadlock(tasks: Sequence[Any], streams: dict[tuple[int, str], list[int]]) -> str | None:
    """A sentence naming tasks that can never run, or None when every task can.

    Needs ids and dependencies in range (:func:`graph_problems` checks them first).
    """
    n = len(tasks)
    before: list[list[int]] = [list(t.deps) for t in tasks]
    streams_of: dict[int, list[int]] = {}
    for (rank, _), order in streams.items():
        for pos, tid in enumerate(order):
            streams_of.setdefault(tid, []).append(rank)
            if pos:
                before[tid].append(order[pos - 1])
    unplaced = [i for i in range(n) if i not in streams_of and not tasks[i].deps]
    if unplaced:
        shown = ", ".join(_label(tasks, i, streams_of) for i in unplaced[:MAX_LISTED])
        return f"{len(unplaced)} task(s) are on no stream and wait for nothing, so nothing starts them: {shown}"
    after: list[list[int]] = [[] for _ in range(n)]
    waiting = [len(b) for b in before]
    for tid, preds in enumerate(before):
        for p in preds:
            after[p].append(tid)
    ready = deque(i for i in range(n) if waiting[i] == 0)
    done = 0
    while ready:
        tid = ready.popleft()
        done += 1
        for j in after[tid]:
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    if done == n:
        return None
    blocked = {i for i in range(n) if waiting[i] > 0}
    cycle: list[int] = []
    on_path: dict[int, int] = {}
    tid = min(blocked)
    while tid not in on_path:  # every blocked task waits for a blocked one: walk back to a repeat
        on_path[tid] = len(cycle)
        cycle.append(tid)
        tid = min(p for p in before[tid] if p in blocked)
    loop = cycle[on_path[tid]:][::-1]
    shown = " -> ".join(_label(tasks, i, streams_of) for i in loop[:MAX_LISTED])
    more = f" -> ... ({len(loop)} tasks)" if len(loop) > MAX_LISTED else ""
    return (f"deadlock: {len(blocked)} of {n} tasks can never run; these wait for each other in a cycle "
            f"(dependencies and stream order): {shown}{more} -> back to the first")


def graph_problems(tasks: Sequence[Any], streams: dict[tuple[int, str], list[int]], n_links: int) -> list[str]:
    """Every reason the graph cannot be simulated (see the module docstring); empty when it can."""
    found = _task_problems(tasks, n_links) + _stream_problems(len(tasks), streams)
    if found:
        return found
    reason = deadlock(tasks, streams)
    return [reason] if reason else []
