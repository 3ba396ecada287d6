"""ComputeModel: roofline contract, GEMM curve, bandwidth kernels, attention, other devices.

Datasheet figures (NVIDIA H100 SXM5 datasheet, 2023; A100 SXM4 datasheet, 2021): H100 989 TFLOP/s
dense bf16, 67 TFLOP/s fp32, 3.35 TB/s HBM3; A100 312 TFLOP/s bf16, 2,039 GB/s (80 GB).
Measured figures: the H100 calibration tables in simcluster/data/calibration (README there).
"""

import numpy as np
import pytest

from simcluster.costs import efficiency as eff
from simcluster.costs.calibration import gemm_table, load_csv
from simcluster.costs.compute import ComputeModel
from simcluster.topology.devices import DEVICES

H100, A100 = DEVICES.get("h100"), DEVICES.get("a100-80gb")
H100_PEAK, H100_FP32, H100_HBM = 989e12, 67e12, 3.35e12  # H100 SXM5 datasheet
A100_PEAK, A100_HBM = 312e12, 2039e9  # A100 SXM4 80 GB datasheet
#: copy kernel on the H100 (h100_memory_bound_bf16.csv, row `copy`: 1 GiB in 0.36938 ms)
MEASURED_COPY_BW = 1073741824 / 0.36938e-3


@pytest.fixture
def h100():
    return ComputeModel(H100, sustained=False)  # the calibration's own (burst) clock


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
    # 8192³: "about 750-800 TFLOP/s" on this card (calibration README); the fit's 90th-percentile
    # error is 14.4 % (test_costs_calibration), so within 10 % below the range and not above it
    assert 0.9 * 750e12 < effs[3] * H100_PEAK < 800e12
    # the largest products saturate near the best GEMM measured (748.6 TFLOP/s, 0.757 of peak;
    # computed from h100_gemm_bf16.csv) and never above it
    d = gemm_table()
    best = float((d.flops / d.time_s).max()) / H100_PEAK
    assert 0.95 * best < effs[-1] <= best
    for n in (128, 8192, 65536):
        flops = 2.0 * n**3
        assert h100.gemm_time(n, n, n) >= h100.roofline_time(flops, h100.gemm_bytes(n, n, n))


def test_small_gemm_sits_on_the_launch_floor(h100):
    # the calibration's smallest GEMMs (< 2 GFLOP: under 2 µs of arithmetic at peak) took 27.7-56.5 µs,
    # median 31.9 µs: a launch floor, not arithmetic (h100_gemm_bf16.csv)
    d = gemm_table()
    floor = float(np.median(d.time_s[d.flops < 2e9]))
    assert h100.gemm_time(16, 16, 16) == pytest.approx(floor, rel=0.05)
    assert h100.kernel_time(0.0) == pytest.approx(floor, rel=0.05)
    assert h100.gemm_time(16, 16, 16) > 1000 * 2 * 16**3 / H100_PEAK


def test_skinny_gemm_is_bandwidth_bound():
    bare = ComputeModel(H100, kernel_overhead_s=0.0)
    m, n, k = 1, 12288, 12288  # a matrix-vector product: 1 FLOP per byte, far below the ridge (295)
    moved = 2 * (m * k + k * n + m * n)  # read X and W, write Y, 2 bytes each (bf16)
    assert bare.gemm_time(m, n, k) == pytest.approx(moved / MEASURED_COPY_BW, rel=0.05)
    assert bare.gemm_time(m, n, k) > 100 * 2 * m * n * k / H100_PEAK


def test_memory_time_is_linear_in_bytes():
    bare = ComputeModel(H100, kernel_overhead_s=0.0)
    for nbytes in (1e3, 1e6, 1e9):
        assert bare.memory_time(3 * nbytes) == pytest.approx(3 * bare.memory_time(nbytes), rel=1e-12)
    for kind in ("copy", "elementwise", "layernorm"):  # never faster than the datasheet's HBM3
        assert 1e9 / H100_HBM < bare.memory_time(1e9, kind)
    h100 = ComputeModel(H100)  # with the launch floor the slope is unchanged for large transfers
    slope = (h100.memory_time(4e9) - h100.memory_time(2e9)) / 2e9
    assert slope == pytest.approx(bare.memory_time(1e9) / 1e9, rel=1e-3)
    assert h100.memory_time(1e9, "layernorm") > h100.memory_time(1e9, "gelu")
    with pytest.raises(KeyError, match="known"):
        h100.memory_time(1e6, "nonsense")


