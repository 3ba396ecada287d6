"""Run a :class:`TaskGraph` on simpy's event queue: in-order streams, dependencies, shared links.

Semantics (like CUDA streams and NCCL communicators):

- every (rank, stream) pair is an in-order queue (no simpy process per stream: a
  task that ends starts whatever it made ready, see :func:`simulate`);
- a task starts when all its dependencies have finished and it is at the
  head of every stream it occupies (a collective among several simulated
  ranks starts when the last participant reaches it);
- compute and optimizer tasks take their ``duration``; communication tasks run
  their transfers one after another through the shared :class:`Network`;
- while a collective runs on a GPU, the compute task running there
  progresses at ``1 − s`` of its speed, ``s = tg.meta["overlap_slowdown"]``
  (:mod:`simcluster.costs.contention`; :class:`Contention` below).

Determinism: the streams' first tasks start in sorted (rank, stream) order and
simpy orders simultaneous events by (time, priority, insertion id), so the same
task graph always gives the same timeline.
"""

from __future__ import annotations

import gc
import math
from itertools import chain
from operator import attrgetter
import time as _time
from dataclasses import dataclass, field
from typing import Callable, Sequence, cast

import pandas as pd
import simpy

from simcluster.collectives.transfer import Transfer
from simcluster.engine.errors import DeadlockError, RunawayError
from simcluster.engine.agenda import Agenda
from simcluster.engine.network import Links, Network
from simcluster.engine.redundant import covered_links, twin_links
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
    #: tasks, flows, wakeups (network wake-up timeouts), superseded_wakeups (of them, skipped);
    #: engine_s, timeline_s (wall) and engine_cpu_s, timeline_cpu_s (CPU)
    stats: dict[str, float] = field(default_factory=dict)


def _noop(_: int) -> None:
    return None


class Contention:
    """Compute tasks whose speed drops while communication runs on their GPU.

    A compute task keeps its remaining work (seconds at full speed) and its rate; when the
    number of communication tasks on one of its ranks changes between zero and non-zero, its
    rate becomes ``slow`` or 1 and a new end is scheduled. A wake-up whose time is not the
    task's planned end (it was re-planned since) is skipped. Rank order and simpy's event
    order keep it deterministic.

    State by task lives in dicts of the running tasks only (a few per rank, so they stay in
    cache however many tasks the graph has): ``plan``, the planned end; ``moved``, (remaining
    seconds at full speed, rate, since) of a task not at full speed from its start on (any
    other has its duration left at rate 1 since its start: ``seconds[tid]``, ``starts[tid]``).
    """

    __slots__ = ("env", "at", "ranks", "slow", "done", "active", "running", "plan", "moved", "seconds",
                 "starts", "fire")

    def __init__(self, agenda: Agenda, ranks: list[tuple[int, ...]], slow: float,
                 done: Callable[[int], None], seconds: Sequence[object], starts: list[float]):
        self.env, self.at = agenda.env, agenda.at
        self.ranks, self.slow, self.done = ranks, slow, done
        self.seconds, self.starts = seconds, starts  # per task: its duration (of a compute task), start
        size = 1 + max(chain.from_iterable(ranks), default=0)
        self.active = [0] * size  # rank -> communication tasks running there
        self.running = [-1] * size  # rank -> the compute task running there (or that ran last)
        self.plan: dict[int, float] = {}  # running compute task -> its planned end
        self.moved: dict[int, tuple[float, float, float]] = {}  # -> (remaining s at full speed, rate, since)
        self.fire: Callable[[int], None] = self._fire

    def release(self) -> None:
        """Drop the references to the engine's callbacks (a reference cycle the GC would not see)."""
        self.done = _noop
        self.fire = _noop

    def _rate(self, tid: int) -> float:
        rk = self.ranks[tid]
        if len(rk) == 1:
            return self.slow if self.active[rk[0]] else 1.0
        return self.slow if any(self.active[r] for r in rk) else 1.0

    def start(self, tid: int, seconds: float, now: float) -> None:
        """Compute task ``tid`` of ``seconds`` at full speed starts ``now`` (``starts[tid]``)."""
        rk = self.ranks[tid]
        if len(rk) == 1:
            r = rk[0]
            rate = self.slow if self.active[r] else 1.0
            self.running[r] = tid
        else:
            rate = self._rate(tid)
            for r in rk:
                self.running[r] = tid
        if rate != 1.0:
            self.moved[tid] = (seconds, rate, now)
            after = seconds / rate
        else:
            after = seconds  # (= seconds / 1.0)
        self.plan[tid] = now + after
        self.at(after, self.fire, tid)

    def _fire(self, tid: int) -> None:
        plan = self.plan
        if plan.get(tid) != self.env._now:
            return  # superseded by a change of rate (or already finished)
        del plan[tid]  # (``running`` may keep it: :meth:`comm` skips a finished task)
        if self.moved:
            self.moved.pop(tid, None)
        self.done(tid)

    def comm(self, tid: int, delta: int) -> None:
        """A communication task starts (+1) or ends (−1): re-rate the compute it shares GPUs with."""
        active, running = self.active, self.running
        for r in self.ranks[tid]:
            k = active[r] + delta
            active[r] = k
            if (k == 1 and delta > 0) or (k == 0 and delta < 0):
                c = running[r]
                if c >= 0 and c in self.plan:  # running still
                    self._rerate(c)

    def _rerate(self, tid: int) -> None:
        rate = self._rate(tid)
        was = self.moved.get(tid)
        if was is None:
            was = (cast(float, self.seconds[tid]), 1.0, self.starts[tid])
        left, old, since = was
        if rate == old:
            return
        now = self.env._now
        rem = max(left - (now - since) * old, 0.0)
        self.moved[tid] = (rem, rate, now)
        after = rem / rate
        self.plan[tid] = now + after
        self.at(after, self.fire, tid)


