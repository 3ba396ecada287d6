"""What each simulated GPU does at every instant, and how much of each pixel column it fills.

A rank's time is cut at every interval boundary into elementary segments; each segment
gets one *compute state* (what the compute stream runs, or why it idles) and, per
communication lane, one *lane state* (which collective the lane carries and whether the
compute stream is busy meanwhile: overlapped, or idle: exposed). The states follow the
metrics' breakdown (:mod:`simcluster.metrics.summary`): the compute stream's busy time by
phase, then its idle time charged to what held the next compute task back
(:mod:`simcluster.metrics.waits`: a communication class — the ZeRO gathers and the
tied-embedding sync told apart from data parallel — or the pipeline bubble), and where no
chain says, to the first busy class in the order tensor/context parallel, the experts'
all-to-all, pipeline, data parallel, else the bubble. A lane's collective is *exposed*
where the compute stream waits on its class, *overlapped* elsewhere (behind compute, or
hidden in a bubble). So the totals per rank are the breakdown of ``details.json`` and the
summary's fractions.

:func:`binned` turns segments into seconds per state per time bin exactly (prefix sums:
no sampling), which is what the Gantt chart draws as stacked shares of a pixel column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simcluster.metrics import waits
from simcluster.metrics.waits import comm_class, text_codes  # noqa: F401  (re-exported: lanes' classes, codes)

#: Compute-stream states while busy, in drawing order (bottom of a lane up).
BUSY = ("forward", "recompute", "backward", "weight_grad", "imbalance", "optimizer", "host", "other_compute")
#: Idle states by cause, in attribution order (the metrics' order); "bubble" last.
WAITS = ("wait_tp", "wait_cp", "wait_ep", "wait_pp", "wait_embedding", "wait_zero", "wait_dp", "wait_other", "bubble")
COMPUTE_STATES = BUSY + WAITS
#: Communication classes, by the lane they are drawn on.
LANES: dict[str, tuple[str, ...]] = {"tp": ("tp",), "cp": ("cp",), "ep": ("ep",), "pp": ("pp",),
                                     "dp": ("embedding", "zero", "dp"), "other": ("other",)}
COMM_CLASSES = tuple(c for cs in LANES.values() for c in cs)
assert COMM_CLASSES == waits.COMM_CLASSES  # the lanes draw the classes in the attribution's order
#: Summary buckets (metrics' ``exposed_*_comm``) of each wait state.
BUCKET = {**{f"wait_{c}": waits.SUMMARY_KIND.get(c, "other") for c in COMM_CLASSES}, "bubble": "bubble"}


def lane_of(cls: str) -> str:
    """The communication lane a class is drawn on."""
    return next(lane for lane, classes in LANES.items() if cls in classes)


def lane_states(lane: str) -> tuple[str, ...]:
    """A lane's states, drawing order: each class exposed, then each class overlapped."""
    classes = LANES[lane]
    return tuple(f"{c}_exposed" for c in classes) + tuple(f"{c}_overlapped" for c in classes)


