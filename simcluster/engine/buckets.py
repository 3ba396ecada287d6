"""Flows' finish (or due) times, grouped by time: a heap of distinct times, a bucket each.

The network keeps, for every flow moving bytes, the time it will finish at its current
rate and the time it is due (finished but for rounding). A full-fidelity run has
thousands of such flows at once, but the data-parallel replicas move the same bytes at
the same rates, so they share a handful of distinct times: the 13B series at 8,192 GPUs
has up to 2,000 flows in flight and a few dozen distinct finish times. One heap entry per
time (pushed once, however many flows join it) keeps each push and pop O(1) for a flow
joining an existing time, instead of O(log flows) sifts through tuples per flow.

An entry is ``(flow, version)``; it is stale once the flow's ``ver`` moved on (a new rate
gave it a new time, or it ended). ``live[t]`` counts the entries of time ``t`` not known
to be stale, so the earliest time that still has a flow is found without scanning buckets:
:meth:`TimeBuckets.forget` is told when a flow's entry goes stale.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from typing import Any, Protocol


class Versioned(Protocol):
    """A flow as the buckets see it: its version (``-1`` once ended)."""

    ver: int


class TimeBuckets:
    """``(flow, version)`` entries by time; the earliest time, all entries up to a time."""

    __slots__ = ("times", "items", "live", "entries")

    def __init__(self) -> None:
        self.times: list[float] = []  # distinct times, a heap
        self.items: dict[float, list[Any]] = {}  # time -> flow, version, flow, version, ...
        self.live: dict[float, int] = {}  # time -> its entries not known to be stale
        self.entries = 0  # entries held, stale ones included

    def push(self, t: float, f: Versioned, ver: int) -> None:
        """Add ``f`` (at version ``ver``) at time ``t``."""
        b = self.items.get(t)
        if b is None:
            self.items[t] = [f, ver]
            self.live[t] = 1
            heappush(self.times, t)
        else:
            b += (f, ver)
            self.live[t] += 1
        self.entries += 1

    def forget(self, t: float) -> None:
        """An entry at ``t`` went stale (a time already taken out is ignored)."""
        k = self.live.get(t)
        if k is not None:
            self.live[t] = k - 1

    def earliest(self) -> float | None:
        """The earliest time with an entry not known to be stale (dropping the times before it)."""
        times, live = self.times, self.live
        while times and not live[times[0]]:
            t = heappop(times)
            del live[t]
            self.entries -= len(self.items.pop(t)) // 2
        return times[0] if times else None

    def take(self, now: float, out: list[Any]) -> None:
        """Append to ``out`` every flow whose entry at a time ``<= now`` is current, marking it
        ended (``ver = -1``); all entries up to ``now`` are removed."""
        times, items, live = self.times, self.items, self.live
        while times and times[0] <= now:
            t = heappop(times)
            b = items.pop(t)
            del live[t]
            self.entries -= len(b) // 2
            for i in range(0, len(b), 2):
                f = b[i]
                if f.ver == b[i + 1]:
                    f.ver = -1
                    out.append(f)

    def compact(self) -> None:
        """Drop the stale entries (the network calls this when they outnumber the live ones)."""
        keep: dict[float, list[Any]] = {}
        for t, b in self.items.items():
            kept = [x for i in range(0, len(b), 2) if b[i].ver == b[i + 1] for x in (b[i], b[i + 1])]
            if kept:
                keep[t] = kept
        self.items = keep
        self.live = {t: len(b) // 2 for t, b in keep.items()}
        self.times = list(keep)
        heapify(self.times)
        self.entries = sum(self.live.values())
