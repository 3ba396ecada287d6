"""Weighted max-min fair rates by progressive filling with a priority queue of links.

Flows ``f`` cross links ``l`` with weights ``w[f,l]``; link ``l`` carries at most
``B_l``: ``sum_f w[f,l]·r_f <= B_l``. Progressive filling (Bertsekas & Gallager,
*Data Networks*, 2nd ed., §6.5.2) raises every unfrozen rate together; the first
link to saturate is the one with the smallest fair share

    share_l = (B_l - sum_{f frozen} w[f,l]·r_f) / sum_{f unfrozen} w[f,l],

and its unfrozen flows freeze at that share. Here the shares sit in a binary
heap keyed by (share, link id): freezing a flow updates only the links it
crosses and pushes their new shares (older entries are skipped when popped, a
lazy deletion), so one fill costs O(E log E) for E (flow, link) pairs instead
of one scan of every link per frozen level.

A link only one flow of the fill crosses keeps its share ``B_l / w[f,l]`` until that
flow freezes, so each flow's own links enter the heap as one entry, their tightest
share: a ring over hundreds of links costs one entry and a walk of its links.

**Slack links.** Let ``m_f = min_l B_l / w[f,l]`` be a flow's rate alone. A link
whose *demand* ``D_l = sum_f w[f,l]·m_f`` stays below ``B_l`` can never saturate:
each flow's tightest link has ``D_l >= w·m_f = B_l``, so it is not slack and is kept;
the kept constraints then give ``r_f <= m_f`` for every flow, hence
``sum_f w[f,l]·r_f <= D_l < B_l``. The slack constraint is implied, the feasible set
and so the max-min rates are the same without it, and such links neither couple
flows nor enter the fill. ``D_l < (1 - SLACK_MARGIN)·B_l`` is the test, the margin
far above the rounding of a running sum.
"""

from __future__ import annotations

import math
from heapq import heapify, heappop, heappush
from typing import Hashable, Iterable, Mapping, Protocol, Sequence, TypeVar

_EPS = 1e-12  # a link whose unfrozen weight is below this carries no unfrozen flow
SLACK_MARGIN = 1e-6


class Route(Hashable, Protocol):
    """A flow as the fill sees it: its links and weights, the links it shares with other
    flows now (``shared``), and ``bounds``: (B_l / w_l, l) over its links, ascending, or
    None until a fill first needs it."""

    @property
    def links(self) -> tuple[int, ...]: ...
    @property
    def weights(self) -> tuple[float, ...]: ...
    @property
    def shared(self) -> dict[int, None]: ...
    bounds: list[tuple[float, int]] | None


F = TypeVar("F", bound=Route)


def component(seeds: Iterable[F], flows_on: Sequence[Mapping[F, float]],
              coupled: Sequence[bool] | None = None) -> list[F]:
    """``seeds`` and every flow connected to them through links they share.

    ``coupled[l]`` false: link ``l`` does not connect its flows (a slack link). Only each
    flow's shared links are walked, so a ring over hundreds of links costs its few
    shared ones.
    """
    seen = dict.fromkeys(seeds)
    stack = list(seen)
    while stack:
        g = stack.pop()
        for l in g.shared:
            if coupled is None or coupled[l]:
                for h in flows_on[l]:
                    if h not in seen:
                        seen[h] = None
                        stack.append(h)
    return list(seen)


def fill(flows: Sequence[F], flows_on: Sequence[Mapping[F, float]], bw: Sequence[float],
         coupled: Sequence[bool] | None = None) -> dict[F, float]:
    """Max-min fair rates of ``flows`` (a union of connected components), by weighted
    progressive filling; shared links with ``coupled[l]`` false are left out (slack).

    ``flows_on[l]``: the flows on link ``l`` (each of them in ``flows`` when ``l`` is
    shared and coupled) in start order, which is the order the flows of a saturated
    link freeze in. A flow's links that no other flow crosses enter as one bound, the
    smallest ``B_l / w_l`` among them (the first of ``bounds`` not shared; leaving in a
    slack one changes nothing, it is above the flow's rate alone).
    """
    cap: dict[int, float] = {}
    wsum: dict[int, float] = {}
    mine: list[list[tuple[int, float]]] = []  # per flow: its shared coupled links, weights
    heap: list[tuple[float, int]] = []  # (share, link), or (own bound, -1 - flow index)
    for i, f in enumerate(flows):
        own: list[tuple[int, float]] = []
        sh = f.shared
        for l in sh:
            if coupled is not None and not coupled[l]:
                continue
            w = flows_on[l][f]
            own.append((l, w))
            if l in wsum:
                wsum[l] += w
            else:
                cap[l] = bw[l]
                wsum[l] = w
        mine.append(own)
        bounds = f.bounds
        if bounds is None:
            bounds = f.bounds = sorted((bw[l] / w, l) for l, w in zip(f.links, f.weights))
        for b, l in bounds:
            if l not in sh:
                heap.append((b, -1 - i))
                break
    heap.extend((cap[l] / ws, l) for l, ws in wsum.items() if ws > _EPS)
    heapify(heap)
    rates: dict[F, float] = {}
    left = len(flows)
    index = {f: i for i, f in enumerate(flows)}
    while heap and left:
        share, l = heappop(heap)
        if l < 0:
            g = flows[-1 - l]
            if g not in rates:
                left -= 1
                _freeze(g, share, mine[-1 - l], l, rates, cap, wsum, heap)
            continue
        ws = wsum[l]
        if ws <= _EPS or cap[l] / ws != share:
            continue  # an older entry of this link
        for g in flows_on[l]:
            if g not in rates:
                left -= 1
                _freeze(g, share, mine[index[g]], l, rates, cap, wsum, heap)
    return rates


def _freeze(g: F, share: float, links: list[tuple[int, float]], at: int, rates: dict[F, float],
            cap: dict[int, float], wsum: dict[int, float], heap: list[tuple[float, int]]) -> None:
    """Fix ``g``'s rate at ``share`` and take it off its shared links (pushing their new shares)."""
    rates[g] = share
    for l2, w2 in links:
        c = cap[l2] - w2 * share
        cap[l2] = c if c > 0.0 else 0.0
        ws2 = wsum[l2] - w2
        wsum[l2] = ws2
        if l2 != at and ws2 > _EPS:
            heappush(heap, (cap[l2] / ws2, l2))
