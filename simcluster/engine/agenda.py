"""Callbacks at simulated times on simpy's event queue, one simpy event per run of them at one instant.

simpy runs the events of one instant in (priority, insertion id) order. The engine's callbacks
all have priority ``NORMAL`` but the network's end-of-instant re-rate (a later priority), so
callbacks scheduled one after another for the same time ``t`` (no other ``NORMAL`` event
scheduled in between) run one after another, with nothing between them: they can share one
simpy event. :meth:`Agenda.at` adds a callback to the last event it scheduled when that one
is for the same time and has not run yet, and otherwise schedules a new one; the batch runs
its callbacks in the order they were added, which is the order simpy would have run them in,
so the timeline is the same bit for bit.

Why: in a full-fidelity run the data-parallel replicas do the same thing at the same instant,
so a few callbacks in a hundred need an event of their own (13B on 1,024 GPUs: 394,827
callbacks, 15,566 events), and simpy's heap stays small however many GPUs are simulated.
Anything that schedules a ``NORMAL`` event on the same environment must do it through the
agenda (one that bypassed it could land between a batch's callbacks).
"""

from __future__ import annotations

import math
from heapq import heappop, heappush
from typing import Callable

import simpy
from simpy.events import NORMAL, Event


class Call(Event):
    """``fn(event)`` at a simulated time: a simpy ``Timeout`` with ``fn`` its one callback
    and ``value`` its value, scheduled by the caller with ``env.schedule(event, NORMAL, delay)``
    (for delays known to be non-negative: no check, no second call to add the callback).

    A callback reads its value as ``event._value``; one that shares the event with others
    (a batch, :class:`Agenda`) finds its own value there while it runs.
    """

    _ok = True

    def __init__(self, env: simpy.Environment, fn: Callable[[Event], None], value: object):
        self.env, self.callbacks, self._value = env, [fn], value


def _run_batch(ev: Event) -> None:
    """Run the callbacks of a batch (``ev.batch``: callback, value, callback, value, ...) in order."""
    items: list[object] = ev.batch  # type: ignore[attr-defined]
    for i in range(0, len(items), 2):
        ev._value = items[i + 1]
        items[i](ev)  # type: ignore[operator]
    ev.batch = None  # type: ignore[attr-defined]  # (holds the callbacks' owners: no cycle left)


class Agenda:
    """Schedules ``fn(event)`` (value in ``event._value``) ``delay`` seconds from now, joining the
    previous call's event when that is for the same time and still to run (see the module)."""

    __slots__ = ("env", "_t", "_ev", "_queue", "_eid")

    def __init__(self, env: simpy.Environment):
        self.env = env
        self._queue, self._eid = env._queue, env._eid  # what ``env.schedule`` pushes onto (inlined)
        self._t = math.nan  # the time of the last event scheduled (nan: none yet)
        self._ev: Call | None = None

    def run(self) -> None:
        """Run the events until none is left: ``env.run()`` for events that cannot fail
        (every event here is a :class:`Call`), without simpy's per-step checks and call."""
        env, queue = self.env, self._queue
        while queue:
            env._now, _, _, ev = heappop(queue)
            fn = ev.callbacks[0]
            ev.callbacks = None  # (it has run: nothing may join it)
            fn(ev)

    def release(self) -> None:
        """Forget the last event (its value and callbacks may refer back to the engine)."""
        self._t, self._ev = math.nan, None

    def at(self, delay: float, fn: Callable[[Event], None], value: object) -> None:
        """``fn`` with ``value`` after ``delay`` >= 0 seconds (not checked)."""
        env = self.env
        t = env._now + delay  # simpy's own sum: the same float as the event's time
        if t == self._t:
            ev = self._ev
            cbs = ev.callbacks  # type: ignore[union-attr]
            if cbs is not None:  # not run yet: join it
                if cbs[0] is _run_batch:
                    ev.batch += (fn, value)  # type: ignore[union-attr]
                else:
                    ev.batch = [cbs[0], ev._value, fn, value]  # type: ignore[union-attr]
                    cbs[0] = _run_batch
                return
        ev = Call(env, fn, value)
        heappush(self._queue, (t, NORMAL, next(self._eid), ev))  # = env.schedule(ev, NORMAL, delay)
        self._t, self._ev = t, ev
