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
- the blocker whose end let a task start (the last of its dependencies and stream
  predecessors to finish; of several ending at once, a communication task before a compute
  task) is recorded, ``SimResult.released_by``: the chains that
  :mod:`simcluster.metrics.waits` follows to say what an idle stream waited for.

Determinism: the streams' first tasks start in sorted (rank, stream) order and
simpy orders simultaneous events by (time, priority, insertion id), so the same
task graph always gives the same timeline.
"""

from __future__ import annotations

import gc
import math
from array import array
from itertools import chain
from operator import attrgetter
import time as _time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import simpy

from simcluster.engine.errors import DeadlockError, RunawayError
from simcluster.engine.agenda import Agenda
from simcluster.engine.graph import unblocking
from simcluster.engine.network import Links, Network
from simcluster.engine.redundant import covered_links, twin_links
from simcluster.engine.timeline import TIMELINE_COLUMNS, build_timeline  # noqa: F401
from simcluster.lowering.task import Task, TaskGraph



#: Relative span within which two ends count as one instant for ``released_by`` (a picosecond in a second: above
#: the rounding of sums of durations, far below any task).
TIE_REL = 1e-12

@dataclass
class SimResult:
    """What one simulation produced."""

    timeline: pd.DataFrame
    start: "array[float]"  # per task id
    end: "array[float]"
    link_bytes: list[float]
    link_busy_s: list[float]
    events: int
    wall_s: float
    #: tasks, flows, wakeups (network wake-up timeouts), superseded_wakeups (of them, skipped);
    #: engine_s, timeline_s (wall) and engine_cpu_s, timeline_cpu_s (CPU)
    stats: dict[str, float] = field(default_factory=dict)
    #: per task id: the task whose end let it start (the last of its dependencies and stream
    #: predecessors to finish), -1 for a task nothing held back
    released_by: "array[int]" = field(default_factory=lambda: array("q"))


def _noop(_: int) -> None:
    return None


class Contention:
    """Compute tasks whose speed drops while communication runs on their GPU.

    A compute task keeps its remaining work (seconds at full speed) and its rate; when the
    number of communication tasks on one of its ranks changes between zero and non-zero, its
    rate becomes ``slow`` or 1 and a new end is scheduled. A wake-up whose time is not the
    task's planned end (it was re-planned since) is skipped. Rank order and simpy's event
    order keep it deterministic.

    State by task: ``plan[tid]``, the planned end of a running task (NaN otherwise), in a
    flat array indexed like the engine's own (a dict of the running tasks, one per GPU, is
    a hash table the size of the cluster, probed at random: at 8,192 GPUs it made this class
    cost 2.4 times as much per event as at 1,024); ``moved``, (remaining seconds at full
    speed, rate, since) of a task not at full speed from its start on, flagged in
    ``was_moved`` (any other has its duration left at rate 1 since its start:
    ``seconds[tid]``, ``starts[tid]``).
    """

    __slots__ = ("env", "at", "tasks", "one", "slow", "done", "active", "running", "plan", "moved", "was_moved",
                 "seconds", "starts", "fire")

    def __init__(self, agenda: Agenda, tasks: Sequence[Task], size: int, slow: float,
                 done: Callable[[int], None], seconds: Sequence[float], starts: Sequence[float]):
        self.env, self.at = agenda.env, agenda.at
        self.tasks, self.slow, self.done = tasks, slow, done
        self.seconds, self.starts = seconds, starts  # per task: its duration (of a compute task), start
        #: per task: its rank when it has one, else -1 (its ranks are then ``tasks[tid].ranks``)
        self.one = array("q", [rk[0] if len(rk) == 1 else -1 for rk in map(attrgetter("ranks"), tasks)])
        self.active = [0] * size  # rank -> communication tasks running there
        self.running = [-1] * size  # rank -> the compute task running there (or that ran last)
        self.plan = array("d", [math.nan]) * len(tasks)  # per task: its planned end while it runs
        self.moved: dict[int, tuple[float, float, float]] = {}  # -> (remaining s at full speed, rate, since)
        self.was_moved = bytearray(len(tasks))  # per task: 1 once it is in ``moved``
        self.fire: Callable[[int], None] = self._fire

    def release(self) -> None:
        """Drop the references to the engine's callbacks (a reference cycle the GC would not see)."""
        self.done = _noop
        self.fire = _noop

    def _rate(self, tid: int) -> float:
        r = self.one[tid]
        if r >= 0:
            return self.slow if self.active[r] else 1.0
        return self.slow if any(self.active[r] for r in self.tasks[tid].ranks) else 1.0

    def start(self, tid: int, seconds: float, now: float) -> None:
        """Compute task ``tid`` of ``seconds`` at full speed starts ``now`` (``starts[tid]``)."""
        r = self.one[tid]
        if r >= 0:
            rate = self.slow if self.active[r] else 1.0
            self.running[r] = tid
        else:
            rate = self._rate(tid)
            for r in self.tasks[tid].ranks:
                self.running[r] = tid
        if rate != 1.0:
            self.moved[tid] = (seconds, rate, now)
            self.was_moved[tid] = 1
            after = seconds / rate
        else:
            after = seconds  # (= seconds / 1.0)
        self.plan[tid] = now + after
        self.at(after, self.fire, tid)

    def _fire(self, tid: int) -> None:
        plan = self.plan
        if plan[tid] != self.env._now:
            return  # superseded by a change of rate (or already finished)
        plan[tid] = math.nan  # (``running`` may keep it: :meth:`comm` skips a finished task)
        if self.was_moved[tid]:
            del self.moved[tid]
        self.done(tid)

    def comm(self, tid: int, delta: int) -> None:
        """A communication task starts (+1) or ends (−1): re-rate the compute it shares GPUs with."""
        active, running, plan = self.active, self.running, self.plan
        one = self.one[tid]
        for r in (one,) if one >= 0 else self.tasks[tid].ranks:  # (no task object read for one rank)
            k = active[r] + delta
            active[r] = k
            if (k == 1 and delta > 0) or (k == 0 and delta < 0):
                c = running[r]
                if c >= 0:
                    p = plan[c]
                    if p == p:  # running still (not NaN)
                        self._rerate(c)

    def _rerate(self, tid: int) -> None:
        rate = self._rate(tid)
        was = self.moved.get(tid) if self.was_moved[tid] else None
        if was is None:
            was = (self.seconds[tid], 1.0, self.starts[tid])
        left, old, since = was
        if rate == old:
            return
        now = self.env._now
        rem = max(left - (now - since) * old, 0.0)
        self.moved[tid] = (rem, rate, now)
        self.was_moved[tid] = 1
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
    start = array("d", [math.nan]) * n  # flat doubles: a write stores the value, not an object
    end = array("d", [math.nan]) * n
    released_by = array("q", [-1]) * n  # per task: the blocker whose end started it
    bw = list(topo.link_bandwidth)
    ends: tuple[Sequence[str], Sequence[str]] | None = getattr(topo, "link_endpoints", None)
    transfers = list(map(attrgetter("transfers"), tasks))
    covered = None
    once = list({id(tr): tr for tr in chain.from_iterable(transfers)}.values())  # each object once
    if ends is not None:
        covered = covered_links(once, bw, ends[0], ends[1])
    net = Network(env, bw, recorded, topo.link_names, covered, twin_links(once, bw, covered))

    # per task, in flat arrays (no object per task to reach): its duration (a compute task's
    # work; a communication task runs its ``transfers``), what it unblocks, its blockers
    dur = array("d", map(attrgetter("duration"), tasks))
    if not all(map(math.isfinite, dur)):
        bad = next(t for t in tasks if not math.isfinite(t.duration))
        raise RunawayError(f"task {bad.name} (id {bad.id}) has duration {bad.duration} s")
    succ, off, blockers, firsts = unblocking(tg)
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
            a = pending.pop()
            for c in succ[off[a]:off[a + 1]]:
                k = blockers[c] - 1
                blockers[c] = k
                if not k:
                    released_by[c] = a if transfers[a] else releaser(c, a)
                    launch(c)
        draining = False

    deps: list[tuple[int, ...]] = [t.deps for t in tasks]

    def releaser(c: int, a: int) -> int:
        """The blocker recorded for ``c`` when compute task ``a`` ended last: a communication dependency of ``c``
        that ended at the same instant (within :data:`TIE_REL` of it) if there is one, else ``a``. Simultaneous
        ends come in event order, and the same instant reached by different sums (a fused unit's parts, its
        explicit tasks) differs in the last bits; charging the tie to the communication makes what a wait is
        attributed to (:mod:`simcluster.metrics.waits`) the same either way."""
        now = end[a]
        tie = now - TIE_REL * now
        for d in deps[c]:
            if d != a and transfers[d] and end[d] >= tie:
                return d
        return a

    def launch(tid: int) -> None:
        now = env._now
        start[tid] = now
        trs = transfers[tid]
        if trs:
            if share is not None and collective[tid]:
                share.comm(tid, +1)
                next_transfer(tid)
            elif len(trs) == 1:  # one transfer, no contention to tell: it ends the task
                net.start(trs[0], finish, tid)
            else:
                next_transfer(tid)
            return
        d = dur[tid]
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
        ranks = 1 + max((r for r, _ in tg.streams), default=-1)  # (every rank a task runs on has a stream)
        share = Contention(net.agenda, tasks, ranks, 1.0 - slowdown, finish, dur, start)
    for tid in dict.fromkeys(firsts):  # a task first on several streams starts once
        if not blockers[tid] and start[tid] != start[tid]:  # (not started already by one before it)
            launch(tid)
    net.agenda.run()
    net.agenda.release()
    net.settle()
    never = np.isnan(np.frombuffer(end, dtype=float))
    if never.any():
        missing = np.flatnonzero(never).tolist()
        names = ", ".join(tasks[i].name for i in missing[:5])
        raise DeadlockError(f"{len(missing)} of {n} tasks never ran (first: {names})")

    if share is not None:
        share.release()
    for state in (blockers, step, transfers):
        state.clear()  # the nested functions above form a cycle: free what they hold now
    t1, c1 = _time.perf_counter(), _time.process_time()
    timeline = build_timeline(tasks, start, end, topo, net.bytes, net.busy, recorded, net.interval_table(),
                              net.recorded_twins(), released_by)
    t2, c2 = _time.perf_counter(), _time.process_time()
    net.intervals = array("d")  # (free them now: the nested functions hold ``net``)
    return SimResult(timeline, start, end, list(net.bytes), list(net.busy),
                     events=n + net.flows_started, wall_s=t2 - t0,
                     stats={"tasks": n, "flows": net.flows_started, "wakeups": net.wakeups,
                            "superseded_wakeups": net.superseded, "engine_s": t1 - t0,
                            "timeline_s": t2 - t1, "engine_cpu_s": c1 - c0,
                            "timeline_cpu_s": c2 - c1}, released_by=released_by)