def simulate(tg: TaskGraph, topo: Links, record_links: set[int] | None = None) -> SimResult:
    """Simulate ``tg`` on ``topo`` (a Topology, or anything with ``link_bandwidth``, ``link_names``, ``link_class``).

    Event-driven without a process per stream: every task counts what still blocks
    it (its unfinished dependencies and the unfinished task before it on each of its
    streams); when a task ends, the next task of each stream it held and the tasks
    depending on it are counted down, and each that reaches zero starts at once (a
    compute task as one timed callback, :mod:`~simcluster.engine.agenda`; a communication
    task as its transfers on the :class:`Network`). Raises :class:`DeadlockError` when some tasks never run and
    :class:`RunawayError` on a duration, latency or rate that would not let
    simulated time advance to a finite end.

    The cyclic garbage collector is off while it runs: events and flows make no
    reference cycles (reference counting frees them; the one cycle, the nested
    functions below, is emptied at the end), and with millions of task objects alive
    each full collection would scan them all again for nothing (a quarter of the
    engine's time at 2,048 GPUs).
    """
    t0, c0 = _time.perf_counter(), _time.process_time()
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _simulate(tg, topo, frozenset(record_links or ()), t0, c0)
    finally:
        if collecting:
            gc.enable()


def _simulate(tg: TaskGraph, topo: Links, recorded: frozenset[int], t0: float, c0: float) -> SimResult:
    env = simpy.Environment()
    tasks = tg.tasks
    n = len(tasks)
    start = [math.nan] * n
    end = [math.nan] * n
    bw = list(topo.link_bandwidth)
    ends: tuple[Sequence[str], Sequence[str]] | None = getattr(topo, "link_endpoints", None)
    transfers = list(map(attrgetter("transfers"), tasks))
    covered = None
    once = list({id(tr): tr for tr in chain.from_iterable(transfers)}.values())  # each object once
    if ends is not None:
        covered = covered_links(once, bw, ends[0], ends[1])
    net = Network(env, bw, recorded, topo.link_names, covered, twin_links(once, bw, covered))

    # static structure: what each task unblocks, and how many blockers it has
    dur = list(map(attrgetter("duration"), tasks))
    if not all(map(math.isfinite, dur)):
        bad = next(t for t in tasks if not math.isfinite(t.duration))
        raise RunawayError(f"task {bad.name} (id {bad.id}) has duration {bad.duration} s")
    # per task: its transfers (a communication task) or its duration, one read when it starts
    work: list[tuple[Transfer, ...] | float] = [trs or d for trs, d in zip(transfers, dur)]
    del dur
    none: list[int] = []  # shared by the tasks that unblock nothing (never appended to)
    unblocks = [none] * n  # the next task on each of its streams, then its dependents
    blockers = [0] * n
    firsts: list[int] = []
    for key in sorted(tg.streams):
        q = tg.streams[key]
        if q:
            firsts.append(q[0])
        for a, b in zip(q, q[1:]):
            u = unblocks[a]
            if u is none:
                unblocks[a] = [b]
            elif b in u:
                continue  # next after a on two of its ranks: one count-down, at its first place
            else:
                u.append(b)
            blockers[b] += 1
    nsucc = [len(u) for u in unblocks]  # each list starts with the task's stream successors
    for t in tasks:
        j, deps = t.id, t.deps
        nd = len(deps)
        if nd == 2:  # (most tasks: one comparison instead of a set)
            if deps[0] == deps[1]:
                deps = deps[:1]
        elif nd > 2 and len(set(deps)) < nd:
            deps = tuple(dict.fromkeys(deps))
        for d in deps:
            u = unblocks[d]
            k = nsucc[d]
            if u is none:
                unblocks[d] = [j]
            elif k and (u[0] == j if k == 1 else j in u[:k]):
                continue  # already next on a stream of d: counted down once, at its first place
            else:
                u.append(j)
            blockers[j] += 1
    at = net.agenda.at
    step = [0] * n  # per communication task: its transfers started so far
    slowdown = float(tg.meta.get("overlap_slowdown", 0.0))
    share: Contention | None = None
    collective = list(map("collective".__eq__, map(attrgetter("kind"), tasks)))  # NCCL: SM-hungry (not p2p)
    pending: list[int] = []  # tasks that ended now, to be propagated (no recursion)
    draining = False

    def finish(tid: int) -> None:
        nonlocal draining
        end[tid] = env._now
        pending.append(tid)
        if draining:
            return
        draining = True
        # each task is listed once per task it waits for, so its count reaches zero once,
        # at the last of them; a launch only queues what ends at once (``pending``), so
        # counting down and launching in one pass starts the same tasks in the same order
        # as counting all down first
        while pending:
            for c in unblocks[pending.pop()]:
                k = blockers[c] - 1
                blockers[c] = k
                if not k:
                    launch(c)
        draining = False

    def launch(tid: int) -> None:
        now = env._now
        start[tid] = now
        d = work[tid]
        if isinstance(d, tuple):
            if share is not None and collective[tid]:
                share.comm(tid, +1)
                next_transfer(tid)
            elif len(d) == 1:  # one transfer, no contention to tell: it ends the task
                net.start(d[0], finish, tid)
            else:
                next_transfer(tid)
            return
        if d > 0:
            if share is not None:
                share.start(tid, d, now)
            else:
                at(d, finish, tid)
        else:
            finish(tid)

    def next_transfer(tid: int) -> None:
        trs = transfers[tid]
        i = step[tid]
        if i == len(trs):
            if share is not None and collective[tid]:
                share.comm(tid, -1)
            finish(tid)
            return
        step[tid] = i + 1
        net.start(trs[i], next_transfer, tid)

    if slowdown > 0:
        share = Contention(net.agenda, list(map(attrgetter("ranks"), tasks)), 1.0 - slowdown, finish, work, start)
    for tid in dict.fromkeys(firsts):  # a task first on several streams starts once
        if not blockers[tid] and start[tid] != start[tid]:  # (not started already by one before it)
            launch(tid)
    net.agenda.run()
    net.agenda.release()
    net.settle()
    if any(map(math.isnan, end)):
        missing = [t.id for t in tasks if end[t.id] != end[t.id]]
        names = ", ".join(tasks[i].name for i in missing[:5])
        raise DeadlockError(f"{len(missing)} of {n} tasks never ran (first: {names})")

    if share is not None:
        share.release()
    for state in (unblocks, blockers, step, work, transfers):
        state.clear()  # the nested functions above form a cycle: free what they hold now
    t1, c1 = _time.perf_counter(), _time.process_time()
    timeline = build_timeline(tasks, start, end, topo, net.bytes, net.busy, recorded, net.intervals)
    t2, c2 = _time.perf_counter(), _time.process_time()
    del net.intervals[:]
    return SimResult(timeline, start, end, list(net.bytes), list(net.busy),
                     events=n + net.flows_started, wall_s=t2 - t0,
                     stats={"tasks": n, "flows": net.flows_started, "wakeups": net.wakeups,
                            "superseded_wakeups": net.superseded, "engine_s": t1 - t0,
                            "timeline_s": t2 - t1, "engine_cpu_s": c1 - c0,
                            "timeline_cpu_s": c2 - c1})
