"""Seconds by fitted curve (simcluster.costs.curve_shares, simcluster.plan.costing.curve_shares): what the error
bars weight each curve's σ by."""

from __future__ import annotations

import pytest

import simcluster
from simcluster.costs import calibration as cal
from simcluster.costs.compute import ComputeModel
from simcluster.costs.curve_shares import CURVES, TallyingModel
from simcluster.metrics import uncertainty as unc
from simcluster.plan import build_plan


def test_each_outermost_call_is_counted_once_under_its_curve():
    cm = ComputeModel(cal.H100)
    tally = TallyingModel.of(cm)
    g = tally.gemm_time(4096, 4096, 4096)
    m = tally.memory_time(1e9, "copy")
    a = tally.attention_time(1, 32, 4096, 128)
    assert (g, m, a) == (cm.gemm_time(4096, 4096, 4096), cm.memory_time(1e9, "copy"), cm.attention_time(1, 32, 4096, 128))
    assert tally.seconds == pytest.approx({"gemm": g, "attention": a, "memory": m})
    assert sum(tally.shares().values()) == pytest.approx(1.0)


def test_a_kernel_inside_another_is_not_counted_twice():
    # unfused attention runs batched GEMMs and softmax passes inside attention_time; an FP8 GEMM its quantizes
    tally = TallyingModel.of(ComputeModel(cal.H100))
    a = tally.attention_time(1, 32, 2048, 128, flash=False)
    assert tally.seconds == pytest.approx({"gemm": 0.0, "attention": a, "memory": 0.0})
    fp8 = TallyingModel.of(ComputeModel(cal.H100, "fp8"))
    g = fp8.gemm_time(8192, 8192, 8192)
    assert fp8.seconds == pytest.approx({"gemm": g, "attention": 0.0, "memory": 0.0})


def test_no_calls_no_shares():
    assert TallyingModel.of(ComputeModel(cal.H100)).shares() == dict.fromkeys(CURVES, 0.0)


def test_a_plans_shares_sum_to_one_and_grow_with_what_the_layout_runs():
    spec = simcluster.load("workloads/llama3-8b.yaml")
    shares = build_plan(spec).curve_shares()
    assert set(shares) == set(CURVES) and sum(shares.values()) == pytest.approx(1.0)
    assert shares["gemm"] > 0.5  # GEMMs dominate a transformer step (Narayanan et al. 2021 eq. 3)
    longer = build_plan(simcluster.load("workloads/llama3-8b.yaml", ("model.seq_len=32768",))).curve_shares()
    assert longer["attention"] > shares["attention"]  # attention grows as s², the GEMMs as s


def test_the_compute_sigma_is_the_share_weighted_mean_of_the_curves():
    shares = {"gemm": 0.8, "attention": 0.1, "memory": 0.1}
    want = 0.8 * unc.GEMM_SIGMA + 0.1 * unc.ATTENTION_SIGMA + 0.1 * unc.MEMORY_BOUND_SIGMA
    assert unc.kernel_sigma(shares) == pytest.approx(want)
    assert unc.compute_sigma("h100", shares=shares) == pytest.approx(want)
    assert unc.kernel_sigma(None) == unc.kernel_sigma({"gemm": 0.0}) == max(unc.CURVE_SIGMAS.values())
    assert min(unc.CURVE_SIGMAS.values()) <= unc.kernel_sigma(shares) <= max(unc.CURVE_SIGMAS.values())
