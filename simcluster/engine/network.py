"""Links shared by concurrent transfers: a flow-level network model on simpy.

Each active transfer is a fluid flow over a set of links. Rates are max-min
fair with per-link weights (progressive filling; Bertsekas & Gallager, *Data
Networks*, §6.5.2; :mod:`simcluster.engine.fairshare`): every link ``l`` obeys
``sum_f w[f,l]·r_f <= B_l``. So two equal transfers sharing one link each get
B/2 and take twice as long as one alone, and transfers on disjoint links don't
slow each other (ASTRA-sim's congestion-aware network makes the same choice:
delay = latency + bytes / bandwidth, links shared).

Incremental: rates change only when a flow starts or ends, and then only for
the flows connected to it through shared links that can saturate (a flow alone
on its links keeps ``m_f = min_l B_l / w_l`` without any search). Nothing scans
the active flows: a flow keeps ``(t0, rem0, r)``, its remaining bytes being
``rem0 - r·(t - t0)``, and is touched only when its rate changes, which pushes its
finish time ``t0 + rem0 / r`` into one heap and notes its due time
``t0 + (rem0 - tol) / r``, ``tol = 1e-9·nbytes + 1e-6`` bytes:

- the earliest finish is the single pending wake-up (a change that leaves it where
  it was schedules nothing; one that moves it replaces it and the old event is
  skipped when it fires);
- a wake-up ends every flow due by then, so flows finishing within rounding of each
  other end together. A flow due by ``now`` finishes by ``now + slack``, the slack
  being the largest finish-less-due time pushed so far (a few nanoseconds), so the
  finish times up to there are popped and the few not yet due pushed back: one heap
  entry per rate change, not one per time kind.

Changes at one instant are re-rated together: a flow that starts sharing a link, and
the coupled neighbours of flows that end, are collected and re-rated in one fill by an
event at the end of the instant (priority :data:`~simcluster.engine.agenda.LAST`, after
every other event at that time). The replicas of a full-fidelity run start and end their flows at the same
instants, so one fill replaces one per flow (a component growing flow by flow, refilled
each time, cost O(replicas²) per collective). No time passes in between, so no bytes
move at a skipped rate.

Link statistics are kept without touching links on every rate change: a link
is busy while at least one flow crosses it, and the bytes it carried are
booked when each flow ends (``weight · nbytes``). A recorded link's busy
interval therefore carries exactly the bytes of the flows that ended in it.

What a transfer's flows share is computed once per :class:`Transfer` object (the
lowering reuses them across microbatches: 257 objects for 65,412 flows on the 1T run),
as a :class:`TransferRoute`: the rate alone, the links that can couple flows (``uncovered``,
tracked in ``flows_on`` for the fill) and the covered ones (a flow count, for the busy
time alone, :mod:`simcluster.engine.redundant`). Of links that always carry the same flows
with the same weights (:func:`~simcluster.engine.redundant.twin_links`) only the narrowest
is tracked; :meth:`Network.settle` gives the others its figures after the run.
"""

from __future__ import annotations

import math
from array import array
from heapq import heapify, heappop, heappush
from typing import Callable, Protocol, Sequence

import numpy as np
import simpy

from simcluster.collectives.transfer import Transfer
from simcluster.engine.agenda import Agenda
from simcluster.engine.errors import RunawayError
from simcluster.engine.fairshare import SLACK_MARGIN, component, fill
from simcluster.engine.flows import ALONE, Flow, HeapEntry, TransferRoute, start_order

#: Wake-ups in a row that end no flow before the engine gives up (a sound run needs at most two).
IDLE_WAKEUPS = 64


class Links(Protocol):
    """What the engine reads of a topology: per link id, its bandwidth (bytes/s), name and class.

    :class:`simcluster.topology.Topology` is one.
    """

    @property
    def link_bandwidth(self) -> Sequence[float]: ...
    @property
    def link_names(self) -> Sequence[str]: ...
    @property
    def link_class(self) -> Sequence[str]: ...


