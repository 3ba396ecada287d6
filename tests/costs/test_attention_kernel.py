"""training.attention_kernel: FlashAttention-2 or the Hopper kernels (FA3 / cuDNN) on H100 and H200.

Published figures (simcluster.costs.devices.SOURCES):
[AZURE] FlashAttention-2 on one H100 SXM, causal, head dim 128, batch 2, seq 8192: 327.9 TFLOP/s forward +
backward; on H200 329.3. [SDPA] pytorch #142132: SDPA as dispatched 329.5 TFLOP/s, cuDNN 631.3 (0.522).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from simcluster.api import load, simulate
from simcluster.costs.compute import ComputeModel
from simcluster.costs.attention_kernels import attention_kernel
from simcluster.costs.frameworks import framework
from simcluster.topology.devices import DEVICES
from helpers_spec import run_error_line

ROOT = Path(__file__).resolve().parents[2]
AZURE_SHAPE = (2, 16, 8192, 128)


def _fwd_bwd_tflops(cm: ComputeModel, b: int, a: int, s: int, d: int) -> float:
    flops = cm.attention_flops(b, a, s, d) + cm.attention_flops(b, a, s, d, backward=True)
    t = cm.attention_time(b, a, s, d) + cm.attention_time(b, a, s, d, backward=True)
    return flops / t / 1e12


@pytest.mark.parametrize("device, published", [("h100", 327.9), ("h200", 329.3)])
def test_fa2_on_hopper_is_the_published_flashattention2_figure(device, published):
    """The ratio is built from the H100 figure's FLOPs alone; the model's time adds the launch floor
    and the bandwidth term, so agreement within 2 % checks the whole path, and H200 is a held-out point."""
    cm = ComputeModel(DEVICES.get(device), attention_kernel="fa2", sustained=False)
    assert _fwd_bwd_tflops(cm, *AZURE_SHAPE) == pytest.approx(published, rel=0.02)


def test_hopper_kernels_are_faster_than_fa2_by_the_measured_ratio():
    h100 = DEVICES.get("h100")
    fa2, fa3 = ComputeModel(h100, attention_kernel="fa2"), ComputeModel(h100, attention_kernel="fa3")
    ratio = _fwd_bwd_tflops(fa2, *AZURE_SHAPE) / _fwd_bwd_tflops(fa3, *AZURE_SHAPE)
    # between [SDPA]'s like-for-like forward (0.522) and 1: FA3-class kernels are 1.3-1.9x FA2 on Hopper
    assert 0.522 <= ratio <= 0.75
    assert ComputeModel(h100).calibration == fa3.calibration  # fa3 is the calibration itself


def test_off_hopper_fa2_is_the_devices_own_curve_and_fa3_is_refused():
    a100 = DEVICES.get("a100-80gb")
    assert ComputeModel(a100, attention_kernel="fa2").calibration == ComputeModel(a100).calibration
    with pytest.raises(ValueError, match="needs Hopper"):
        ComputeModel(a100, attention_kernel="fa3")


@pytest.mark.parametrize("name, device, expected", [
    ("pytorch", "h100", "fa2"), ("deepspeed", "h200", "fa2"), ("megatron", "h100", "fa3"), ("jax", "h100", "fa3"),
    ("pytorch", "a100-80gb", None), ("megatron", "tpu-v4", None)])
def test_auto_is_the_stacks_kernel_on_hopper(name, device, expected):
    assert attention_kernel("auto", framework(name), device) == expected
    assert attention_kernel("fa2", framework(name), device) == "fa2"


def test_a_pytorch_run_on_h100_pays_fa2_and_says_so_in_its_time():
    """auto = fa2 for PyTorch; fa3 is faster by the attention share of the step, no more."""
    path = ROOT / "simcluster/data/validation/stacks/torchtitan-llama3-8b-8.yaml"
    t = {k: simulate(load(path, overrides=[f"training.attention_kernel={k}"])).summary["iteration_time_s"]
         for k in ("auto", "fa2", "fa3")}
    assert t["auto"] == t["fa2"]
    # Llama 3 8B at 8k: attention is ~13 % of the layer's forward FLOPs, so fa3 saves less than 25 %
    assert 0.75 * t["fa2"] < t["fa3"] < 0.97 * t["fa2"]


def test_fa3_on_a100_is_exit_2_naming_the_key(tmp_path):
    line = run_error_line(tmp_path, ROOT / "workloads/toy-8gpu.yaml", "training.attention_kernel=fa3")
    assert "training.attention_kernel" in line and "a100-80gb" in line


#: llm-foundry's tables (scripts/train/benchmarking/README.md, commit 8c8dd48f), MPT-1B on 8 GPUs, tokens/s:
#: the 2k rows and the 32k rows of the same table (the 32k workloads are corpus rows of their own).
SEQ_SCAN = {"h100": (363645, 96203), "a100": (164109, 50207)}


@pytest.mark.parametrize("device", sorted(SEQ_SCAN))
def test_mpt_throughput_from_2k_to_32k_falls_as_published_with_the_triton_kernel(device):
    """Held out: nothing was set from these rows. Going from sequence 2k to 32k, attention grows from
    14 % to 57 % of the executed FLOPs, so the fall in throughput is the attention kernel's speed.
    The Triton kernel's ratios ([FA2TRITON]) give the published fall within 15 % (H100 −10.5 %, A100
    +5.3 % with MPT's fused loss; −7.9 %, +7.1 % before it was modelled), 2.5 times closer than
    FlashAttention-2's curve, which misses it by more than 25 % (+29 %, +47 %)."""
    stacks = ROOT / "simcluster/data/validation/stacks"
    short, long = (stacks / f"foundry-mpt-1b-{device}.yaml", stacks / f"foundry-mpt-1b-{device}-32k.yaml")
    published = SEQ_SCAN[device][1] / SEQ_SCAN[device][0]

    def fall(kernel: str) -> float:
        tps = [simulate(load(p, overrides=[f"training.attention_kernel={kernel}"])).summary["tokens_per_s"]
               for p in (short, long)]
        return tps[1] / tps[0]

    triton, fa2 = abs(fall("triton") / published - 1), abs(fall("fa2") / published - 1)
    assert triton < 0.15 and fa2 > 0.25 and fa2 > 2.5 * triton


