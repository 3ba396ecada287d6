"""What a compute stream waits for while it idles: the chain of tasks that held its next task back.

When a rank's compute stream idles over ``[a, b)`` and its next compute task starts at
``b``, that task started when the last of its dependencies and stream predecessors ended:
the engine records that task (``released_by``, :class:`~simcluster.engine.simulate.SimResult`;
a timeline column). If it is a communication task ``d``, the stream waited on ``d`` over
``[max(a, start(d)), b)``; before ``d`` started, it waited for what released ``d``, and so
on back to ``a``. The walk stops at a compute task: on another rank (a pipeline neighbour's
forward or backward wave, a slower peer), the rest of the gap is the pipeline bubble; on
this rank (a fused unit whose trailing collective part held the next task back), the rest
is left to the unit's own rows (the priority rule below). This is the critical path of the
wait, in the sense of Yang and Miller's critical path analysis of parallel programs (ICDCS
1988): time is charged to the task that actually delayed the next computation, not to
whatever else happens to be running.

Every other idle instant (inside a fused unit, between its parts; after the rank's last
compute; in a timeline without ``released_by``) keeps the priority rule: the first busy
communication class of :data:`COMM_CLASSES`, else the bubble.

Vectorised: the walks of all gaps advance together, one step of every chain per numpy pass,
so the cost is the longest chain times the number of gaps, in C.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Communication classes, in the priority order of the rule for instants the walk leaves open.
COMM_CLASSES = ("tp", "cp", "ep", "pp", "embedding", "zero", "dp", "other")
#: What a wait segment is charged to: a communication class, or the pipeline bubble (last).
WAIT_CLASSES = COMM_CLASSES + ("bubble",)
BUBBLE = len(COMM_CLASSES)
#: The summary's exposed-communication kind (``exposed_<kind>_comm``) of each communication class;
#: a class without one ("other") counts for the bubble there.
SUMMARY_KIND = {"tp": "tp", "cp": "tp", "ep": "ep", "pp": "pp", "embedding": "dp", "zero": "dp", "dp": "dp"}
PP = COMM_CLASSES.index("pp")
#: Classes of the collective that rebuilds a pipeline receive split over the tensor ranks.
GATHERS = (COMM_CLASSES.index("tp"), COMM_CLASSES.index("cp"))


def comm_class(stream: str, phase: str, task: str) -> str:
    """The communication class of a GPU row on a non-compute stream."""
    if stream in ("tp", "cp", "ep"):
        return stream
    if stream in ("pp-fwd", "pp-bwd") or phase == "pp_comm":
        return "pp"
    if stream in ("dp", "dp-edp"):  # dp-edp: the expert weights' gather beside the forward (lowering.moe)
        if phase == "zero_comm" or task.startswith("zero."):
            return "zero"
        return "embedding" if "embedding" in task else "dp"
    return "other"


def text_codes(col: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes and the text of each code of a text column (categorical or not)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.cat.codes.to_numpy(), [str(c) for c in col.cat.categories]
    codes, uniques = pd.factorize(col.astype(str), sort=False)
    return codes, [str(u) for u in uniques]


def row_classes(gpu: pd.DataFrame) -> np.ndarray:
    """Per GPU row: -1 on the compute stream, else its index in :data:`COMM_CLASSES` (text
    columns read through their categories: one :func:`comm_class` call per distinct name)."""
    s_codes, s_text = text_codes(gpu["stream"])
    p_codes, p_text = text_codes(gpu["phase"])
    t_codes, t_text = text_codes(gpu["task"])
    out = np.full(len(gpu), -1, dtype=np.int64)
    for sc, stream in enumerate(s_text):
        on = s_codes == sc
        if stream == "compute" or not on.any():
            continue
        if stream in ("dp", "dp-edp"):  # by task name, or zero by phase (a code of -1 reads the last entry)
            by_task = np.array([COMM_CLASSES.index(comm_class(stream, "", t)) for t in t_text] + [0])
            zero = np.array([p == "zero_comm" for p in p_text] + [False])
            out[on] = np.where(zero[p_codes[on]], COMM_CLASSES.index("zero"), by_task[t_codes[on]])
        else:
            by_phase = np.array([COMM_CLASSES.index(comm_class(stream, p, "")) for p in p_text]
                                + [COMM_CLASSES.index(comm_class(stream, "", ""))])
            out[on] = by_phase[p_codes[on]]
    return out


@dataclass
class Waits:
    """Wait segments ``[start, end)`` of ``rank``'s idle compute stream, each charged to
    ``cls`` (an index of :data:`WAIT_CLASSES`), sorted by rank then start."""

    rank: np.ndarray
    start: np.ndarray
    end: np.ndarray
    cls: np.ndarray

    def of(self, rank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo, hi = np.searchsorted(self.rank, [rank, rank + 1])
        return self.start[lo:hi], self.end[lo:hi], self.cls[lo:hi]


def causal_waits(gpu: pd.DataFrame, cls: np.ndarray | None = None) -> Waits | None:
    """The wait segments of every rank's compute-stream gaps (module docstring), or None when
    the timeline does not say what released each task (no ``released_by``, or none set).

    ``gpu``: the timeline's GPU rows; ``cls``: their :func:`row_classes` when the caller has them.
    """
    if "released_by" not in gpu or not len(gpu):
        return None
    rel_row = gpu["released_by"].to_numpy(np.int64)
    if not (rel_row >= 0).any():
        return None
    cls = row_classes(gpu) if cls is None else cls
    tid = gpu["task_id"].to_numpy(np.int64)
    rank = gpu["rank"].to_numpy(np.int64)
    start = gpu["start_s"].to_numpy(float)
    end = gpu["end_s"].to_numpy(float)
    n = int(tid.max()) + 1
    # per task: its span, whether it computes, its class as a communication, its rank, its releaser
    t_start = np.full(n, np.inf)
    np.minimum.at(t_start, tid, start)
    t_end = np.full(n, -np.inf)
    np.maximum.at(t_end, tid, end)
    comp = cls < 0
    t_compute = np.zeros(n, dtype=bool)
    t_compute[tid[comp]] = True
    t_cls = np.full(n, BUBBLE, dtype=np.int64)
    t_cls[tid[~comp]] = cls[~comp]  # a communication task's rows are all on its one stream: one class
    nr = int(rank.max()) + 1
    on_rank = np.sort(tid * nr + rank)  # (task, rank) pairs, sorted: which ranks a task occupies
    t_rel = np.full(n, -1, dtype=np.int64)
    t_rel[tid] = rel_row

    # the compute rows by rank and start; a gap before each row that starts after all before it ended
    ci = np.flatnonzero(comp)
    order = np.lexsort((end[ci], start[ci], rank[ci]))
    ci = ci[order]
    r, s, e, x = rank[ci], start[ci], end[ci], tid[ci]
    first = np.r_[True, r[1:] != r[:-1]]
    prev_end = np.zeros(len(ci))
    prev_task = np.full(len(ci), -1, dtype=np.int64)
    if len(ci):
        run = _cummax_by_group(e, first)
        prev_end[1:] = np.where(first[1:], 0.0, run[:-1])
        prev_task[1:] = np.where(first[1:], -1, x[:-1])
    gap = (s > prev_end) & (x != prev_task)  # a gap inside a fused unit keeps the priority rule
    lo, b, cur, g_rank = prev_end[gap], s[gap], x[gap], r[gap]
    tcur = np.maximum(lo, np.minimum(b, t_start[cur]))  # a unit's leading part: its own rows

    out_r: list[np.ndarray] = []
    out_s: list[np.ndarray] = []
    out_e: list[np.ndarray] = []
    out_c: list[np.ndarray] = []

    def emit(mask: np.ndarray, s0: np.ndarray, s1: np.ndarray, c: np.ndarray) -> None:
        keep = mask & (s1 > s0)
        if keep.any():
            out_r.append(g_rank[keep])
            out_s.append(s0[keep])
            out_e.append(s1[keep])
            out_c.append(c[keep])

    live = tcur > lo
    # whether a pipeline send the chain's current task waits for is this rank's receive: the task is
    # this rank's compute, or the tensor-group gather of a receive split over the tensor ranks
    receives = np.ones(len(lo), dtype=bool)
    for _ in range(n + 1):  # each step moves every live chain to an earlier task
        if not live.any():
            break
        d = np.where(live, t_rel[cur], -1)
        none = live & (d < 0)
        emit(none, lo, tcur, np.full(len(lo), BUBBLE))
        dd = np.maximum(d, 0)
        code = dd * nr + g_rank
        here = on_rank[np.minimum(np.searchsorted(on_rank, code), len(on_rank) - 1)] == code
        is_comp = live & (d >= 0) & t_compute[dd]
        mine = is_comp & here & (t_end[dd] > lo)  # own unit's trailing part
        ours = here | ((t_cls[dd] == PP) & receives)  # a send to this rank: on the sender's stream
        elsewhere = live & (d >= 0) & ~t_compute[dd] & ~ours  # another rank's collective
        emit((is_comp & ~mine) | elsewhere, lo, tcur, np.full(len(lo), BUBBLE))
        comm = live & (d >= 0) & ~t_compute[dd] & ours
        s0 = np.maximum(lo, t_start[dd])
        emit(comm, s0, tcur, t_cls[dd])
        live = comm & (s0 > lo)
        tcur = np.where(live, s0, tcur)
        cur = np.where(live, dd, cur)
        receives = here & np.isin(t_cls[dd], GATHERS)
    if not out_r:
        z = np.zeros(0)
        return Waits(np.zeros(0, dtype=np.int64), z, z, np.zeros(0, dtype=np.int64))
    wr, ws, we, wc = (np.concatenate(a) for a in (out_r, out_s, out_e, out_c))
    o = np.lexsort((ws, wr))
    return Waits(wr[o], ws[o], we[o], wc[o])


def _cummax_by_group(v: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Running maximum of ``v`` restarting where ``first`` is True (one pass per group)."""
    out = np.empty_like(v)
    heads = np.r_[np.flatnonzero(first), len(v)]
    for a, b in zip(heads[:-1], heads[1:]):
        out[a:b] = np.maximum.accumulate(v[a:b])
    return out
