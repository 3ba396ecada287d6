"""Plot helpers: interval arithmetic, the representative subset, drawing many GPUs."""

from __future__ import annotations

import numpy as np

from simcluster.reporting.gantt import draw_gantt, select_ranks
from simcluster.reporting.style import RankInfo
from simcluster.reporting.utilization import (bytes_per_bin, busy_fraction_per_bin, draw_utilization, merge_intervals,
                                              utilization_panels)

from reporting_synthetic import make_details, make_summary, make_timeline


def test_merge_intervals():
    s, e = merge_intervals(np.array([3.0, 0.0, 1.0, 5.0]), np.array([4.0, 2.0, 1.5, 6.0]))
    assert s.tolist() == [0.0, 3.0, 5.0] and e.tolist() == [2.0, 4.0, 6.0]


def test_busy_fraction_is_time_weighted():
    edges = np.array([0.0, 1.0, 2.0, 3.0])
    frac = busy_fraction_per_bin(np.array([0.5, 0.75, 2.0]), np.array([1.5, 1.0, 2.25]), edges)
    assert np.allclose(frac, [0.5, 0.5, 0.25])


def test_bytes_per_bin_conserves_bytes():
    edges = np.linspace(0, 1, 11)
    b = bytes_per_bin(np.array([0.05, 0.35, 0.5]), np.array([0.25, 0.35, 0.95]), np.array([100.0, 7.0, 50.0]), edges)
    assert np.isclose(b.sum(), 157.0)
    assert np.isclose(b[0], 25.0) and np.isclose(b[1], 50.0) and np.isclose(b[3], 7.0)


def test_select_ranks_keeps_first_and_last_stage():
    infos = [RankInfo(r, r // 4, 1, f"r{r}") for r in range(64)]  # 16 stages × 4 ranks
    chosen = select_ranks(infos, 16)
    assert len(chosen) == 16
    assert {i.stage for i in chosen} == set(range(16))
    infos = [RankInfo(r, r, 1, f"r{r}") for r in range(40)]  # 40 stages
    chosen = select_ranks(infos, 16)
    assert len(chosen) == 16 and chosen[0].rank == 0 and chosen[-1].rank == 39
    infos = [RankInfo(r, r // 20, 1, f"r{r}") for r in range(40)]  # 2 stages × 20
    chosen = select_ranks(infos, 16)
    assert len(chosen) == 16 and {i.stage for i in chosen} == {0, 1}


def test_many_gpus_draw(tmp_path):
    tl = make_timeline(p=12, m=16, tp=2)  # 24 simulated GPUs: a subset is drawn
    details = make_details(p=12, tp=2, t_iter=float(tl["end_s"].max()))
    draw_gantt(tmp_path / "g.png", tl, make_summary(tl), {"name": "many"}, details)
    draw_utilization(tmp_path / "u.png", tl, make_summary(tl), {"name": "many"}, details)
    assert (tmp_path / "g.png").stat().st_size > 0 and (tmp_path / "u.png").stat().st_size > 0


def test_panels_with_nothing_to_show_are_left_out():
    """One GPU: the heat map and the breakdown only (no link carried anything, no pipeline to have a bubble);
    data parallel on one node: the links too; a pipeline: the bubble as well; no breakdown: neither."""
    one = {"parallelism": {"pipeline": 1}}
    assert utilization_panels(False, 0, 1, one) == ["heat", "breakdown"]
    assert utilization_panels(True, 8, 1, one) == ["heat", "links", "hot", "breakdown"]
    assert utilization_panels(True, 12, 16, {"parallelism": {"pipeline": 16}}) == [
        "heat", "links", "hot", "breakdown", "bubble"]
    assert utilization_panels(True, 0, 0, None) == ["heat", "links"]


def test_one_gpu_utilization_draws(tmp_path):
    """A timeline with compute only (one GPU, no link intervals) draws without empty panels."""
    tl = make_timeline(p=1, m=2, tp=1)
    tl = tl[tl["rank"] == tl["rank"].min()]
    tl = tl[tl["stream"] == "compute"]
    details = {"breakdown": [{"stage": 0, "compute": float(tl["end_s"].max()), "bubble": 0.0}]}
    draw_utilization(tmp_path / "u.png", tl, make_summary(tl), {"name": "one", "parallelism": {"pipeline": 1}},
                     details)
    assert (tmp_path / "u.png").stat().st_size > 10_000
