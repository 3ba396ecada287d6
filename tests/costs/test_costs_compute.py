"""ComputeModel: roofline contract, GEMM curve, bandwidth kernels, attention, other devices."""

import pytest

from simcluster.costs import efficiency as eff
from simcluster.costs.compute import ComputeModel
from simcluster.topology.devices import DEVICES

H100, A100 = DEVICES.get("h100"), DEVICES.get("a100-80gb")


@pytest.fixture
def h100():
    return ComputeModel(H100)


def test_roofline_is_the_max_of_compute_and_memory(h100):
    assert h100.roofline_time(989e12, 0) == pytest.approx(1.0)
    assert h100.roofline_time(0, 3.35e12) == pytest.approx(1.0)
    assert h100.roofline_time(989e12, 3.35e12 * 2) == pytest.approx(2.0)
    assert h100.roofline_time(989e12, 0, efficiency=0.5) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        h100.roofline_time(1.0, 1.0, efficiency=1.5)


def test_big_square_gemm_approaches_but_never_exceeds_peak(h100):
    effs = [h100.gemm_efficiency(n, n, n) for n in (1024, 2048, 4096, 8192, 16384, 65536)]
    assert effs == sorted(effs)
    assert 0.65 < effs[3] < 1.0  # 8192³: measured 750-800 TFLOP/s on this card
    assert effs[-1] <= eff.GEMM_EFF_MAX < 1.0
    assert effs[-1] > 0.95 * eff.GEMM_EFF_MAX
    for n in (128, 8192, 65536):
        flops = 2.0 * n**3
        assert h100.gemm_time(n, n, n) >= h100.roofline_time(flops, h100.gemm_bytes(n, n, n))


def test_gemm_efficiency_is_consistent_with_time(h100):
    for m, n, k in ((512, 1024, 128), (2048, 6144, 12288), (8192, 8192, 8192)):
        e = h100.gemm_efficiency(m, n, k)
        assert h100.roofline_time(2.0 * m * n * k, 0, e) == pytest.approx(h100.gemm_time(m, n, k))


def test_small_gemm_sits_on_the_launch_floor(h100):
    assert h100.gemm_time(16, 16, 16) == pytest.approx(eff.LAUNCH_FLOOR_S, rel=1e-3)
    assert h100.kernel_time(0.0) == pytest.approx(eff.LAUNCH_FLOOR_S)


def test_skinny_gemm_is_bandwidth_bound(h100):
    bare = ComputeModel(H100, kernel_overhead_s=0.0)
    m, n, k = 1, 12288, 12288
    assert bare.gemm_time(m, n, k) == pytest.approx(bare.gemm_bytes(m, n, k) / (3.35e12 * eff.bandwidth_fraction("copy")))


def test_memory_time_is_linear_in_bytes():
    bare = ComputeModel(H100, kernel_overhead_s=0.0)
    for nbytes in (1e3, 1e6, 1e9):
        assert bare.memory_time(3 * nbytes) == pytest.approx(3 * bare.memory_time(nbytes), rel=1e-12)
    assert bare.memory_time(1e9, "copy") == pytest.approx(1e9 / (3.35e12 * eff.BANDWIDTH_FRACTION["copy"]))
    h100 = ComputeModel(H100)  # with the launch floor the slope is unchanged for large transfers
    slope = (h100.memory_time(4e9) - h100.memory_time(2e9)) / 2e9
    assert slope == pytest.approx(1 / (3.35e12 * eff.BANDWIDTH_FRACTION["elementwise"]), rel=1e-3)
    assert h100.memory_time(1e9, "layernorm") > h100.memory_time(1e9, "gelu")
    with pytest.raises(KeyError, match="known"):
        h100.memory_time(1e6, "nonsense")


def test_other_devices_scale_with_their_own_peak_and_bandwidth():
    h, a = ComputeModel(H100, kernel_overhead_s=0.0), ComputeModel(A100, kernel_overhead_s=0.0)
    assert a.gemm_time(8192, 8192, 8192) / h.gemm_time(8192, 8192, 8192) == pytest.approx(989 / 312)
    assert a.memory_time(1e9) / h.memory_time(1e9) == pytest.approx(3.35e12 / 2039e9)
    assert a.gemm_efficiency(8192, 8192, 8192) == pytest.approx(h.gemm_efficiency(8192, 8192, 8192))
    # the ridge point (FLOP per byte where compute and bandwidth balance) is each device's own
    assert a.peak_flops / a.memory_bandwidth < h.peak_flops / h.memory_bandwidth


def test_precision_selects_the_peak():
    assert ComputeModel(H100, "fp32").peak_flops == H100.peak_flops_fp32
    assert ComputeModel(H100, "fp16").peak_flops == H100.peak_flops
    fp32 = ComputeModel(H100, "fp32", kernel_overhead_s=0.0)
    bf16 = ComputeModel(H100, "bf16", kernel_overhead_s=0.0)
    assert fp32.gemm_time(8192, 8192, 8192) / bf16.gemm_time(8192, 8192, 8192) == pytest.approx(989 / 67)
    with pytest.raises(ValueError, match="known"):
        ComputeModel(H100, "int4")


def test_attention_flash_and_unfused(h100):
    b, a, s, d = 1, 32, 4096, 128
    causal = h100.attention_flops(b, a, s, d)
    assert causal == 4 * b * a * s * s * d / 2
    assert h100.attention_flops(b, a, s, d, causal=False) == 2 * causal
    assert h100.attention_flops(b, a, s, d, backward=True) == 2.5 * causal
    assert h100.attention_flops(b, a, s, d, flash=False, backward=True) == 2 * 4 * b * a * s * s * d
    fwd, bwd = h100.attention_time(b, a, s, d), h100.attention_time(b, a, s, d, backward=True)
    assert 0.287e-3 * 0.85 < fwd < 0.287e-3 * 1.15  # measured 0.2879 ms
    assert bwd > fwd
    unfused = h100.attention_time(b, a, s, d, flash=False)
    assert unfused > fwd
    assert h100.attention_time(b, a, s, d, flash=False, backward=True) > unfused
    # unfused = two batched GEMMs + softmax and dropout over b·a·s² scores
    scores = b * a * s * s
    expect = (h100.gemm_time(s, s, d, b * a) + h100.gemm_time(s, d, s, b * a)
              + h100.memory_time(4 * scores, "softmax") + h100.memory_time(5 * scores, "dropout"))
    assert unfused == pytest.approx(expect)


def test_flash_efficiency_is_capped():
    assert eff.flash_efficiency(64, 128, 65536, 256) == eff.FLASH_FWD_CAP
    assert eff.flash_efficiency(64, 128, 65536, 256, backward=True) == eff.FLASH_BWD_CAP


def test_kernel_overhead_is_configurable():
    assert ComputeModel(H100, kernel_overhead_s=5e-6).kernel_time(0.0) == pytest.approx(5e-6)
    with pytest.raises(ValueError):
        ComputeModel(H100, kernel_overhead_s=-1.0)
