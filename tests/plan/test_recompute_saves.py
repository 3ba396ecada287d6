"""A name-based checkpoint policy (``training.recompute_saves``, MaxText's save_dot_except_mlpwi): what runs
again before the backward, what stays saved, and the FLOPs it executes, against their closed forms."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.costs.flops import hardware_flops_per_iteration, model_flops_per_iteration, layer_forward_flops
from simcluster.costs.memory import activation_bytes_per_layer
from simcluster.plan import build_plan
from simcluster.plan.costing import op_time
from simcluster.plan.plan import compute_model
from simcluster.workload import model_ops

SEL = ("training.recompute=selective",)


def _plan(tmp_path, *overrides):
    spec = make_spec(tmp_path, *overrides)
    return spec, build_plan(spec), model_ops(spec.model, spec.training), compute_model(spec, spec.cluster.device)


def test_kept_projections_are_not_recomputed(tmp_path):
    """saves [qkv, proj, fc2]: the layer's forward runs again except those three GEMMs: fc1, the attention
    core and every memory-bound operator (megatron stack: no extra kernels)."""
    spec, plan, ops, cm = _plan(tmp_path, *SEL, "training.recompute_saves=[qkv, proj, fc2]")
    t, c, sp, flash = plan.t, plan.c, spec.parallelism.sequence_parallel, spec.training.flash_attention
    rerun = [o for o in ops.layer if o.name not in ("qkv", "proj", "fc2")]
    assert {o.name for o in rerun if o.kind in ("gemm", "attention")} == {"fc1", "attn_core"}
    want = sum(op_time(o, cm, t, c, sp, flash, False, plan.stack) for o in rerun)
    assert plan.blocks.core_rc_s == pytest.approx(want, rel=1e-12)
    fc1, core = (next(o for o in ops.layer if o.name == n) for n in ("fc1", "attn_core"))
    assert plan.blocks.core_rc_flops == pytest.approx((fc1.fwd_flops + core.fwd_flops) / (t * c), rel=1e-12)


def test_keeping_everything_recomputes_only_the_memory_bound_kernels(tmp_path):
    spec, plan, ops, cm = _plan(tmp_path, *SEL, "training.recompute_saves=[qkv, proj, fc1, fc2, attention]")
    assert plan.blocks.core_rc_flops == 0.0
    mem = sum(op_time(o, cm, plan.t, plan.c, False, True, False, plan.stack) for o in ops.layer
              if o.kind not in ("gemm", "attention"))
    assert plan.blocks.core_rc_s == pytest.approx(mem, rel=1e-12)


def test_saved_bytes_are_the_layer_input_and_the_kept_outputs(tmp_path):
    """Per token (16-bit, no sequence parallelism): input h, qkv (a + 2g)·d / t, proj h, fc2 h;
    with attention kept also its output a·d / t and an fp32 log-sum-exp per head per rank."""
    spec = make_spec(tmp_path, *SEL, "training.recompute_saves=[qkv, proj, fc2]")
    m, t = spec.model, spec.parallelism.tensor
    sb = m.seq_len * spec.training.micro_batch
    h, q, kv = m.hidden, m.hidden, m.hidden  # no GQA in the base model: a·d = g·d = h
    want = sb * 2 * (h + (q + 2 * kv) / t + h + h)
    assert activation_bytes_per_layer(m, spec.training, spec.parallelism) == pytest.approx(want)
    more = make_spec(tmp_path, *SEL, "training.recompute_saves=[qkv, proj, fc2, attention]")
    extra = activation_bytes_per_layer(more.model, more.training, more.parallelism) - want
    assert extra == pytest.approx(sb * (2 * q / t + 4 * m.heads / t))


def test_hardware_flops_between_no_and_full_recompute(tmp_path):
    """Nothing kept: the FLOPs of full recompute; everything kept: the model FLOPs; MaxText's policy between."""
    none = make_spec(tmp_path, *SEL, "training.recompute_saves=[]")
    full = make_spec(tmp_path, "training.recompute=full")
    assert hardware_flops_per_iteration(none.model, none.training) == pytest.approx(
        hardware_flops_per_iteration(full.model, full.training), rel=1e-12)
    every = make_spec(tmp_path, *SEL, "training.recompute_saves=[qkv, proj, fc1, fc2, attention]")
    assert hardware_flops_per_iteration(every.model, every.training) == pytest.approx(
        model_flops_per_iteration(every.model, every.training), rel=1e-12)
    maxtext = make_spec(tmp_path, *SEL, "training.recompute_saves=[qkv, proj, fc2]")
    extra = hardware_flops_per_iteration(maxtext.model, maxtext.training) - model_flops_per_iteration(
        maxtext.model, maxtext.training)
    layer = layer_forward_flops(maxtext.model, maxtext.training.global_batch)
    assert 0 < extra < maxtext.model.layers * layer


def test_recompute_saves_without_selective_is_exit_2_naming_the_key(tmp_path):
    from pathlib import Path

    from helpers_spec import run_error_line
    root = Path(__file__).resolve().parents[2]
    line = run_error_line(tmp_path, root / "workloads/toy-8gpu.yaml", "training.recompute_saves=[qkv]")
    assert "training.recompute_saves" in line and "selective" in line

