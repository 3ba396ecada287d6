"""A transfer: the unit of network work the engine schedules.

A transfer is one fluid flow that loads a set of links. Following the
flow-level model of ASTRA-sim's congestion-aware network (delay = latency +
bytes / bandwidth), a transfer first waits ``latency`` seconds, then moves
``nbytes`` at a rate ``r`` that the engine chooses by max-min fair sharing under
the constraint, for every link ``l``, ``sum_f weight[f, l] * r_f <= bandwidth_l``.

``weight`` counts how many streams of ``nbytes`` the transfer pushes through a
link: a ring collective routes several hops over one link, and identical groups
simulated once (rank symmetry) add their own hops as extra weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True, slots=True)
class Transfer:
    """``nbytes`` over ``links`` (link ids) with per-link ``weights``, after ``latency`` s."""

    links: tuple[int, ...]
    weights: tuple[float, ...]
    nbytes: float
    latency: float

    def scaled(self, factor: float) -> "Transfer":
        """The same route carrying ``factor`` times the bytes."""
        return Transfer(self.links, self.weights, self.nbytes * factor, self.latency)


def byte_time(tr: Transfer, bandwidth: Sequence[float]) -> float:
    """Seconds ``tr`` moves its bytes alone on its links: nbytes / min_l(B_l / w_l)."""
    if tr.nbytes <= 0 or not tr.links:
        return 0.0
    return tr.nbytes / min(bandwidth[l] / w for l, w in zip(tr.links, tr.weights))


def uncontended_time(transfers: Sequence[Transfer], bandwidth: Sequence[float]) -> float:
    """Seconds the transfers take one after another with no other traffic: Σ latency + byte time."""
    total = 0.0
    for tr in transfers:
        total += tr.latency
        total += byte_time(tr, bandwidth)
    return total
