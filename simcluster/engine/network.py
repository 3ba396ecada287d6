"""Links shared by concurrent transfers: a flow-level network model on simpy.

Each active transfer is a fluid flow over a set of links. Rates are max-min
fair with per-link weights (progressive filling; Bertsekas & Gallager, *Data
Networks*, §6.5.2): every link ``l`` obeys ``sum_f w[f,l]·r_f <= B_l``. Rates
change only when a flow starts or ends; then only the flows connected to it
through shared links are re-rated (a flow alone on its links keeps the rate
``min_l B_l / w_l`` without any search). So two equal transfers sharing one
link each get B/2 and take twice as long as one alone, and transfers on
disjoint links don't slow each other (ASTRA-sim's congestion-aware network
makes the same choice: delay = latency + bytes / bandwidth, links shared).

Link statistics are kept without touching links on every rate change: a link
is busy while at least one flow crosses it, and the bytes it carried are
booked when each flow ends (``weight · nbytes``). A recorded link's busy
interval therefore carries exactly the bytes of the flows that ended in it.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import simpy

from simcluster.collectives.transfer import Transfer

_EPS = 1e-12


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


class _Flow:
    __slots__ = ("tr", "remaining", "rate", "done", "seq")

    def __init__(self, tr: Transfer, done: Callable[[], None], seq: int):
        self.tr, self.remaining, self.rate, self.done, self.seq = tr, tr.nbytes, 0.0, done, seq


def _seq(f: _Flow) -> int:
    return f.seq


class Network:
    """Active flows on the topology's links, re-rated on every change."""

    def __init__(self, env: simpy.Environment, bandwidth: list[float],
                 on_link_interval: Callable[[int, float, float, float], None] | None = None,
                 recorded: set[int] | frozenset[int] = frozenset()):
        self.env = env
        self.bw = bandwidth
        n = len(bandwidth)
        self.flows_on: dict[int, dict[_Flow, float]] = {}  # link -> {flow: weight}
        self.count = [0] * n  # active flows per link
        self.bytes = [0.0] * n  # bytes carried per link (booked when flows end)
        self.busy = [0.0] * n  # seconds with at least one flow
        self._since = [0.0] * n
        self._rec_bytes: dict[int, float] = {}
        self._last = 0.0
        self._active: set[_Flow] = set()
        self._seq = 0
        self._gen = 0
        self.recorded = recorded
        self.on_link_interval = on_link_interval
        self.flows_started = 0

    # -- public ---------------------------------------------------------------------------
    def start(self, tr: Transfer, on_done: Callable[[], None]) -> None:
        """Run ``tr``: wait its latency, then move its bytes at the fair rate; then ``on_done()``."""
        if tr.latency > 0:
            self.env.timeout(tr.latency).callbacks.append(lambda _e: self._begin(tr, on_done))
        else:
            self._begin(tr, on_done)

    def _begin(self, tr: Transfer, on_done: Callable[[], None]) -> None:
        if tr.nbytes <= 0 or not tr.links:
            on_done()
            return
        f = _Flow(tr, on_done, self._seq)
        self._seq += 1
        self.flows_started += 1
        self._advance()
        self._active.add(f)
        now = self.env.now
        shared = False
        count, flows_on = self.count, self.flows_on
        for l, w in zip(tr.links, tr.weights):
            if count[l] == 0:
                self._since[l] = now
                if l in self.recorded:
                    self._rec_bytes[l] = 0.0
            else:
                shared = True
            count[l] += 1
            d = flows_on.get(l)
            if d is None:
                flows_on[l] = {f: w}
            else:
                d[f] = w
        if shared:
            self._rerate(self._component([f]))
        else:
            f.rate = min(self.bw[l] / w for l, w in zip(tr.links, tr.weights))
        self._schedule_wakeup()

    # -- internals ------------------------------------------------------------------------
    def _advance(self) -> None:
        """Move every active flow forward to ``now`` at its current rate."""
        now = self.env.now
        dt = now - self._last
        if dt > 0:
            for f in self._active:
                f.remaining -= f.rate * dt
        self._last = now

    def _component(self, seeds: list[_Flow]) -> list[_Flow]:
        """Flows connected to ``seeds`` through shared links (those whose rate may change)."""
        seen = set(seeds)
        stack = list(seeds)
        flows_on = self.flows_on
        while stack:
            g = stack.pop()
            for l in g.tr.links:
                d = flows_on[l]
                if len(d) > 1:
                    for h in d:
                        if h not in seen:
                            seen.add(h)
                            stack.append(h)
        return sorted(seen, key=_seq)

    def _rerate(self, flows: list[_Flow]) -> None:
        """Max-min fair rates for ``flows`` by weighted progressive filling."""
        if len(flows) == 1:
            f = flows[0]
            f.rate = min(self.bw[l] / w for l, w in zip(f.tr.links, f.tr.weights))
            return
        cap: dict[int, float] = {}
        wsum: dict[int, float] = {}
        for f in flows:
            for l, w in zip(f.tr.links, f.tr.weights):
                cap[l] = self.bw[l]
                wsum[l] = wsum.get(l, 0.0) + w
        unfrozen = set(flows)
        while unfrozen:
            best_share, best_link = None, -1
            for l, c in cap.items():
                ws = wsum[l]
                if ws > _EPS:
                    share = c / ws
                    if best_share is None or share < best_share - _EPS * share or (
                            abs(share - best_share) <= _EPS * share and l < best_link):
                        best_share, best_link = share, l
            if best_share is None:
                break
            for g in sorted((g for g in self.flows_on[best_link] if g in unfrozen), key=_seq):
                g.rate = best_share
                unfrozen.discard(g)
                for l, w in zip(g.tr.links, g.tr.weights):
                    cap[l] = max(0.0, cap[l] - w * best_share)
                    wsum[l] -= w

    def _schedule_wakeup(self) -> None:
        if not self._active:
            return
        t = min(f.remaining / f.rate if f.rate > 0 else float("inf") for f in self._active)
        if t == float("inf"):
            raise RuntimeError("a transfer has no bandwidth (zero-capacity link on its route)")
        self._gen += 1
        gen = self._gen
        ev = self.env.timeout(max(t, 0.0))
        ev.callbacks.append(lambda _e: self._wakeup(gen))

    def _wakeup(self, gen: int) -> None:
        if gen != self._gen:
            return  # superseded by a later change
        self._advance()
        finished = sorted((f for f in self._active
                           if f.remaining <= 1e-9 * f.tr.nbytes + 1e-6), key=_seq)
        now = self.env.now
        neighbours: list[_Flow] = []
        for f in finished:
            self._active.discard(f)
            nb = f.tr.nbytes
            for l, w in zip(f.tr.links, f.tr.weights):
                d = self.flows_on[l]
                del d[f]
                self.bytes[l] += w * nb
                if l in self._rec_bytes:
                    self._rec_bytes[l] += w * nb
                self.count[l] -= 1
                if self.count[l] == 0:
                    self.busy[l] += now - self._since[l]
                    if l in self._rec_bytes:
                        nbytes = self._rec_bytes.pop(l)
                        if self.on_link_interval is not None:
                            self.on_link_interval(l, self._since[l], now, nbytes)
                else:
                    neighbours.extend(d)
        if neighbours:
            pending = [g for g in dict.fromkeys(neighbours) if g in self._active]
            done: set[_Flow] = set()
            for g in sorted(pending, key=_seq):
                if g not in done:
                    comp = self._component([g])
                    done.update(comp)
                    self._rerate(comp)
        self._schedule_wakeup()
        for f in finished:
            f.done()