def _union(s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted disjoint union of intervals (empty ones dropped)."""
    keep = e > s
    s, e = s[keep], e[keep]
    if len(s) == 0:
        return s, e
    order = np.argsort(s, kind="stable")
    s, e = s[order], e[order]
    run_end = np.maximum.accumulate(e)
    new = np.empty(len(s), dtype=bool)
    new[0] = True
    new[1:] = s[1:] > run_end[:-1]
    idx = np.flatnonzero(new)
    return s[idx], np.maximum.reduceat(e, idx)


def _covered(points: np.ndarray, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Whether each point lies inside the sorted disjoint intervals ``[s, e)``."""
    if len(s) == 0:
        return np.zeros(len(points), dtype=bool)
    i = np.searchsorted(s, points, side="right") - 1
    ok = i >= 0
    out = np.zeros(len(points), dtype=bool)
    out[ok] = points[ok] < e[i[ok]]
    return out


#: Row classes: the busy compute states, then the communication classes.
ROW_CLASSES = BUSY + COMM_CLASSES


@dataclass
class GpuRows:
    """The timeline's GPU rows as arrays sorted by rank: ``cls`` indexes :data:`ROW_CLASSES`;
    ``spans[rank]`` is that rank's slice."""

    start: np.ndarray
    end: np.ndarray
    cls: np.ndarray
    spans: dict[int, slice]
    #: what each idle compute stream waited for (:func:`simcluster.metrics.waits.causal_waits`)
    waits: waits.Waits | None = None

    def of(self, rank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sl = self.spans.get(rank, slice(0, 0))
        return self.start[sl], self.end[sl], self.cls[sl]

    def waits_of(self, rank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``rank``'s wait segments (start, end, index of :data:`simcluster.metrics.waits.WAIT_CLASSES`)."""
        return None if self.waits is None else self.waits.of(rank)


def gpu_arrays(timeline: pd.DataFrame) -> GpuRows:
    """Classify every GPU row of ``timeline`` once: busy compute states by phase, communication
    classes by :func:`simcluster.metrics.waits.row_classes` (the classes the wait segments use)."""
    if timeline.empty or "rank" not in timeline:
        z = np.zeros(0)
        return GpuRows(z, z, np.zeros(0, dtype=np.int16), {})
    rank_all = timeline["rank"].to_numpy()
    gpu = np.flatnonzero(rank_all >= 0)
    k = len(gpu)
    rows = timeline.iloc[:k] if (rank_all[:k] >= 0).all() else timeline.iloc[gpu]  # the engine writes them first
    comm = waits.row_classes(rows)  # -1 on the compute stream
    p_codes, p_text = text_codes(rows["phase"])
    busy = {name: k for k, name in enumerate(BUSY)}
    by_phase = np.array([busy.get(p, busy["other_compute"]) for p in p_text] + [busy["other_compute"]], dtype=np.int16)
    row_cls = np.where(comm >= 0, len(BUSY) + comm, by_phase[p_codes]).astype(np.int16)
    rank = rank_all[gpu]
    order = np.argsort(rank, kind="stable")
    rank = rank[order]
    start = rows["start_s"].to_numpy(dtype=float)[order]
    end = rows["end_s"].to_numpy(dtype=float)[order]
    cuts = np.flatnonzero(np.diff(rank)) + 1
    bounds = np.concatenate([[0], cuts, [len(rank)]])
    spans = {int(rank[a]): slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a}
    wait = waits.causal_waits(rows, comm) if "released_by" in rows else None
    return GpuRows(start, end, row_cls[order], spans, wait)


@dataclass
class Segments:
    """One rank's time cut into segments ``[edges[i], edges[i + 1])`` with their states.

    ``compute[i]`` indexes :data:`COMPUTE_STATES`; ``lanes[lane][i]`` indexes
    ``lane_states(lane)``, or is -1 where the lane carries nothing.
    """

    edges: np.ndarray
    compute: np.ndarray
    lanes: dict[str, np.ndarray]

    @property
    def length(self) -> np.ndarray:
        return np.diff(self.edges)


def rank_segments(start: np.ndarray, end: np.ndarray, cls: np.ndarray, t0: float, t1: float,
                  wait: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Segments:
    """The segments over ``[t0, t1]`` of one rank's GPU rows (arrays of :meth:`GpuRows.of`);
    ``wait``: its wait segments (:meth:`GpuRows.waits_of`), which say what an idle instant
    waits for where they cover it."""
    cuts = [[t0, t1], np.clip(start, t0, t1), np.clip(end, t0, t1)]
    if wait is not None:
        cuts += [np.clip(wait[0], t0, t1), np.clip(wait[1], t0, t1)]
    edges = np.unique(np.concatenate(cuts))
    if len(edges) < 2:
        edges = np.array([t0, max(t0, t1)])
    mid = 0.5 * (edges[:-1] + edges[1:])
    n = len(mid)
    state = np.full(n, -1, dtype=np.int16)
    present = set(np.unique(cls).tolist())
    for k in range(len(BUSY)):
        if k in present:
            sel = cls == k
            hit = _covered(mid, *_union(start[sel], end[sel])) & (state < 0)
            state[hit] = k
    busy = state >= 0
    if wait is not None and len(wait[0]):
        o = np.argsort(wait[0], kind="stable")
        ws, we, wc = wait[0][o], wait[1][o], wait[2][o]
        i = np.searchsorted(ws, mid, side="right") - 1
        ok = (i >= 0) & ~busy
        ok[ok] = mid[ok] < we[i[ok]]
        names = [f"wait_{c}" if c != "bubble" else "bubble" for c in waits.WAIT_CLASSES]
        to_state = np.array([COMPUTE_STATES.index(m) for m in names], dtype=np.int16)
        state[ok] = to_state[wc[i[ok]]]
    cover: dict[int, np.ndarray] = {}
    for j, c in enumerate(COMM_CLASSES):
        if len(BUSY) + j not in present:
            continue
        sel = cls == len(BUSY) + j
        cov = _covered(mid, *_union(start[sel], end[sel]))
        if cov.any():  # (all of it outside [t0, t1]: no lane)
            cover[j] = cov
            state[cov & (state < 0)] = COMPUTE_STATES.index(f"wait_{c}")  # attribution order = COMM_CLASSES order
    lanes: dict[str, np.ndarray] = {}
    for j, cov in cover.items():  # exposed first: where the compute waits on this class
        c = COMM_CLASSES[j]
        ls = lanes.setdefault(lane_of(c), np.full(n, -1, dtype=np.int16))
        ls[cov & (ls < 0) & (state == COMPUTE_STATES.index(f"wait_{c}"))] = lane_states(lane_of(c)).index(f"{c}_exposed")
    for j, cov in cover.items():  # then overlapped: behind compute or inside a bubble
        c = COMM_CLASSES[j]
        ls = lanes[lane_of(c)]
        ls[cov & (ls < 0)] = lane_states(lane_of(c)).index(f"{c}_overlapped")
    state[state < 0] = COMPUTE_STATES.index("bubble")
    return Segments(edges, state, lanes)


def binned(seg_edges: np.ndarray, states: np.ndarray, n_states: int, bins: np.ndarray) -> np.ndarray:
    """Seconds of each state in each bin ``[bins[j], bins[j + 1])``: shape ``(n_states, len(bins) - 1)``.

    Exact: the cumulative time of each state is evaluated at the bin edges (states < 0 count
    for nothing). Bins outside the segments' span get nothing.
    """
    length = np.diff(seg_edges)
    n_seg = len(length)
    out = np.zeros((n_states, len(bins) - 1))
    if n_seg == 0:
        return out
    x = np.clip(bins, seg_edges[0], seg_edges[-1])
    i = np.clip(np.searchsorted(seg_edges, x, side="right") - 1, 0, n_seg - 1)
    part = x - seg_edges[i]
    for k in range(n_states):
        mine = states == k
        if not mine.any():
            continue
        cum = np.concatenate([[0.0], np.cumsum(np.where(mine, length, 0.0))])
        c = cum[i] + np.where(mine[i], part, 0.0)
        out[k] = np.diff(c)
    return np.maximum(out, 0.0)


def totals(seg: Segments) -> dict[str, float]:
    """Seconds per compute state and per lane state of one rank (non-zero ones)."""
    length = seg.length
    out = {name: float(length[seg.compute == k].sum()) for k, name in enumerate(COMPUTE_STATES)}
    for lane, ls in seg.lanes.items():
        for k, name in enumerate(lane_states(lane)):
            out[name] = float(length[ls == k].sum())
    return {k: v for k, v in out.items() if v > 0}


def summary_buckets(tot: dict[str, float]) -> dict[str, float]:
    """A rank's totals in the metrics' breakdown keys (compute includes every busy phase but
    recompute, optimizer, the MoE imbalance and host work; ``exposed_<tp|pp|dp>_comm``; bubble)."""
    out = {"compute": sum(tot.get(k, 0.0) for k in ("forward", "backward", "weight_grad", "other_compute")),
           "recompute": tot.get("recompute", 0.0), "optimizer": tot.get("optimizer", 0.0),
           "moe_imbalance": tot.get("imbalance", 0.0), "host_wait": tot.get("host", 0.0),
           "exposed_tp_comm": 0.0, "exposed_ep_comm": 0.0, "exposed_pp_comm": 0.0, "exposed_dp_comm": 0.0, "exposed_other_comm": 0.0,
           "bubble": 0.0}
    for w in WAITS:
        b = BUCKET[w]
        out["bubble" if b == "bubble" else f"exposed_{b}_comm"] += tot.get(w, 0.0)
    return out