class Network:
    """Active flows on the topology's links, re-rated incrementally on every change.

    ``covered[l]``: link ``l``'s constraint is implied by others (it never couples flows).
    ``intervals``: link, start, end, bytes of every busy interval of a recorded link, one
    after another (a flat array of doubles: no object per interval).
    """

    def __init__(self, env: simpy.Environment, bandwidth: list[float],
                 recorded: set[int] | frozenset[int] = frozenset(),
                 names: Sequence[str] | None = None, covered: Sequence[bool] | None = None,
                 twins: Sequence[int] | None = None):
        self.env = env
        #: every NORMAL event on ``env`` is scheduled through it (the engine's too: one batch per instant)
        self.agenda = Agenda(env)
        self.bw = bandwidth
        n = len(bandwidth)
        self.names = names
        self.flows_on: list[dict[Flow, float]] = [{} for _ in range(n)]  # link -> {flow: weight}
        self._count = [0] * n  # covered link -> flows on it
        self._routes: dict[int, TransferRoute] = {}  # id(transfer) -> its route
        self.bytes = [0.0] * n  # bytes carried per link (booked when flows end)
        self.busy = [0.0] * n  # seconds with at least one flow
        self._since = [0.0] * n
        self._demand = [0.0] * n  # D_l = sum_f w·m_f over the flows on l
        self._limit = [(1.0 - SLACK_MARGIN) * b for b in bandwidth]
        self._covered = list(covered) if covered is not None else [False] * n
        self._twin = list(twins) if twins is not None else list(range(n))
        if covered is not None:  # implied by other links (engine/redundant.py): never couples
            self._limit = [math.inf if c else x for x, c in zip(self._limit, covered)]
        self._coupled = [False] * n  # D_l >= limit: the link can saturate
        self._rec = [False] * n
        self._rec_twins: dict[int, list[int]] = {}  # representative -> its recorded twins
        for l in sorted(recorded):
            t = self._twin[l]
            self._rec[t] = True
            self._rec_twins.setdefault(t, []).append(l)
        self._rec_bytes = [0.0] * n
        #: the per-link lists the hot paths read, in one tuple (one attribute lookup for all)
        self._links = (self.flows_on, self._demand, self._coupled, self._limit, self._since, self._count,
                       self.bytes, self.busy, self._rec, self._rec_bytes)
        self.intervals = array("d")
        self._fin: list[HeapEntry] = []  # finish times
        self._slack = 0.0  # at least every flow's finish less its due time (see :meth:`_wakeup`)
        self._active = 0
        self._wake: int | None = None  # the pending wake-up's number (its event's value)
        self._dirty: list[Flow] = []  # flows whose rates may change now: re-rated at the instant's end
        self._flush_pending = False
        self._wake_at = math.inf
        self._idle = 0  # wake-ups in a row that ended nothing
        self.flows_started = 0
        self.wakeups = 0  # wake-up timeouts scheduled
        self.superseded = 0  # of which skipped: a later change moved the earliest finish

    # -- public ---------------------------------------------------------------------------
    def start(self, tr: Transfer, on_done: Callable[[int], None], arg: int) -> None:
        """Run ``tr``: wait its latency, then move its bytes at the fair rate; then ``on_done(arg)``."""
        r = self._routes.get(id(tr))
        if r is None:
            r = self._route(tr)
        lat = r.latency
        if lat > 0:  # (a transfer with no bytes to move ends after its latency)
            self.agenda.at(lat, self._begin if r.moves else self._no_bytes, Flow(r, on_done, arg))
        elif r.moves:
            self._begin(Flow(r, on_done, arg))
        else:
            on_done(arg)

    def _route(self, tr: Transfer) -> TransferRoute:
        lat = tr.latency
        if lat == math.inf or lat != lat:
            raise RunawayError(f"a transfer's latency is {lat} s (links {self._names(tr.links)})")
        r = self._routes[id(tr)] = TransferRoute(tr, self.bw, self._covered, self._twin)
        return r

    def settle(self) -> None:
        """After the run: each twin link's bytes and busy time are its representative's (see
        :func:`simcluster.engine.redundant.twin_links`). Its recorded intervals are too: they
        are :meth:`interval_table`'s rows of the representative, :meth:`recorded_twins` says
        which links each stands for (the timeline reads them there; no copy per twin is made)."""
        for l, t in enumerate(self._twin):
            if t != l:
                self.bytes[l], self.busy[l] = self.bytes[t], self.busy[t]

    def interval_table(self) -> np.ndarray:
        """Link, start, end, bytes of every busy interval of a recorded link's representative,
        a row each, in the order they closed (the link is the representative's id)."""
        return np.frombuffer(self.intervals, dtype=float).reshape(-1, 4)

    def recorded_twins(self) -> dict[int, list[int]]:
        """Per representative in :meth:`interval_table`, the recorded links it stands for,
        ascending (itself among them when it is recorded)."""
        return self._rec_twins

    # -- internals ------------------------------------------------------------------------
    def _names(self, links: Sequence[int]) -> str:
        shown = [self.names[l] if self.names is not None else str(l) for l in links[:3]]
        return ", ".join(shown) + (", ..." if len(links) > 3 else "")

    @staticmethod
    def _no_bytes(f: Flow) -> None:
        f.done(f.arg)

    def _begin(self, f: Flow) -> None:
        now = self.env._now
        r = f.route
        solo = f.solo
        f.t0, f.rem0, f.seq = now, r.nbytes, self.flows_started
        self.flows_started += 1
        self._active += 1
        flows_on, demand, coupled, limit, since, count = self._links[:6]
        for l, _ in r.covered:  # busy time only
            c = count[l]
            if not c:
                since[l] = now
            count[l] = c + 1
        shared = False
        for l, w, _ in r.uncovered:
            d = flows_on[l]
            if not d:
                since[l] = now
            else:
                if not shared:
                    shared = True
                    f.shared = {}
                f.shared[l] = None
                if len(d) == 1:  # the flow that had l to itself shares it now
                    for g in d:
                        if g.shared is ALONE:
                            g.shared = {}
                        g.shared[l] = None
            d[f] = w
            dl = demand[l] + w * solo
            demand[l] = dl
            coupled[l] = dl >= limit[l]
        if shared:
            self._defer(f)
        elif solo > 0.0:  # alone: no search (``_set_rate`` inlined), and no other finish moves
            f.rate, f.ver = solo, 1
            fin = now + r.nbytes / solo
            if not fin < math.inf:
                raise RunawayError(self._never(f, fin))
            heappush(self._fin, (fin, f.seq, 1, f))
            due = f.due = now + r.due_bytes / solo
            if fin - due > self._slack:
                self._slack = fin - due
            if self._wake is None or fin < self._wake_at:
                self._schedule(now)
        else:
            self._schedule(now)

    def _set_rate(self, f: Flow, r: float, now: float) -> None:
        """Give ``f`` the rate ``r`` from ``now`` on and push its finish and due times."""
        if r == f.rate:
            return
        if f.rate > 0.0:
            f.rem0 -= f.rate * (now - f.t0)
        f.t0, f.rate = now, r
        f.ver += 1
        if r > 0.0:
            fin = now + f.rem0 / r
            if not fin < math.inf:
                raise RunawayError(self._never(f, fin))
            heappush(self._fin, (fin, f.seq, f.ver, f))
            # due: ``tol = 1e-9·nbytes + 1e-6`` bytes before the finish
            due = f.due = now + (f.rem0 - 1e-9 * f.route.nbytes - 1e-6) / r
            if fin - due > self._slack:
                self._slack = fin - due

    def _never(self, f: Flow, fin: float) -> str:
        """Why ``f`` never ends: one line with its bytes, rate and links."""
        bws = ", ".join(f"{self.bw[l]:.3g}" for l in f.links[:3])
        return (f"a transfer of {f.nbytes:.6g} bytes at {f.rate:.6g} B/s would end at t = {fin} s "
                f"(links {self._names(f.links)}: bandwidths {bws} B/s)")

    def _defer(self, *flows: Flow) -> None:
        """Re-rate ``flows`` (and their components) once, after every other event of this instant.

        Flows that start or end at one instant (the replicas of a full-fidelity run do the
        same thing at the same time) are re-rated together in one fill, not one fill per
        change; no time passes in between, so no bytes move at the rates skipped.
        """
        self._dirty.extend(flows)
        if not self._flush_pending:
            self._flush_pending = True
            self.agenda.at_end(self._flush, None)

    def _flush(self, _: None) -> None:
        self._flush_pending = False
        now = self.env._now
        live = [g for g in dict.fromkeys(self._dirty) if g.ver >= 0]
        self._dirty.clear()
        if live:
            self._rerate(live, now)
        self._schedule(now)

    def _rerate(self, seeds: list[Flow], now: float) -> None:
        """Max-min fair rates for the flows connected to ``seeds``."""
        comp = component(seeds, self.flows_on, self._coupled)
        if len(comp) == 1:
            f = comp[0]
            self._set_rate(f, f.solo, now)
            return
        for g, r in fill(comp, self.flows_on, self.bw, self._coupled).items():
            self._set_rate(g, r, now)

    def _schedule(self, now: float) -> None:
        """Keep one wake-up pending, at the earliest finish time (after the re-rate, if one is due now)."""
        if self._flush_pending:
            return
        fin = self._fin
        while fin and fin[0][3].ver != fin[0][2]:
            heappop(fin)
        if not fin:
            self._wake = None
            if self._active:
                raise RunawayError("a transfer has no bandwidth (a zero-capacity link on its route)")
            return
        if len(fin) > 4 * self._active + 256:  # drop stale entries now and then
            fin[:] = [e for e in fin if e[3].ver == e[2]]
            heapify(fin)
        t = fin[0][0]
        if t == self._wake_at and self._wake is not None:
            return
        self.wakeups += 1
        self.agenda.at(t - now if t > now else 0.0, self._wakeup, self.wakeups)
        self._wake, self._wake_at = self.wakeups, t

    def _wakeup(self, token: int) -> None:
        if token != self._wake:
            self.superseded += 1
            return  # superseded by a later change
        self._wake = None
        now = self.env._now
        finished: list[Flow] = []  # due by now (or finished by it), marked ended
        # the flows due by now: each has its finish within the slack of now, so the finish
        # times up to there are taken out, and those of flows not yet due go back
        fin = self._fin
        horizon = now + 2.0 * self._slack
        later: list[HeapEntry] = []
        while fin and fin[0][0] <= horizon:
            e = heappop(fin)
            f = e[3]
            if f.ver == e[2]:
                if e[0] <= now or f.due <= now:
                    f.ver = -1
                    finished.append(f)
                else:
                    later.append(e)
        for e in later:
            heappush(fin, e)
        if not finished:
            self._idle += 1
            if self._idle > IDLE_WAKEUPS:
                raise RunawayError(f"simulated time stalls at t = {now} s: {IDLE_WAKEUPS} network "
                                   "wake-ups ended no transfer (degenerate bandwidths or latencies)")
        else:
            self._idle = 0
            if len(finished) > 1:
                finished.sort(key=start_order)
        flows_on, demand, coupled, limit, since, count, nbytes, busy, rec, rec_bytes = self._links
        intervals = self.intervals
        neighbours: list[Flow] = []
        self._active -= len(finished)
        for f in finished:
            solo = f.solo
            r = f.route
            for l, w, wb in r.uncovered:
                d = flows_on[l]
                del d[f]
                nbytes[l] += wb
                if not d:
                    demand[l] = 0.0
                    coupled[l] = False
                    busy[l] += now - since[l]
                    if rec[l]:
                        intervals.fromlist([l, since[l], now, rec_bytes[l] + wb])  # (faster than extend)
                        rec_bytes[l] = 0.0
                else:
                    if len(d) == 1:  # the one flow left has l to itself now
                        for g in d:
                            del g.shared[l]
                    if rec[l]:
                        rec_bytes[l] += wb
                    if coupled[l]:
                        neighbours.extend(d)
                    dl = demand[l] - w * solo
                    demand[l] = dl
                    coupled[l] = dl >= limit[l]
            for l, wb in r.covered:
                c = count[l] - 1
                count[l] = c
                nbytes[l] += wb
                if not c:
                    busy[l] += now - since[l]
                    if rec[l]:
                        intervals.fromlist([l, since[l], now, rec_bytes[l] + wb])  # (faster than extend)
                        rec_bytes[l] = 0.0
                elif rec[l]:
                    rec_bytes[l] += wb
        if neighbours:
            self._defer(*neighbours)
        self._schedule(now)
        for f in finished:
            f.done(f.arg)
