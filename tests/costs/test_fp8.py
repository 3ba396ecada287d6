"""training.precision fp8: FP8 GEMMs with quantization on Hopper, an error elsewhere, the recipe's memory.

Datasheets: H100 SXM 1,979 TFLOP/s dense FP8 (3,958 with sparsity), 989 dense BF16, 3.35 TB/s.
Measurements: [FP8GEMM] H800 FP8 GEMM 8192×8192×16384 at 1,523 TFLOP/s; [MAMF] H100 BF16 best
794.5 / 792.1 TFLOP/s (simcluster.costs.devices.SOURCES).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from simcluster.costs import efficiency as eff
from simcluster.costs.compute import ComputeModel
from simcluster.costs.memory import state_bytes_per_param
from simcluster.topology.devices import DEVICES
from helpers_spec import run_error_line

ROOT = Path(__file__).resolve().parents[2]
H100_FP8_PEAK, H100_HBM = 1979e12, 3.35e12
#: r_fp8 = (1523 / 1979) / (geomean(794.5, 792.1) / 989)
R_FP8 = (1523 / 1979) / (math.sqrt(794.5 * 792.1) / 989)


def _closed_form(m: int, n: int, k: int) -> float:
    """floor(max(2mnk / (P8 · e), bytes / (B · f_copy))) + two quantize kernels (compute docstring)."""
    x = 3 / (1 / m + 1 / n + 1 / k)
    e = eff.GEMM_EFF_MAX * R_FP8 * x / (x + eff.GEMM_SIZE_HALF)
    nbytes = (m * k + k * n) * 1 + m * n * 2
    body = max(2 * m * n * k / (H100_FP8_PEAK * e), nbytes / (H100_HBM * eff.bandwidth_fraction("copy")))

    def mem(nb: float) -> float:
        return eff.soft_floor(nb / (H100_HBM * eff.bandwidth_fraction("elementwise")), eff.LAUNCH_FLOOR_S)

    q = 2 + 1 + 4 / 128
    return eff.soft_floor(body, eff.LAUNCH_FLOOR_S) + mem(q * m * k) + mem(q * k * n)


@pytest.mark.parametrize("shape", [(8192, 8192, 8192), (4096, 7168, 2048), (128, 4096, 7168)])
def test_fp8_gemm_time_is_the_fp8_curves_closed_form(shape):
    cm = ComputeModel(DEVICES.get("h100"), "fp8", sustained=False)  # the measurements' clock (devices.py)
    assert cm.gemm_peak_flops == H100_FP8_PEAK and cm.peak_flops == 989e12  # attention etc. stay bf16
    assert cm.gemm_time(*shape) == pytest.approx(_closed_form(*shape), rel=1e-12)


def test_fp8_large_gemm_is_faster_than_bf16_but_below_twice():
    bf16, fp8 = ComputeModel(DEVICES.get("h100")), ComputeModel(DEVICES.get("h100"), "fp8")
    speedup = bf16.gemm_time(16384, 16384, 16384) / fp8.gemm_time(16384, 16384, 16384)
    # the peak ratio 2 times r_fp8 = 0.96, less the quantize kernels' share
    assert 1.6 < speedup < 2 * R_FP8
    # attention stays bf16
    assert fp8.attention_time(1, 32, 4096, 128) == bf16.attention_time(1, 32, 4096, 128)


@pytest.mark.parametrize("device", ["a100-80gb", "v100", "tpu-v4"])
def test_fp8_needs_fp8_tensor_cores(device):
    with pytest.raises(ValueError, match="no FP8 tensor cores"):
        ComputeModel(DEVICES.get(device), "fp8")


def test_fp8_on_a100_is_exit_2_naming_the_key(tmp_path):
    line = run_error_line(tmp_path, ROOT / "workloads/toy-8gpu.yaml", "training.precision=fp8")
    assert "training.precision" in line and "a100-80gb" in line


def test_fp8_optimizer_states_are_deepseek_v3s():
    # DeepSeek-V3 §3.3.4: fp32 master weights (4), BF16 Adam moments (2 + 2)
    assert state_bytes_per_param("fp8", "adam") == (2, 2, 8)
    assert state_bytes_per_param("bf16", "adam") == (2, 2, 12)


def test_cached_fp8_weights_are_quantized_once_per_step(tmp_path):
    """training.fp8_weight_cache (Transformer Engine's is_first_microbatch, passed by Megatron-Core's TE layers):
    each linear's weight quantize counts 1/m of a microbatch's in the forward and the data gradient; the
    activations' quantizes and the weight gradient are unchanged."""
    from helpers_spec import make_spec
    from simcluster.plan import build_plan
    from simcluster.plan.costing import op_time, wgrad_time, rank_gemm
    from simcluster.errors import SpecError
    base = ("cluster.preset=dgx-h100", "training.precision=fp8", "parallelism.data=8", "training.global_batch=64")
    off, on = build_plan(make_spec(tmp_path, *base)), build_plan(make_spec(tmp_path, *base, "training.fp8_weight_cache=true"))
    m = on.spec.num_microbatches
    assert m == 8 and on.stack.fp8_weight_share == pytest.approx(1 / 8) and off.stack.fp8_weight_share == 1.0
    from simcluster.workload.graph import model_ops
    op = next(o for o in model_ops(on.spec.model, on.spec.training).layer if o.kind == "gemm")
    M, N, K = rank_gemm(op, 1, 1)
    cm = on.cm
    saved = (1 - 1 / m) * cm.quantize_time(N * K)
    for backward, casts in ((False, 1), (True, 1)):
        a = op_time(op, cm, 1, 1, False, True, backward, off.stack)
        b = op_time(op, cm, 1, 1, False, True, backward, on.stack)
        assert a - b == pytest.approx(casts * saved)
    assert wgrad_time(op, cm, 1, 1) == wgrad_time(op, off.cm, 1, 1)
    with pytest.raises(SpecError, match="training.fp8_weight_cache: caches FP8 weights"):
        make_spec(tmp_path, "training.fp8_weight_cache=true")