@pytest.mark.parametrize("device", ["a100-80gb", "h100"])
def test_triton_kernel_is_fa2_over_the_papers_speedups(device):
    """[FA2TRITON]: FlashAttention-2 is 1.3-1.5x faster forward (geometric middle 1.396), about 2x backward."""
    dev = DEVICES.get(device)
    fa2, tri = ComputeModel(dev, attention_kernel="fa2"), ComputeModel(dev, attention_kernel="triton")
    b, a, s, d = AZURE_SHAPE
    for backward, speedup in ((False, (1.3 * 1.5) ** 0.5), (True, 2.0)):
        ratio = tri.attention_time(b, a, s, d, backward=backward) / fa2.attention_time(b, a, s, d, backward=backward)
        assert ratio == pytest.approx(speedup, rel=0.01)


def test_a100_flash_at_head_dim_64_is_the_published_flashattention2_figure():
    """[AZURE] FlashAttention-2 on one A100-SXM4-80GB at head dim 64 (batch 2, 32 heads, seq 8192, causal):
    179.5 TFLOP/s forward + backward; head dim 128 sits at the FA2 paper's causal figure, 189 TFLOP/s from 4k on
    ([FA2FIG]; its 8k bar is 182), above head dim 64."""
    cm = ComputeModel(DEVICES.get("a100-80gb"))
    assert _fwd_bwd_tflops(cm, 2, 32, 8192, 64) == pytest.approx(179.5, rel=0.01)
    assert _fwd_bwd_tflops(cm, 2, 16, 8192, 128) == pytest.approx(189.0, rel=0.01)
    assert _fwd_bwd_tflops(cm, 2, 16, 8192, 128) > _fwd_bwd_tflops(cm, 2, 32, 8192, 64)
    h100 = ComputeModel(DEVICES.get("h100"), attention_kernel="fa3")  # the H100 curve's head-dim dependence is its fit's
    assert h100.calibration.flash_head_dim_exponent == 0.0


@pytest.mark.parametrize("device, fa1_bars, fa2_bars", [
    ("h100", (109, 108, 126, 135, 137), (221, 265, 294, 308, 328)),  # [FA2FIGH100] causal, head dim 128, 1k-16k
    ("a100-80gb", (62, 69, 76, 80, 83), (133, 155, 173, 182, 189)),  # [FA2FIG], the same panel
])
def test_fa1_kernel_runs_at_flashattention1s_share_of_fa2_in_the_papers_figures(device, fa1_bars, fa2_bars):
    """FlashAttention v1 against FlashAttention-2 in one harness on one GPU: each pass takes fa2's time over the
    geometric mean of the five quotients (H100 0.436, A100 0.446), and every bar's quotient lies within the
    e^(±1.28 σ) the curve carries for it."""
    dev = DEVICES.get(device)
    fa2, fa1 = ComputeModel(dev, attention_kernel="fa2"), ComputeModel(dev, attention_kernel="fa1")
    quotients = [a / b for a, b in zip(fa1_bars, fa2_bars)]
    share = math.exp(sum(map(math.log, quotients)) / len(quotients))
    b, a, s, d = 1, 16, 8192, 128
    for backward in (False, True):
        ratio = fa2.attention_time(b, a, s, d, backward=backward) / fa1.attention_time(b, a, s, d, backward=backward)
        assert ratio == pytest.approx(share, rel=0.02)
    sigma = fa1.calibration.attention_fwd.sigma
    assert all(abs(math.log(q / share)) <= 1.2816 * sigma for q in quotients)
    assert 0.4 < share < 0.5
