"""Error bars (simcluster.metrics.uncertainty): the propagation's closed forms, the σ recomputed
from their sources, summary.json's four intervals and validate-published's coverage."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

import simcluster
from simcluster.metrics import error_bars as eb
from simcluster.metrics import uncertainty as unc
from simcluster.validation.runner import with_interval

INTERVAL_KEYS = ("iteration_time_s", "tokens_per_s", "mfu", "peak_memory_bytes")


@pytest.fixture(scope="module")
def toy() -> simcluster.api.Result:
    return simcluster.simulate(simcluster.load("workloads/toy-8gpu.yaml"))


@pytest.mark.parametrize("level, z", [(0.8, 1.2815515655446004), (0.9, 1.6448536269514722),
                                      (0.95, 1.959963984540054), (0.5, 0.6744897501960817)])
def test_z_is_the_two_sided_normal_quantile(level, z):
    assert eb.z_score(level) == pytest.approx(z, rel=1e-12)
    assert eb.z_score() == pytest.approx(1.2816, abs=5e-5)  # the default level, 80 %


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, 1.5])
def test_a_level_outside_zero_one_is_refused(level):
    with pytest.raises(ValueError):
        eb.z_score(level)


def test_zero_sigma_gives_the_point_itself():
    assert eb.interval(29.8, 0.0) == [29.8, 29.8]
    assert eb.inverted(1000.0, 2.0, [2.0, 2.0]) == [1000.0, 1000.0]
    assert eb.combined_sigma([eb.Part("compute", 1.0, 0.0, "compute")]) == 0.0


def test_the_interval_holds_the_point_widens_with_sigma_and_level():
    prev = 0.0
    for sigma in (0.01, 0.05, 0.1, 0.3):
        lo, hi = eb.interval(10.0, sigma)
        assert lo < 10.0 < hi
        assert lo * hi == pytest.approx(100.0)  # log-symmetric: the point is the geometric mean
        assert hi / lo == pytest.approx(math.exp(2 * 1.2815515655446004 * sigma))
        assert hi - lo > prev
        prev = hi - lo
    w80 = eb.interval(10.0, 0.1, 0.8)
    w95 = eb.interval(10.0, 0.1, 0.95)
    assert w95[0] < w80[0] and w95[1] > w80[1]


def test_correlated_parts_add_their_sigma_and_independent_groups_add_in_quadrature():
    a, b = 3.0, 1.0  # seconds; weights 0.75 and 0.25
    same = [eb.Part("compute", a, 0.08, "compute"), eb.Part("bubble", b, 0.04, "compute")]
    assert eb.combined_sigma(same) == pytest.approx(0.75 * 0.08 + 0.25 * 0.04)
    apart = [eb.Part("compute", a, 0.08, "compute"), eb.Part("exposed_dp_comm", b, 0.04, "comm-dp")]
    assert eb.combined_sigma(apart) == pytest.approx(math.hypot(0.75 * 0.08, 0.25 * 0.04))
    assert eb.combined_sigma(apart, 0.03) == pytest.approx(math.sqrt((0.75 * 0.08) ** 2 + (0.25 * 0.04) ** 2
                                                                      + 0.03 ** 2))
    # all of T in one part: its σ; splitting a part in two of the same group changes nothing
    assert eb.combined_sigma([eb.Part("compute", 2.0, 0.07, "compute")]) == pytest.approx(0.07)
    split = [eb.Part("compute", 1.0, 0.07, "compute"), eb.Part("recompute", 1.0, 0.07, "compute")]
    assert eb.combined_sigma(split) == pytest.approx(0.07)


def test_the_kernel_sigmas_are_the_calibration_residuals():
    """The constants are what the H100 tables give (recomputed, not typed in): GEMM 0.0533 (the fit
    docstring's median 5.3 % is a different statistic of the same residuals), attention, memory."""
    got = unc.calibration_sigmas()
    assert got == pytest.approx(unc.CURVE_SIGMAS, abs=5e-4)


def test_source_sigmas_follow_from_their_tables():
    # MAMF table, NVIDIA rows other than H100, ln(e / 0.803): RMS of six logs
    nvidia = [0.869, 0.838, 0.811, 0.786, 0.776, 0.729]
    want = math.sqrt(sum(math.log(e / 0.803) ** 2 for e in nvidia) / len(nvidia))
    assert unc.transfer_sigma("nvidia") == pytest.approx(want)
    assert unc.transfer_sigma("google") > unc.transfer_sigma("nvidia")  # every vendor's rows scatter more
    assert unc.link_sigma(False) > unc.link_sigma(True)
    assert unc.memory_sigma() == pytest.approx(math.log(1.15))
    # measured stacks: never below the kernel-library version's σ (PyTorch's held-out rows imply 0 since session 17)
    assert unc.stack_sigma("deepspeed") > unc.stack_sigma("pytorch") >= unc.stack_sigma("megatron") > 0


def test_a_device_without_its_own_calibration_gets_a_wider_sigma():
    own = unc.compute_sigma("h100")
    assert own == pytest.approx(max(unc.CURVE_SIGMAS.values()))
    assert unc.compute_sigma("a100-80gb") == pytest.approx(math.hypot(own, unc.transfer_sigma("nvidia")))
    assert unc.compute_sigma("tpu-v4", "google") > unc.compute_sigma("a100-80gb") > own
    # a per-device calibration (issue 12 item 2) plugs in with its own σ, transfer included
    record = unc.DeviceCalibration(measured=False, sigma_gemm=0.1, sigma_attention=0.3, sigma_memory=0.05)
    assert unc.compute_sigma("a100-80gb", calibration=record) == pytest.approx(0.3)


def test_links_count_as_calibrated_only_where_every_link_was():
    a100 = ["a100-80gb"] * 2
    assert unc.links_calibrated(a100, "nvswitch", "fat-tree", 25e9, 16)  # HDR
    assert unc.links_calibrated(["h100"], "nvswitch", "rail-optimized", 50e9, 2)  # NDR
    assert unc.links_calibrated(["h100"], "nvswitch", "none", 0.0, 1)  # one node: no NIC
    assert not unc.links_calibrated(["v100"], "nvswitch", "fat-tree", 12.5e9, 4)  # NVLink2: set, not fitted
    assert not unc.links_calibrated(a100, "pcie", "fat-tree", 25e9, 4)
    assert not unc.links_calibrated(a100, "nvswitch", "fat-tree", 10e9, 4)  # an 80 Gb/s NIC: no NCCL figure
    assert unc.links_calibrated(a100, "nvswitch", "fat-tree", 10e9, 4, nic_measured=True)  # unless measured there
    assert not unc.links_calibrated(["v100"], "nvswitch", "fat-tree", 10e9, 4, nic_measured=True)  # NVLink2 still set
    assert not unc.links_calibrated(["tpu-v4"], "torus", "torus", 0.0, 64)
    assert not unc.links_calibrated(a100, "nvswitch", "fat-tree", 25e9, 4, explicit=True)


def test_summary_has_the_four_intervals_around_their_figures(toy, tmp_path):
    toy.write(tmp_path / "run")
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["interval_level"] == 0.8
    for key in INTERVAL_KEYS:
        low, high = s[f"{key}_interval"]
        assert 0 < low < s[key] < high, key


def test_inverted_figures_take_the_time_interval_inverted(toy):
    s = toy.summary
    t_lo, t_hi = s["iteration_time_s_interval"]
    tokens = s["tokens_per_s"] * s["iteration_time_s"]  # tokens per iteration
    assert s["tokens_per_s_interval"] == pytest.approx([tokens / t_hi, tokens / t_lo], rel=1e-12)
    mfu_x_t = s["mfu"] * s["iteration_time_s"]
    assert s["mfu_interval"] == pytest.approx([mfu_x_t / t_hi, mfu_x_t / t_lo], rel=1e-12)
    lo, hi = eb.metric_interval("hardware_tflops_per_gpu", s["hardware_tflops_per_gpu"], s)
    assert lo == pytest.approx(s["hardware_tflops_per_gpu"] * s["iteration_time_s"] / t_hi)
    assert hi == pytest.approx(s["hardware_tflops_per_gpu"] * s["iteration_time_s"] / t_lo)


def test_the_time_sigma_is_what_the_parts_give(toy):
    u = toy.details["uncertainty"]
    parts = [eb.Part(p["part"], p["seconds"], p["sigma"], p["group"]) for p in u["parts"]]
    assert sum(p.seconds for p in parts) == pytest.approx(toy.summary["iteration_time_s"], rel=1e-6)
    assert u["iteration_time_sigma"] == pytest.approx(eb.combined_sigma(parts, u["stack_sigma"]))
    lo, hi = toy.summary["iteration_time_s_interval"]
    assert math.log(hi / lo) / 2 == pytest.approx(eb.z_score() * u["iteration_time_sigma"])
    assert not u["calibrated_device"]  # a100-80gb: H100 curves transferred


def test_coverage_on_a_synthetic_set():
    rows = [{"metric": "iteration_time_s", "published": p, "predicted": 10.0} for p in (9.0, 10.5, 12.0, 15.0)]
    summary = {"iteration_time_s": 10.0, "iteration_time_s_interval": [8.5, 12.0]}
    got = [with_interval(r, summary) for r in rows]
    assert [r["inside"] for r in got] == [True, True, True, False]  # the ends count as inside
    assert all(r["interval"] == [8.5, 12.0] for r in got)
    assert eb.coverage(got) == 0.75
    assert eb.coverage([]) == 0.0
    tf = with_interval({"metric": "model_tflops_per_gpu", "published": 100.0, "predicted": 110.0}, summary)
    assert tf["interval"] == pytest.approx([110.0 * 10 / 12, 110.0 * 10 / 8.5]) and tf["inside"]


def test_a_sustained_clock_factor_widens_the_compute_sigma():
    """The H100's sustained clock (1,830 of the calibration's 1,980 MHz) adds |ln r| / √12 in quadrature (a uniform
    spread between the two clocks); the A100's record (r = 1) adds nothing."""
    from simcluster.costs.devices import H100_SUSTAINED_CLOCK_RATIO, device_calibration
    h100, a100 = device_calibration("h100"), device_calibration("a100-80gb")
    r = H100_SUSTAINED_CLOCK_RATIO
    assert unc.clock_sigma(r) == pytest.approx(math.log(1980 / 1830) / math.sqrt(12))
    kernels = max(unc.CURVE_SIGMAS.values())
    assert unc.compute_sigma("h100", calibration=h100, reference=h100) == pytest.approx(
        math.hypot(kernels, unc.clock_sigma(r)))
    extra = math.sqrt(a100.sigma_gemm ** 2 - h100.sigma_gemm ** 2)
    attention = math.sqrt(a100.sigma_attention ** 2 - h100.sigma_attention ** 2)  # no shares: all of the time
    assert unc.compute_sigma("a100-80gb", calibration=a100, reference=h100) == pytest.approx(
        math.hypot(kernels, extra, attention))


@pytest.mark.parametrize("device, kernel", [("h100", "fa2"), ("h100", "fa1"), ("h100", "triton"),
                                            ("a100-80gb", None), ("a100-80gb", "triton")])
def test_a_flash_curve_published_as_a_ratio_widens_the_attention_share_only(device, kernel):
    """A flash curve other than the H100's calibrated one carries its ratio's σ (costs.attention_kernels,
    docs/constants.md); it adds √(σ_att² − σ_att,H100²) times the attention's share of the compute seconds, in
    quadrature. The H100's own kernel (fa3) adds nothing; a run without attention time adds nothing."""
    from simcluster.costs.attention_kernels import with_attention_kernel
    from simcluster.costs.devices import device_calibration
    h100 = device_calibration("h100")
    cal = with_attention_kernel(device_calibration(device), kernel)
    shares = {"gemm": 0.8, "attention": 0.15, "memory": 0.05}
    base = unc.compute_sigma(device, calibration=replace(cal, attention_fwd=h100.attention_fwd,
                                                         attention_bwd=h100.attention_bwd),
                             reference=h100, shares=shares)
    extra = 0.15 * math.sqrt(cal.sigma_attention ** 2 - h100.sigma_attention ** 2)
    assert extra > 0.01
    assert unc.compute_sigma(device, calibration=cal, reference=h100, shares=shares) == pytest.approx(
        math.hypot(base, extra))
    no_attention = {"gemm": 0.9, "attention": 0.0, "memory": 0.1}
    assert unc.compute_sigma(device, calibration=cal, reference=h100, shares=no_attention) == pytest.approx(
        unc.compute_sigma(device, calibration=replace(cal, attention_fwd=h100.attention_fwd,
                                                      attention_bwd=h100.attention_bwd),
                          reference=h100, shares=no_attention))
    assert unc.compute_sigma("h100", calibration=h100, reference=h100, shares=shares) == pytest.approx(
        math.hypot(unc.kernel_sigma(shares), unc.clock_sigma(h100.clock_ratio)))
    assert unc.compute_sigma(device, calibration=cal, reference=h100, shares=shares, flash=False) == pytest.approx(
        base)  # unfused attention runs on the GEMM and memory-bound curves


def test_a_bracketed_peak_widens_the_tensor_core_share():
    """``cluster.device.peak_flops_range`` [low, high]: ln(high/low)/√12 (a uniform spread, the clock's convention)
    on the GEMM and attention share of the compute seconds, in quadrature; memory-bound seconds keep the HBM's
    speed; no range, no change."""
    from simcluster.costs.devices import device_calibration
    h100 = device_calibration("h100")
    rng = (835e12, 989e12)
    assert unc.peak_sigma(rng) == pytest.approx(math.log(989 / 835) / math.sqrt(12))
    assert unc.peak_sigma(None) == 0.0
    shares = {"gemm": 0.7, "attention": 0.2, "memory": 0.1}
    base = unc.compute_sigma("h100", calibration=h100, reference=h100, shares=shares)
    assert unc.compute_sigma("h100", calibration=h100, reference=h100, shares=shares, peak_range=rng) == \
        pytest.approx(math.hypot(base, 0.9 * unc.peak_sigma(rng)))
    memory_only = {"gemm": 0.0, "attention": 0.0, "memory": 1.0}
    assert unc.compute_sigma("h100", calibration=h100, reference=h100, shares=memory_only, peak_range=rng) == \
        pytest.approx(unc.compute_sigma("h100", calibration=h100, reference=h100, shares=memory_only))


def test_a_run_on_a_bracketed_peak_has_a_wider_interval_and_the_same_figure(tmp_path):
    """The torchtitan H100 row's 500 W part (peak 909 within 835–989 TFLOP/s): the figure is the same with or
    without the range, the interval wider; a range that does not hold the peak is a one-line error."""
    path = "simcluster/data/validation/stacks/torchtitan-llama2-7b-h100.yaml"
    with_range = simcluster.simulate(simcluster.load(path))
    without = simcluster.simulate(simcluster.load(path, overrides=["cluster.device.peak_flops_range=null"]))
    a, b = with_range.summary, without.summary
    assert a["iteration_time_s"] == b["iteration_time_s"]
    wa = math.log(a["iteration_time_s_interval"][1] / a["iteration_time_s_interval"][0])
    wb = math.log(b["iteration_time_s_interval"][1] / b["iteration_time_s_interval"][0])
    assert wa > wb * 1.1
    from simcluster.errors import SpecError
    with pytest.raises(SpecError, match="peak_flops_range must be"):
        simcluster.load(path, overrides=["cluster.device.peak_flops_range=[935 TFLOP/s, 989 TFLOP/s]"])
