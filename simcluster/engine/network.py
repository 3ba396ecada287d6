"""Links shared by concurrent transfers: a flow-level network model on simpy.

Each active transfer is a fluid flow over a set of links. Rates are max-min
fair with per-link weights (progressive filling; Bertsekas & Gallager, *Data
Networks*, §6.5.2): every link ``l`` obeys ``sum_f w[f,l]·r_f <= B_l``. Rates
change only when a flow starts or ends; then only the flows connected to it
through shared links are re-rated. So two equal transfers sharing one link
each get B/2 and take twice as long as one alone, and transfers on disjoint
links don't slow each other (ASTRA-sim's congestion-aware analytical network
makes the same choice: delay = latency + bytes / bandwidth, links shared).
"""

from __future__ import annotations

from typing import Callable, Generator

import simpy

from simcluster.collectives.transfer import Transfer

_EPS = 1e-12


class _Flow:
    __slots__ = ("tr", "remaining", "rate", "done", "seq")

    def __init__(self, tr: Transfer, done: simpy.Event, seq: int):
        self.tr, self.remaining, self.rate, self.done, self.seq = tr, tr.nbytes, 0.0, done, seq


class Network:
    """Active flows on the topology's links, re-rated on every change."""

    def __init__(self, env: simpy.Environment, bandwidth: list[float],
                 on_link_interval: Callable[[int, float, float, float], None] | None = None,
                 recorded: set[int] | frozenset[int] = frozenset()):
        self.env = env
        self.bw = bandwidth
        self.flows_on: dict[int, dict[_Flow, float]] = {}  # link -> {flow: weight}
        self.load = [0.0] * len(bandwidth)  # bytes/s currently carried per link
        self.bytes = [0.0] * len(bandwidth)  # bytes carried per link so far
        self.busy = [0.0] * len(bandwidth)  # seconds with load > 0
        self._since = [0.0] * len(bandwidth)
        self._last = 0.0
        self._active: set[_Flow] = set()
        self._loaded: set[int] = set()
        self._seq = 0
        self._gen = 0
        self.recorded = recorded
        self._rec_start: dict[int, tuple[float, float]] = {}  # link -> (start, bytes at start)
        self.on_link_interval = on_link_interval
        self.flows_started = 0

    # -- public ---------------------------------------------------------------------------
    def transfer(self, tr: Transfer) -> Generator[simpy.Event, None, None]:
        """Process body: wait the latency, then move the bytes at the fair rate."""
        if tr.latency > 0:
            yield self.env.timeout(tr.latency)
        if tr.nbytes <= 0 or not tr.links:
            return
        done = self.env.event()
        f = _Flow(tr, done, self._seq)
        self._seq += 1
        self.flows_started += 1
        self._advance()
        self._active.add(f)
        for l, w in zip(tr.links, tr.weights):
            self.flows_on.setdefault(l, {})[f] = w
        self._rerate(self._component(f))
        self._schedule_wakeup()
        yield done

    # -- internals ------------------------------------------------------------------------
    def _advance(self) -> None:
        """Move every active flow forward to ``now`` at its current rate."""
        now = self.env.now
        dt = now - self._last
        if dt > 0:
            for f in self._active:
                f.remaining -= f.rate * dt
            for l in self._loaded:
                self.bytes[l] += self.load[l] * dt
        self._last = now

    def _component(self, f: _Flow) -> list[_Flow]:
        """Flows connected to ``f`` through shared links (those whose rate may change)."""
        seen = {f}
        stack = [f]
        while stack:
            g = stack.pop()
            for l in g.tr.links:
                for h in self.flows_on.get(l, ()):
                    if h not in seen:
                        seen.add(h)
                        stack.append(h)
        return sorted(seen, key=lambda x: x.seq)

    def _rerate(self, flows: list[_Flow]) -> None:
        """Max-min fair rates for ``flows`` by weighted progressive filling."""
        cap: dict[int, float] = {}
        for f in flows:
            for l in f.tr.links:
                cap[l] = self.bw[l]
        unfrozen = set(flows)
        while unfrozen:
            best_share, best_link = None, -1
            for l, c in cap.items():
                wsum = 0.0
                for g, w in self.flows_on.get(l, {}).items():
                    if g in unfrozen:
                        wsum += w
                if wsum > 0:
                    share = c / wsum
                    if best_share is None or share < best_share - _EPS * share or (
                            abs(share - best_share) <= _EPS * share and l < best_link):
                        best_share, best_link = share, l
            if best_share is None:
                break
            for g in sorted((g for g in self.flows_on[best_link] if g in unfrozen), key=lambda x: x.seq):
                g.rate = best_share
                unfrozen.discard(g)
                for l, w in zip(g.tr.links, g.tr.weights):
                    if l in cap:
                        cap[l] = max(0.0, cap[l] - w * best_share)
        touched = {l for f in flows for l in f.tr.links}
        for l in touched:
            self._set_load(l, sum(g.rate * w for g, w in self.flows_on.get(l, {}).items()))

    def _set_load(self, l: int, load: float) -> None:
        now = self.env.now
        old = self.load[l]
        if old <= 0 < load:
            self._loaded.add(l)
            self._since[l] = now
            if l in self.recorded:
                self._rec_start[l] = (now, self.bytes[l])
        elif load <= 0 < old:
            self._loaded.discard(l)
            self.busy[l] += now - self._since[l]
            if l in self._rec_start and self.on_link_interval is not None:
                start, b0 = self._rec_start.pop(l)
                self.on_link_interval(l, start, now, self.bytes[l] - b0)
        self.load[l] = load

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
                           if f.remaining <= 1e-9 * f.tr.nbytes + 1e-6), key=lambda x: x.seq)
        affected: set[_Flow] = set()
        for f in finished:
            self._active.discard(f)
            for l in f.tr.links:
                del self.flows_on[l][f]
        for f in finished:
            for l in f.tr.links:
                affected.update(self.flows_on.get(l, {}))
        # re-rate the neighbours of finished flows, and zero the links they freed
        comp: set[_Flow] = set()
        for g in sorted(affected, key=lambda x: x.seq):
            if g not in comp:
                comp.update(self._component(g))
        if comp:
            self._rerate(sorted(comp, key=lambda x: x.seq))
        for f in finished:
            for l in f.tr.links:
                if not self.flows_on.get(l):
                    self._set_load(l, 0.0)
        for f in finished:
            f.done.succeed()
        self._schedule_wakeup()