def test_other_devices_scale_with_their_own_peak_bandwidth_and_calibration():
    h, a = ComputeModel(H100, kernel_overhead_s=0.0, sustained=False), ComputeModel(A100, kernel_overhead_s=0.0)
    r_gemm, r_mem = a.calibration.gemm.ratio, a.calibration.memory.ratio  # simcluster/costs/devices.py
    assert a.gemm_time(8192, 8192, 8192) / h.gemm_time(8192, 8192, 8192) == pytest.approx(
        H100_PEAK / A100_PEAK / r_gemm)
    assert a.memory_time(1e9) / h.memory_time(1e9) == pytest.approx(H100_HBM / A100_HBM / r_mem)
    assert a.gemm_efficiency(8192, 8192, 8192) == pytest.approx(r_gemm * h.gemm_efficiency(8192, 8192, 8192))
    # the ridge point (FLOP per byte where compute and bandwidth balance) is each device's own
    assert a.peak_flops / a.memory_bandwidth < h.peak_flops / h.memory_bandwidth


def test_precision_selects_the_peak():
    assert ComputeModel(H100, "fp32").peak_flops == H100_FP32
    assert ComputeModel(H100, "fp16").peak_flops == ComputeModel(H100, "bf16").peak_flops == H100_PEAK
    fp32 = ComputeModel(H100, "fp32", kernel_overhead_s=0.0)
    bf16 = ComputeModel(H100, "bf16", kernel_overhead_s=0.0)
    assert fp32.gemm_time(8192, 8192, 8192) / bf16.gemm_time(8192, 8192, 8192) == pytest.approx(H100_PEAK / H100_FP32)
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
    assert 0.2879e-3 * 0.85 < fwd < 0.2879e-3 * 1.15  # measured 0.2879 ms (h100_flash_attention_bf16.csv)
    assert bwd > fwd
    unfused = h100.attention_time(b, a, s, d, flash=False)
    assert unfused > fwd
    assert h100.attention_time(b, a, s, d, flash=False, backward=True) > unfused
    # unfused (Korthikanti et al. 2022 §4.1) runs the two batched GEMMs in full (4·b·a·s²·d FLOPs, the
    # mask applied, not skipped) and materialises the b·a·s² scores: softmax reads and writes them
    # (2 + 2 bytes), dropout reads them and writes its output and a 1-byte mask (2 + 2 + 1): one kernel
    # after another, so at least the datasheet roofline of each part
    scores = b * a * s * s
    assert unfused > 4 * scores * d / H100_PEAK + 9 * scores / H100_HBM


def test_flash_efficiency_is_capped():
    """Beyond the measured shapes the power law stops at 1.1x the best measured efficiency."""
    f = load_csv("h100_flash_attention_bf16.csv")
    fwd_best = float((f.fwd_flops_causal / (f.fwd_ms * 1e-3 * H100_PEAK)).max())  # 0.540
    bwd_best = float((2.5 * f.fwd_flops_causal / ((f.fwd_bwd_ms - f.fwd_ms) * 1e-3 * H100_PEAK)).max())  # 0.453
    for backward, best in ((False, fwd_best), (True, bwd_best)):
        big = eff.flash_efficiency(64, 128, 65536, 256, backward=backward)
        assert big == eff.flash_efficiency(128, 128, 131072, 256, backward=backward)  # a plateau
        assert big == pytest.approx(1.1 * best, rel=0.02)
        assert eff.flash_efficiency(1, 16, 8192, 128, backward=backward) <= big


def test_kernel_overhead_is_configurable():
    assert ComputeModel(H100, kernel_overhead_s=5e-6).kernel_time(0.0) == pytest.approx(5e-6)
    with pytest.raises(ValueError):
        ComputeModel(H100, kernel_overhead_s=-1.0)


def test_unfused_attention_without_dropout_runs_no_dropout_kernel(h100):
    """model.attention_dropout 0: PyTorch's dropout returns its input at p = 0 (ATen _dropout_impl), so the unfused
    path loses exactly its dropout pass over the b·a·s² scores, (2e + 1) bytes each way; flash is unchanged."""
    b, a, s, d = 4, 32, 2048, 96
    e, scores = 2, b * a * s * s
    for backward in (False, True):
        with_d = h100.attention_time(b, a, s, d, flash=False, backward=backward)
        without = h100.attention_time(b, a, s, d, flash=False, backward=backward, dropout=False)
        assert with_d - without == pytest.approx(h100.memory_time((2 * e + 1) * scores, "dropout"))
        assert h100.attention_time(b, a, s, d, backward=backward, dropout=False) == \
            h100.attention_time(b, a, s, d, backward=backward)


