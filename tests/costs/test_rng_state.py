"""Megatron-LM 2019's synchronous CUDA RNG-state copies (simcluster.costs.rng_state): the closed form and where
the plan charges them (each layer forward, its recompute, and the checkpoint's own copies)."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.costs import rng_state
from simcluster.costs.frameworks import HOST_OP_S, framework
from simcluster.plan.costing import model_blocks
from simcluster.plan.plan import compute_model
from simcluster.workload import model_ops


def test_copy_closed_form():
    """824,000 B over PCIe 3.0 x16 (15.75 GB/s) is 52.3 µs, plus one host op; 4 per fork, 4 per checkpoint."""
    assert rng_state.STATE_BYTES == 824_000
    assert rng_state.PCIE3_X16_BYTES_PER_S == pytest.approx(15.754e9, rel=1e-3)
    assert rng_state.copy_s(HOST_OP_S) == pytest.approx(52.3e-6 + HOST_OP_S, rel=1e-3)
    assert rng_state.fork_s(HOST_OP_S) == pytest.approx(4 * rng_state.copy_s(HOST_OP_S))
    assert rng_state.checkpoint_s(0.0) == pytest.approx(4 * 824_000 / rng_state.PCIE3_X16_BYTES_PER_S)


def test_only_the_2019_layer_pays_them(tmp_path):
    spec = make_spec(tmp_path, "training.precision=fp16", "training.flash_attention=false")
    ops, cm = model_ops(spec.model, spec.training), compute_model(spec, spec.cluster.device)
    fused = model_blocks(ops, cm, 1, 1, False, False, framework("megatron"))
    old = model_blocks(ops, cm, 1, 1, False, False, framework("megatron", fused_kernels=False, precision="fp16"))
    assert fused.checkpoint_s == 0.0
    assert old.checkpoint_s == pytest.approx(rng_state.checkpoint_s(HOST_OP_S))
    # the fork's copies ride on the attention forward (and so on its recompute), nothing on the MLP or backward
    assert old.attn.fwd_s - rng_state.fork_s(HOST_OP_S) > fused.attn.fwd_s
    assert old.attn.bwd_s >= fused.attn.bwd_s and old.mlp.fwd_s >= fused.mlp.fwd_s


def test_full_recompute_adds_one_checkpoint_step_per_layer(tmp_path):
    from simcluster.run import simulate_workload
    spec = make_spec(tmp_path, "training.precision=fp16", "training.flash_attention=false",
                     "training.fused_kernels=false", "training.recompute=full")
    tl = simulate_workload(spec).result.timeline
    steps = tl[tl["task"].str.startswith("rc.rng_state")]
    assert len(steps) == spec.model.layers * spec.num_microbatches  # one rank simulated, 16 microbatches
    assert (steps["end_s"] - steps["start_s"]).to_numpy() == pytest.approx(rng_state.checkpoint_s(HOST_OP_S))
    none = simulate_workload(make_spec(tmp_path, "training.precision=fp16", "training.flash_attention=false",
                                       "training.fused_kernels=false", "training.recompute=none")).result.timeline
    assert not none["task"].str.startswith("rc.rng_state").any()
