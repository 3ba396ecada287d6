"""Run a :class:`TaskGraph` on simpy's event queue: in-order streams, dependencies, shared links.

Semantics (like CUDA streams and NCCL communicators):

- every (rank, stream) pair is an in-order queue (no simpy process per stream: a
  task that ends starts whatever it made ready, see :func:`simulate`);
- a task starts when all its dependencies have finished and it is at the
  head of every stream it occupies (a collective among several simulated
  ranks starts when the last participant reaches it);
- compute and optimizer tasks take their ``duration``; communication tasks run
  their transfers one after another through the shared :class:`Network`.

Determinism: the streams' first tasks start in sorted (rank, stream) order and
simpy orders simultaneous events by (time, priority, insertion id), so the same
task graph always gives the same timeline.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field

import pandas as pd
import simpy

from simcluster.collectives.transfer import Transfer
from simcluster.engine.network import Links, Network
from simcluster.engine.timeline import TIMELINE_COLUMNS, LinkRow, build_timeline  # noqa: F401
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
    stats: dict[str, float] = field(default_factory=dict)  # tasks, flows, timeline_s


class DeadlockError(RuntimeError):
    """Some tasks never ran: the streams' orders and the dependencies contradict."""


def simulate(tg: TaskGraph, topo: Links, record_links: set[int] | None = None) -> SimResult:
    """Simulate ``tg`` on ``topo`` (a Topology, or anything with ``link_bandwidth``, ``link_names``, ``link_class``).

    Event-driven without a process per stream: when a task ends, the next task
    of each stream it held and the tasks depending on it are checked, and each
    that is ready starts at once (a compute task as one simpy timeout, a
    communication task as its transfers on the :class:`Network`).
    """
    t0 = _time.perf_counter()
    env = simpy.Environment()
    tasks = tg.tasks
    n = len(tasks)
    start = [float("nan")] * n
    end = [float("nan")] * n
    link_rows: list[LinkRow] = []

    def on_link(l: int, s: float, e: float, nbytes: float) -> None:
        link_rows.append((f"link:{topo.link_names[l]}", -1, topo.link_class[l], "", -1, "link", "",
                          -1, -1, -1, s, e, 0.0, nbytes))

    net = Network(env, list(topo.link_bandwidth), on_link, frozenset(record_links or ()))

    # static structure: dependents, remaining dependencies, stream slots
    dependents: list[list[int]] = [[] for _ in range(n)]
    waiting = [0] * n
    for t in tasks:
        waiting[t.id] = len(t.deps)
        for d in t.deps:
            dependents[d].append(t.id)
    keys = sorted(tg.streams)
    queues = [tg.streams[k] for k in keys]
    head = [0] * len(queues)
    slots: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for qi, q in enumerate(queues):
        for pos, tid in enumerate(q):
            slots[tid].append((qi, pos))
    started = [False] * n

    def ready(tid: int) -> bool:
        if started[tid] or waiting[tid]:
            return False
        for qi, pos in slots[tid]:
            if head[qi] != pos:
                return False
        return True

    pending: list[int] = []  # tasks that ended now, to be propagated (no recursion)
    draining = [False]

    def finish(tid: int) -> None:
        end[tid] = env.now
        pending.append(tid)
        if not draining[0]:
            draining[0] = True
            drain()
            draining[0] = False

    def drain() -> None:
        while pending:
            tid = pending[-1]
            cands: list[int] = []
            for qi, _ in slots[tid]:
                head[qi] += 1
                if head[qi] < len(queues[qi]):
                    cands.append(queues[qi][head[qi]])
            for j in dependents[tid]:
                waiting[j] -= 1
                if waiting[j] == 0:
                    cands.append(j)
            pending.pop()
            for c in cands:
                if ready(c):
                    launch(c)

    def launch(tid: int) -> None:
        started[tid] = True
        start[tid] = env.now
        t = tasks[tid]
        if t.transfers:
            run_transfers(tid, t.transfers, 0)
        elif t.duration > 0:
            env.timeout(t.duration).callbacks.append(lambda _e: finish(tid))
        else:
            finish(tid)

    def run_transfers(tid: int, transfers: tuple[Transfer, ...], i: int) -> None:
        if i == len(transfers):
            finish(tid)
            return
        net.start(transfers[i], lambda: run_transfers(tid, transfers, i + 1))

    for qi, q in enumerate(queues):
        if q and ready(q[0]):
            launch(q[0])
    env.run()
    missing = [t.id for t in tasks if end[t.id] != end[t.id]]
    if missing:
        names = ", ".join(tasks[i].name for i in missing[:5])
        raise DeadlockError(f"{len(missing)} of {n} tasks never ran (first: {names})")

    t_tl = _time.perf_counter()
    timeline = build_timeline(tasks, start, end, topo, net.bytes, net.busy,
                              frozenset(record_links or ()), link_rows)
    return SimResult(timeline, start, end, list(net.bytes), list(net.busy),
                     events=n + net.flows_started, wall_s=_time.perf_counter() - t0,
                     stats={"tasks": n, "flows": net.flows_started,
                            "timeline_s": _time.perf_counter() - t_tl})
