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
    """Per (lane, state): seconds from the timeline, by interval arithmetic."""
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
    waiting = idle
    for cls in ("tp", "cp", "pp", "embedding", "zero", "dp"):
        mine = [(s, e) for (s, e), c in zip(zip(comm["start_s"], comm["end_s"]), classes) if c == cls]
        if not mine:
            continue
        u = intersect(merge(mine), clip)
        out[("compute", f"wait_{cls}")] = measure(intersect(waiting, u))
        waiting = subtract(waiting, u)
        # a lane draws each class over the part earlier classes of the lane left free
        taken = [(s, e) for (s, e), c in zip(zip(comm["start_s"], comm["end_s"]), classes)
                 if lane_of(c) == lane_of(cls) and ("tp", "cp", "pp", "embedding", "zero", "dp").index(c)
                 < ("tp", "cp", "pp", "embedding", "zero", "dp").index(cls)]
        free = subtract(u, merge(taken))
        out[(lane_of(cls), f"{cls}_exposed")] = measure(intersect(free, idle))
        out[(lane_of(cls), f"{cls}_overlapped")] = measure(intersect(free, busy))
    out[("compute", "bubble")] = measure(waiting)
    return out


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
