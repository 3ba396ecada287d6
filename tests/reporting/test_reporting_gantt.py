"""The Gantt chart is honest: the area each state covers in the PNG is its time in the timeline.

The truth is computed here from the timeline with the metrics' interval arithmetic
(:mod:`simcluster.metrics.intervals`), not with the reporting code that drew the chart; the
PNG is read back and every lane's pixels are counted by colour. A state may be off by at most
one pixel column's worth of time (a column of the lane, ``column_s`` seconds).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from simcluster.metrics.intervals import intersect, measure, merge, subtract
from simcluster.metrics.waits import WAIT_CLASSES, causal_waits
from simcluster.reporting.gantt import draw_gantt
from simcluster.reporting.raster import hex_rgb
from simcluster.reporting.shares import comm_class, lane_of, summary_buckets
from simcluster.reporting.style import state_style
from simcluster.run import simulate_workload
from simcluster.spec import load_workload

from reporting_synthetic import make_config, make_details, make_summary, make_timeline

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "workloads" / "toy-8gpu.yaml"
WAITS = {"tp": "exposed_tp_comm", "cp": "exposed_tp_comm", "pp": "exposed_pp_comm", "embedding": "exposed_dp_comm",
         "zero": "exposed_dp_comm", "dp": "exposed_dp_comm"}


def _drawn_seconds(png: Path, drawing) -> dict[tuple[int, str, str], float]:
    """Seconds each (rank, lane, state) covers in the PNG: its pixels over the lane's height,
    times the seconds of a column."""
    px = np.rint(mpimg.imread(png)[..., :3] * 255).astype(int)
    out = {}
    for lane in drawing.lanes:
        block = px[lane.top : lane.top + lane.height, drawing.left : drawing.left + drawing.columns]
        for state in lane.states:
            hit = (block == np.array(hex_rgb(state_style(state)[0]))).all(axis=-1).sum()
            out[(lane.rank, lane.lane, state)] = hit / lane.height * drawing.column_s
    return out


def _truth(timeline, rank: int, t0: float, t1: float) -> dict[tuple[str, str], float]:
    """Per (lane, state): seconds from the timeline, by interval arithmetic. An idle instant
    waits for what :func:`simcluster.metrics.waits.causal_waits` charges it to where a wait
    segment covers it, else for the first busy class; a lane's class is exposed where the
    compute waits on it."""
    rows = timeline[(timeline["rank"] == rank)]
    clip = [(t0, t1)]
    comp = rows[rows["stream"] == "compute"]
    out: dict[tuple[str, str], float] = {}
    for phase in ("forward", "recompute", "backward", "weight_grad", "optimizer"):
        sel = comp[comp["phase"] == phase]
        out[("compute", phase)] = measure(intersect(merge(zip(sel["start_s"], sel["end_s"])), clip))
    busy = intersect(merge(zip(comp["start_s"], comp["end_s"])), clip)
    idle = subtract(clip, busy)
    comm = rows[rows["stream"] != "compute"]
    classes = [comm_class(str(s), str(p), str(t)) for s, p, t in zip(comm["stream"], comm["phase"], comm["task"])]
    order = ("tp", "cp", "pp", "embedding", "zero", "dp")
    waits = causal_waits(timeline[timeline["rank"] >= 0])
    caused: dict[str, list] = {}
    if waits is not None:
        ws, we, wc = waits.of(rank)
        for s, e, c in zip(ws, we, wc):
            caused.setdefault(WAIT_CLASSES[int(c)], []).append((float(s), float(e)))
    waiting_on = {c: intersect(idle, merge(iv)) for c, iv in caused.items()}
    waiting = subtract(idle, merge([i for iv in caused.values() for i in iv]))
    for cls in order:
        mine = [(s, e) for (s, e), c in zip(zip(comm["start_s"], comm["end_s"]), classes) if c == cls]
        u = intersect(merge(mine), clip)
        waiting_on[cls] = merge(waiting_on.get(cls, []) + intersect(waiting, u))
        waiting = subtract(waiting, u)
    for cls in order:
        mine = [(s, e) for (s, e), c in zip(zip(comm["start_s"], comm["end_s"]), classes) if c == cls]
        out[("compute", f"wait_{cls}")] = measure(waiting_on[cls])
        if not mine:
            continue
        u = intersect(merge(mine), clip)
        # a lane draws each class over the part earlier classes of the lane left free, exposed first
        lane = [c for c in order if lane_of(c) == lane_of(cls)]
        exposed_before = merge([i for c in lane[:lane.index(cls)] for i in _lane_time(comm, classes, c, clip, waiting_on[c])])
        exposed = subtract(intersect(u, waiting_on[cls]), exposed_before)
        out[(lane_of(cls), f"{cls}_exposed")] = measure(exposed)
        taken = merge([i for c in lane for i in _lane_time(comm, classes, c, clip, waiting_on[c])]
                      + [i for c in lane[:lane.index(cls)] for i in _lane_time(comm, classes, c, clip, None)])
        out[(lane_of(cls), f"{cls}_overlapped")] = measure(subtract(u, taken))
    out[("compute", "bubble")] = measure(merge(waiting + waiting_on.get("bubble", []) + waiting_on.get("other", [])))
    return out


def _lane_time(comm, classes, cls, clip, waiting):
    """Where class ``cls`` runs (within ``waiting`` when given: where it is exposed)."""
    u = intersect(merge([(s, e) for (s, e), c in zip(zip(comm["start_s"], comm["end_s"]), classes) if c == cls]), clip)
    return u if waiting is None else intersect(u, waiting)


def _check(png: Path, drawing, timeline) -> int:
    drawn = _drawn_seconds(png, drawing)
    checked = 0
    for rank in {lane.rank for lane in drawing.lanes}:
        for (lane, state), seconds in _truth(timeline, rank, drawing.t0, drawing.t1).items():
            got = drawn.get((rank, lane, state), 0.0)
            assert abs(got - seconds) <= drawing.column_s, (rank, lane, state, got, seconds, drawing.column_s)
            checked += seconds > 0
    return checked


def test_synthetic_areas(tmp_path):
    tl = make_timeline()
    drawing = draw_gantt(tmp_path / "g.png", tl, make_summary(tl), make_config(), make_details())
    assert _check(tmp_path / "g.png", drawing, tl) >= 20
    assert drawing.ranks_drawn == drawing.ranks_total == 4


@pytest.fixture(scope="module")
def pp4_recompute():
    spec = load_workload(TOY, overrides=["parallelism.pipeline=4", "parallelism.tensor=2", "parallelism.data=1",
                                         "training.global_batch=16", "training.micro_batch=1", "training.recompute=full"])
    out = simulate_workload(spec)
    return out.result.timeline, out.summary, spec.resolved_dict(), out.details


def test_real_areas_and_the_breakdown(tmp_path, pp4_recompute):
    """A real run: every state's area is its time, and the idle causes add up to details.json's breakdown."""
    tl, summary, config, details = pp4_recompute
    drawing = draw_gantt(tmp_path / "g.png", tl, summary, config, details)
    assert _check(tmp_path / "g.png", drawing, tl) >= 30
    drawn = _drawn_seconds(tmp_path / "g.png", drawing)
    by_stage = {b["stage"]: b for b in details["breakdown"]}
    for info in details["ranks"]:
        tot = {state: sec for (rank, lane, state), sec in drawn.items() if rank == info["rank"] and lane == "compute"}
        buckets = summary_buckets(tot)
        for key in ("compute", "recompute", "exposed_tp_comm", "exposed_pp_comm", "exposed_dp_comm", "bubble",
                    "optimizer"):
            assert abs(buckets[key] - by_stage[info["stage"]][key]) <= 2 * drawing.column_s, (info, key)
    assert any(s == "recompute" and v > 0 for (_, _, s), v in drawn.items())


def test_window_areas(tmp_path, pp4_recompute):
    tl, summary, config, details = pp4_recompute
    T = summary["iteration_time_s"]
    drawing = draw_gantt(tmp_path / "w.png", tl, summary, config, details, window=(0.3 * T, 0.45 * T))
    assert drawing.t0 == pytest.approx(0.3 * T) and drawing.t1 == pytest.approx(0.45 * T)
    assert _check(tmp_path / "w.png", drawing, tl) >= 10


def test_many_gpus_are_sampled_and_said(tmp_path):
    tl = make_timeline(p=12, m=16, tp=2)
    details = make_details(p=12, tp=2, t_iter=float(tl["end_s"].max()))
    drawing = draw_gantt(tmp_path / "g.png", tl, make_summary(tl), {"name": "many"}, details)
    assert drawing.ranks_total == 24 and drawing.ranks_drawn == 16
    stages = sorted({int(r) // 2 for r in {lane.rank for lane in drawing.lanes}})
    assert stages[0] == 0 and stages[-1] == 11
    _check(tmp_path / "g.png", drawing, tl)