def test_alibi_adds_two_passes_over_the_scores_to_the_unfused_forward(h100, tmp_path):
    """model.alibi: BigScience's baddbmm(alibi, q, kᵀ, beta=1) copies the broadcast bias into the scores and the GEMM
    reads them back, 2·e bytes per score in each unfused forward; the backward (no gradient to the bias) and flash
    attention are unchanged. BLOOM's workload sets it, and its layer's attention core costs more by exactly that."""
    from helpers_spec import make_spec
    from pathlib import Path
    from simcluster.plan.costing import op_time
    from simcluster.plan.plan import compute_model
    from simcluster.spec import load_workload
    from simcluster.workload import model_ops
    b, a, s, d = 2, 28, 2048, 128
    e, scores = 2, b * a * s * s
    plain = h100.attention_time(b, a, s, d, flash=False)
    assert h100.attention_time(b, a, s, d, flash=False, alibi=True) - plain == pytest.approx(
        h100.memory_time(2 * e * scores, "copy"))
    for flash, backward in ((False, True), (True, False), (True, True)):
        assert h100.attention_time(b, a, s, d, flash=flash, backward=backward, alibi=True) == \
            h100.attention_time(b, a, s, d, flash=flash, backward=backward)
    bloom = load_workload(Path(__file__).resolve().parents[2] / "workloads/bloom-176b.yaml")
    assert bloom.model.alibi and not make_spec(tmp_path).model.alibi
    cm = compute_model(bloom, bloom.cluster.device)
    core = next(o for o in model_ops(bloom.model, bloom.training).layer if o.kind == "attention")
    t = bloom.parallelism.tensor
    rank_scores = core.attn[0] * (core.attn[1] // t) * core.attn[2] ** 2
    assert op_time(core, cm, t, 1, False, False, False) - cm.attention_time(
        core.attn[0], core.attn[1] // t, core.attn[2], core.attn[3], flash=False, dropout=core.dropout) \
        == pytest.approx(cm.memory_time(2 * 2 * rank_scores, "copy"))


def test_attention_dropout_zero_keeps_only_the_softmax_output(tmp_path):
    """Without recompute and flash, each score stores the softmax output (2 B), and with a dropout also its output
    (2 B) and mask (1 B): Korthikanti et al. 2022's 5as/h becomes 2as/h at p = 0."""
    from helpers_spec import make_spec
    from simcluster.costs.memory import activation_bytes_per_layer
    base = ("training.flash_attention=false", "training.precision=bf16")
    on = make_spec(tmp_path, *base)
    off = make_spec(tmp_path, *base, "model.attention_dropout=0")
    m = on.model
    sbh = m.seq_len * on.training.micro_batch * m.hidden
    diff = activation_bytes_per_layer(on.model, on.training, on.parallelism) - \
        activation_bytes_per_layer(off.model, off.training, off.parallelism)
    assert diff == pytest.approx(3 * m.heads * m.seq_len / m.hidden * sbh)


def test_embed_layernorm_costs_one_norm_on_the_first_stage_and_keeps_its_input(tmp_path):
    """model.embed_layernorm (BLOOM's --embed-layernorm): one replicated norm after the embedding, forward and
    backward, on the first stage only; that stage keeps its 16-bit input and fp32 mean and rstd (2·s·b·h + 8·s·b
    bytes) per microbatch in flight. The layers and the other stages are untouched."""
    from helpers_spec import make_spec
    from simcluster.costs.memory import stage_extra_activation_bytes
    from simcluster.plan.costing import op_time
    from simcluster.plan.plan import build_plan, compute_model
    from simcluster.workload import model_ops
    base = ("training.precision=bf16", "parallelism.tensor=2", "parallelism.pipeline=2", "parallelism.data=2",
            "model.hidden=4096", "model.heads=32", "model.seq_len=4096", "training.micro_batch=4")  # GPU-bound passes
    off, on = make_spec(tmp_path, *base), make_spec(tmp_path, *base, "model.embed_layernorm=true")
    ops_off, ops_on = model_ops(off.model, off.training), model_ops(on.model, on.training)
    assert ops_on.layer == ops_off.layer and ops_on.head == ops_off.head
    (ln,) = [o for o in ops_on.embedding if o.name == "embed_ln"]
    cm = compute_model(on, on.cluster.device)
    m, b, t = on.model, on.training.micro_batch, on.parallelism.tensor
    sbh = m.seq_len * b * m.hidden
    for backward in (False, True):  # replicated over the tensor ranks: the whole tensor on each
        assert op_time(ln, cm, t, 1, False, False, backward) == pytest.approx(
            (2 if backward else 1) * cm.memory_time(2 * 2 * sbh, "normalization"))
    p_off, p_on = build_plan(off, off.cluster.device), build_plan(on, on.cluster.device)
    e_on, e_off = p_on.blocks.emb, p_off.blocks.emb
    assert e_on.fwd_s - e_off.fwd_s == pytest.approx(op_time(ln, cm, t, 1, False, False, False))
    assert e_on.bwd_s - e_off.bwd_s == pytest.approx(op_time(ln, cm, t, 1, False, False, True))
    assert p_on.blocks.layer == p_off.blocks.layer and p_on.blocks.head == p_off.blocks.head
    for kw in ({"has_embedding": True, "has_logits": False}, {"has_embedding": False, "has_logits": True}):
        extra = stage_extra_activation_bytes(on.model, on.training, on.parallelism, **kw) - \
            stage_extra_activation_bytes(off.model, off.training, off.parallelism, **kw)
        assert extra == pytest.approx((2 * sbh + 8 * m.seq_len * b) if kw["has_embedding"] else 0.0)
