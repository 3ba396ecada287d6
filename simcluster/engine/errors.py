"""What the engine raises when a task graph cannot be simulated to the end."""

from __future__ import annotations


class SimulationError(RuntimeError):
    """The simulation of a task graph could not finish (the base of the engine's errors)."""


class DeadlockError(SimulationError):
    """Some tasks never ran: the streams' orders and the dependencies contradict."""


class RunawayError(SimulationError):
    """Simulated time would not advance or not stay finite: a degenerate rate or latency.

    Raised instead of spinning: a transfer with no bandwidth, a finish time or latency
    that is infinite or not a number, or network wake-ups that keep finding nothing to
    finish at the same instant. The message is one line naming the degenerate value.
    """
