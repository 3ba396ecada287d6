"""Megatron-LM's optimizer step (simcluster.costs.megatron_optimizer): the passes around its fused Adam."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers_spec import make_spec
from simcluster.costs.frameworks import framework
from simcluster.costs.megatron_optimizer import step_bytes
from simcluster.plan import build_plan
from simcluster.plan.costing import OPTIMIZER_BYTES, OPTIMIZER_KERNELS, optimizer_time
from simcluster.run import simulate_workload
from simcluster.spec import load_workload

ROOT = Path(__file__).resolve().parents[2]


def test_bytes_by_precision_and_shard():
    """bf16: zero (4) + scale (4 + 4) per held weight, norm 4 + Adam 28 + copy 6 per updated weight: 50 B at d = 1;
    fp16: a 16-bit buffer (2 + 2 + 2) and the cast (6) and unscale (8) per updated weight: 58 B."""
    assert step_bytes("bf16", 1.0) == 50.0 and step_bytes("fp16", 1.0) == 58.0 and step_bytes("fp32", 1.0) == 44.0
    assert step_bytes("bf16", 8.0, 8) == 12 * 8 + 38  # the buffer passes over all 8, the step over 1
    assert step_bytes("fp8", 1.0) == step_bytes("bf16", 1.0)


def test_megatron_step_costs_its_passes_at_the_memory_bound(tmp_path):
    plan = build_plan(make_spec(tmp_path))
    cm = plan.cm
    secs, nbytes = optimizer_time(cm, "adam", 2e9, 4, framework("megatron"))
    assert nbytes == pytest.approx(12 * 2e9 + 38 * 0.5e9)
    assert secs == pytest.approx(cm.memory_time(nbytes, "copy") + OPTIMIZER_KERNELS * cm.kernel_overhead_s)
    fused_s, fused_b = optimizer_time(cm, "adam", 2e9, 4, framework("deepspeed"))  # one fused pass over the shard
    assert fused_b == OPTIMIZER_BYTES["adam"] * 0.5e9 and fused_s < secs
    assert optimizer_time(cm, "sgd", 2e9, 4, framework("megatron"))[1] == OPTIMIZER_BYTES["sgd"] * 0.5e9
    bf16_states = framework("megatron", 1, optimizer_dtype="bf16")  # NeMo's bf16 distributed Adam: its own
    assert optimizer_time(cm, "adam", 2e9, 4, bf16_states)[1] < nbytes


def test_korthikanti_22b_step_outside_the_layers():
    """Held out: Korthikanti et al. 2022, 22B on 8 A100 (TP 8, one microbatch of 4): Table 5's 1.10 s per
    iteration less 48 × Table 4's 20.3 ms per layer (selective + sequence parallel) leaves 0.126 s for the
    embedding, the head and the loss, and the optimizer step over the rank's 2.75 B weights. The simulated
    step (50 B per weight at d = 1) and head take 0.08–0.13 s of it; the one 30 B pass took 0.049 s."""
    spec = load_workload(ROOT / "simcluster/data/validation/megatron/korthikanti-22b.yaml")
    out = simulate_workload(spec)
    tasks = out.tasks.tasks
    step = next(t for t in tasks if t.name == "optimizer.step" and 0 in t.ranks)
    outside = sum(out.result.end[t.id] - out.result.start[t.id] for t in tasks
                  if 0 in t.ranks and t.stream == "compute" and (t.layer is None or t.layer < 0 or t is step))
    assert 0.065 < out.result.end[step.id] - out.result.start[step.id] < 0.1
    assert 0.08 < outside < 0.13


def test_a_bf16_gradient_buffer_halves_the_reduction_and_the_held_passes():
    """training.grad_reduce_in_bf16 (NeMo's grad_sync_dtype bf16, Megatron-Core's --grad-reduce-in-bf16): the
    data-parallel reduction moves 2 B a weight instead of fp32 main_grad's 4, the held passes run over 2-byte
    gradients and the norm and Adam read 2-byte ones (34 B per updated weight instead of 38)."""
    from pathlib import Path

    import pytest

    from simcluster.costs.megatron_optimizer import step_bytes
    from simcluster.errors import SpecError
    from simcluster.plan import build_plan
    from simcluster.spec import load_workload

    toy = Path(__file__).resolve().parents[2] / "workloads" / "toy-8gpu.yaml"
    assert step_bytes("bf16", 1e9, 4, bf16_grads=True) == pytest.approx(3 * 2 * 1e9 + 34 * 1e9 / 4)
    assert step_bytes("bf16", 1e9, 4) == pytest.approx(3 * 4 * 1e9 + 38 * 1e9 / 4)
    fp32, bf16 = (build_plan(load_workload(toy, overrides=o)) for o in (
        [], ["training.grad_reduce_in_bf16=true"]))
    assert (fp32.grad_bytes, bf16.grad_bytes) == (4, 2)
    assert bf16.stack.grad_reduce_bf16 and not fp32.stack.grad_reduce_bf16
    for bad in (["training.framework=pytorch"], ["training.precision=fp16"]):
        with pytest.raises(SpecError, match="grad_reduce_in_bf16"):
            load_workload(toy, overrides=["training.grad_reduce_in_bf16=true", *bad])
