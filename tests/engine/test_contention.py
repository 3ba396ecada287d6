"""Compute slowed while communication shares its GPU (simcluster.costs.contention)."""

from __future__ import annotations

import pytest

from simcluster.collectives.transfer import Transfer
from simcluster.engine.simulate import simulate
from simcluster.lowering.task import TaskGraph


class Links:
    """One link of 1 GB/s, no latency."""

    link_bandwidth = [1e9]
    link_names = ["l0"]
    link_class = ["test"]


def _graph(slowdown: float, comm_bytes: float, compute_s: float = 1.0, comm_rank: int = 0) -> TaskGraph:
    tg = TaskGraph()
    tg.add(kind="compute", name="gemm", ranks=(0,), stream="compute", duration=compute_s, deps=())
    tg.add(kind="collective", name="dp", ranks=(comm_rank,), stream="dp", deps=(),
           transfers=(Transfer(links=(0,), weights=(1.0,), nbytes=comm_bytes, latency=0.0),), nbytes=comm_bytes)
    tg.meta["overlap_slowdown"] = slowdown
    return tg


def test_overlapped_part_runs_slower():
    """1 s of compute beside 0.5 s of communication: 0.5 s at 1 − s, the rest at full speed,
    so it ends at 0.5 + (1 − 0.5·(1 − s))."""
    s = 0.189
    res = simulate(_graph(s, 0.5e9), Links())
    assert res.end[1] == pytest.approx(0.5, rel=1e-12)
    assert res.end[0] == pytest.approx(0.5 + (1.0 - 0.5 * (1 - s)), rel=1e-12)


def test_compute_inside_a_long_transfer_stretches_by_the_rate():
    s = 0.25
    res = simulate(_graph(s, 5e9), Links())
    assert res.end[0] == pytest.approx(1.0 / (1 - s), rel=1e-12)


def test_no_slowdown_without_contention_or_on_another_gpu():
    assert simulate(_graph(0.0, 5e9), Links()).end[0] == pytest.approx(1.0, rel=1e-15)
    assert simulate(_graph(0.3, 5e9, comm_rank=1), Links()).end[0] == pytest.approx(1.0, rel=1e-15)


def test_overlapped_gradient_reduction_costs_at_most_s_of_its_time(tmp_path):
    """Data-parallel buckets overlap the backward: contention adds at most s × their busy time."""
    from helpers_spec import make_spec
    from simcluster.costs.contention import OVERLAP_COMPUTE_SLOWDOWN as S
    from simcluster.lowering.lower import LoweringOptions
    from simcluster.run import simulate_workload

    spec = make_spec(tmp_path, "parallelism.data=8", "training.global_batch=16", "model.layers=8")
    on = simulate_workload(spec)
    off = simulate_workload(spec, LoweringOptions(contention=False))
    tl = off.result.timeline
    comm = tl[(tl["rank"] == 0) & (tl["phase"] == "dp_comm")]
    busy = float((comm["end_s"] - comm["start_s"]).sum())
    extra = on.summary["iteration_time_s"] - off.summary["iteration_time_s"]
    assert busy > 0 and 0 < extra <= S / (1 - S) * busy + 1e-12
