"""A transfer's route as the network sees it, and one flow moving its bytes.

:class:`TransferRoute` is computed once per :class:`~simcluster.collectives.transfer.Transfer`
object and shared by every flow of it; a :class:`Flow` is one run of the transfer, with its
rate, remaining bytes and heap version (:mod:`simcluster.engine.network` moves them).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from simcluster.collectives.transfer import Transfer


class TransferRoute:
    """What every flow of one transfer shares: its links split by kind, its rate alone."""

    __slots__ = ("tr", "links", "weights", "nbytes", "latency", "solo", "uncovered", "covered", "bounds",
                 "due_bytes", "moves")

    def __init__(self, tr: Transfer, bw: Sequence[float], covered: Sequence[bool], twin: Sequence[int]):
        self.tr = tr  # kept alive: routes are found by ``id(tr)``
        self.links, self.weights, self.nbytes, self.latency = tr.links, tr.weights, tr.nbytes, tr.latency
        self.solo = min((bw[l] / w for l, w in zip(tr.links, tr.weights)), default=math.inf)
        nb = tr.nbytes
        #: (link, weight, weight · nbytes) of the links that can couple flows / of the covered ones,
        #: each group of twin links by its representative (the others follow it)
        mine = [(l, w) for l, w in zip(tr.links, tr.weights) if twin[l] == l]
        self.uncovered = tuple((l, w, w * nb) for l, w in mine if not covered[l])
        self.covered = tuple((l, w * nb) for l, w in mine if covered[l])
        #: (B_l / w_l, l) over its links, ascending (for fills)
        self.bounds = sorted((bw[l] / w, l) for l, w in zip(tr.links, tr.weights))
        self.due_bytes = nb - 1e-9 * nb - 1e-6  # nbytes less the tolerance (see the module)
        self.moves = not nb <= 0 and bool(tr.links)  # bytes to move over links (else it ends after its latency)


class Flow:
    """One transfer moving its bytes: ``rem0`` bytes left at ``t0``, rate ``rate`` since."""

    __slots__ = ("route", "solo", "rate", "t0", "rem0", "ver", "done", "arg", "seq", "shared", "due")

    route: TransferRoute
    solo: float  # m_f: the rate alone on its links
    rate: float
    t0: float
    rem0: float
    ver: int  # bumped on every rate change; -1 once ended (heap entries go stale)
    done: Callable[[int], None]
    arg: int
    seq: int  # start order
    due: float  # its due time at its current rate: its finish less the tolerance
    shared: dict[int, None]  # its links that can couple and other flows cross too, now

    def __init__(self, r: TransferRoute, done: Callable[[int], None], arg: int):
        self.route, self.solo, self.done, self.arg = r, r.solo, done, arg
        self.rate, self.ver, self.shared = 0.0, 0, ALONE  # the rest is set when its bytes start to move

    # what :func:`simcluster.engine.fairshare.fill` reads of a flow: its route's
    @property
    def links(self) -> tuple[int, ...]:
        return self.route.links

    @property
    def weights(self) -> tuple[float, ...]:
        return self.route.weights

    @property
    def nbytes(self) -> float:
        return self.route.nbytes

    @property
    def bounds(self) -> list[tuple[float, int]] | None:
        """(B_l / w_l, l) over its links, ascending (computed once per route)."""
        return self.route.bounds

    @bounds.setter
    def bounds(self, value: list[tuple[float, int]] | None) -> None:
        pass  # the route's are always there


#: The links a flow shares while it shares none (one empty dict for all: never written to).
ALONE: dict[int, None] = {}

#: A heap entry: (time, flow seq, flow version, flow).
HeapEntry = tuple[float, int, int, Flow]


def start_order(f: Flow) -> int:
    return f.seq
