"""Run a :class:`TaskGraph` on simpy: in-order streams, dependencies, shared links.

Semantics (like CUDA streams and NCCL communicators):

- every (rank, stream) pair is an in-order queue run by one simpy process;
- a task starts when all its dependencies have finished and it is at the
  head of every stream it occupies (a collective among several simulated
  ranks starts when the last participant reaches it);
- compute and optimizer tasks take their ``duration``; communication tasks run
  their transfers one after another through the shared :class:`Network`.

Determinism: processes are created in sorted (rank, stream) order and simpy
orders simultaneous events by (time, priority, insertion id), so the same task
graph always gives the same timeline.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field
from typing import Any, Generator

import pandas as pd
import simpy

from simcluster.engine.network import Network
from simcluster.engine.timeline import TIMELINE_COLUMNS, build_timeline  # noqa: F401
from simcluster.lowering.task import TaskGraph



@dataclass
class SimResult:
    """What one simulation produced."""

    timeline: pd.DataFrame
    start: list[float]  # per task id
    end: list[float]
    link_bytes: list[float]
    link_busy_s: list[float]
    events: int
    wall_s: float
    stats: dict[str, Any] = field(default_factory=dict)


class DeadlockError(RuntimeError):
    """Some tasks never ran: the streams' orders and the dependencies contradict."""


def simulate(tg: TaskGraph, topo: Any, record_links: set[int] | None = None) -> SimResult:
    """Simulate ``tg`` on ``topo`` (anything with ``link_bandwidth``, ``link_names``, ``link_class``)."""
    t0 = _time.perf_counter()
    env = simpy.Environment()
    tasks = tg.tasks
    n = len(tasks)
    done = [env.event() for _ in range(n)]
    start = [float("nan")] * n
    end = [float("nan")] * n
    arrived = [0] * n
    link_rows: list[tuple] = []

    def on_link(l: int, s: float, e: float, nbytes: float) -> None:
        link_rows.append((f"link:{topo.link_names[l]}", -1, topo.link_class[l], "", -1, "link", "",
                          -1, -1, -1, s, e, 0.0, nbytes))

    net = Network(env, list(topo.link_bandwidth), on_link, frozenset(record_links or ()))

    def run_stream(queue: list[int]) -> Generator[simpy.Event, None, None]:
        for tid in queue:
            t = tasks[tid]
            for d in t.deps:
                ev = done[d]
                if not ev.triggered:
                    yield ev
            if len(t.ranks) > 1:
                arrived[tid] += 1
                if arrived[tid] < len(t.ranks):
                    yield done[tid]
                    continue
            start[tid] = env.now
            if t.transfers:
                for tr in t.transfers:
                    yield from net.transfer(tr)
            elif t.duration > 0:
                yield env.timeout(t.duration)
            end[tid] = env.now
            done[tid].succeed()

    for key in sorted(tg.streams):
        env.process(run_stream(tg.streams[key]))
    env.run()
    missing = [t.id for t in tasks if end[t.id] != end[t.id]]
    if missing:
        names = ", ".join(tasks[i].name for i in missing[:5])
        raise DeadlockError(f"{len(missing)} of {n} tasks never ran (first: {names})")

    timeline = build_timeline(tasks, start, end, topo, net.bytes, net.busy,
                              frozenset(record_links or ()), link_rows)
    return SimResult(timeline, start, end, list(net.bytes), list(net.busy),
                     events=n + net.flows_started, wall_s=_time.perf_counter() - t0,
                     stats={"tasks": n, "flows": net.flows_started})
