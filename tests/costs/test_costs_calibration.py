"""The fitted model against the H100 calibration tables (simcluster/data/calibration)."""

import numpy as np
import pytest

from simcluster.costs import efficiency as eff
from simcluster.costs.calibration import (
    H100, fit_bandwidth, fit_flash, fit_gemm, flash_errors, gemm_errors, gemm_table, load_csv,
)
from simcluster.costs.compute import ComputeModel

GEMM_MEDIAN_BOUND = 0.08  # measured 5.3 %
GEMM_P90_BOUND = 0.20  # measured 14.4 %
FLASH_BOUND = 0.15  # measured max 6.8 % forward, 12.1 % backward


def test_package_ships_the_tables():
    assert len(load_csv("h100_gemm_bf16.csv")) == 720
    assert len(load_csv("h100_memory_bound_bf16.csv")) == 7
    assert len(load_csv("h100_flash_attention_bf16.csv")) == 6


def test_pass_shapes_keep_flops():
    d = gemm_table()
    assert np.array_equal(2 * d.m * d.n * d.k, d.flops)


def test_gemm_fit_error_within_bound():
    e = gemm_errors(ComputeModel(H100, sustained=False))
    assert np.median(e) <= GEMM_MEDIAN_BOUND
    assert np.percentile(e, 90) <= GEMM_P90_BOUND


def test_error_bound_can_fail():
    """The ideal roofline (no launch floor, 100 % of peak) must miss the bound: the test discriminates."""
    ideal = ComputeModel(H100, kernel_overhead_s=0.0, sustained=False)
    d = gemm_table()
    pred = [ideal.roofline_time(2 * r.m * r.n * r.k, ideal.gemm_bytes(r.m, r.n, r.k)) for r in d.itertuples()]
    e = np.abs(np.asarray(pred) / d.time_s - 1)
    assert np.median(e) > GEMM_MEDIAN_BOUND


def test_large_gemms_fit_tighter():
    d = gemm_table()
    e = gemm_errors(ComputeModel(H100, sustained=False))
    assert np.median(e[d.flops.to_numpy() > 1e11]) <= 0.06


def test_flash_attention_within_bound():
    fwd, bwd = flash_errors(ComputeModel(H100, sustained=False))
    assert fwd.max() <= FLASH_BOUND
    assert bwd.max() <= FLASH_BOUND


def test_memory_bound_rows_within_bound():
    model = ComputeModel(H100, sustained=False)
    d = load_csv("h100_memory_bound_bf16.csv")
    pred = np.array([model.memory_time(r.bytes_moved, r.kernel) for r in d.itertuples()])
    e = np.abs(pred / (d.ms_median.to_numpy() * 1e-3) - 1)
    assert e.max() <= 0.10  # measured max 9.8 % (the smallest layernorm)


def test_refit_reproduces_the_constants():
    g = fit_gemm()
    assert g["floor_s"] == pytest.approx(eff.LAUNCH_FLOOR_S, rel=0.01)
    assert g["softness"] == pytest.approx(eff.LAUNCH_SOFTNESS, rel=0.01)
    assert g["e_max"] == pytest.approx(eff.GEMM_EFF_MAX, rel=0.01)
    assert g["x_half"] == pytest.approx(eff.GEMM_SIZE_HALF, rel=0.02)
    bw = fit_bandwidth()
    for kind, frac in eff.BANDWIDTH_FRACTION.items():
        assert bw[kind] == pytest.approx(frac, abs=0.005)
    fl = fit_flash()
    for which, coef, cap in (("fwd", eff.FLASH_FWD_COEF, eff.FLASH_FWD_CAP),
                             ("bwd", eff.FLASH_BWD_COEF, eff.FLASH_BWD_CAP)):
        assert np.allclose(fl[which][0], coef, atol=2e-3)
        assert fl[which][1] == pytest.approx(cap, abs=2e-3)
