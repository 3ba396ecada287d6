"""``model.head_dim``: heads × head_dim need not equal hidden (PaLM 540B: 48 × 256 = 12288 against
d_model 18432, Chowdhery et al. 2022 Table 1)."""

from __future__ import annotations

import pytest

from simcluster.costs import params as P
from simcluster.costs.flops import attention_core_forward_flops
from simcluster.costs.memory import activation_bytes_per_layer
from simcluster.spec import load_workload
from simcluster.workload import model_ops

TOY = "workloads/toy-8gpu.yaml"  # h 1024, 16 heads, seq 1024, micro batch 2, tensor 2


def _spec(*more: str):
    return load_workload(TOY, ["model.heads=8", "model.head_dim=64", *more])  # a·d = 512, h = 1024


def test_parameters_follow_the_attention_width():
    """Per layer, matrices: Q h·a·d, K and V h·g·d each, O a·d·h, MLP 8h² (GeLU, f = 4h)."""
    m = _spec().model
    h, q = 1024, 8 * 64
    assert P.layer_matrix_params(m) == h * q + 2 * h * q + q * h + 8 * h * h
    palm = _spec("model.hidden=18432", "model.heads=48", "model.head_dim=256", "model.kv_heads=1",
                 "model.mlp=swiglu", "model.layers=118", "model.vocab=256000").model
    # PaLM 540B (Chowdhery et al. 2022, Table 1): 118 layers of h·(a·d + 2d) + a·d·h + 3·h·4h, plus the
    # 256k × 18432 shared embedding: 540.35e9 without biases; ours keeps Megatron's biases (+0.01 %).
    weights = 118 * P.layer_matrix_params(palm) + 256000 * 18432
    assert weights == pytest.approx(540.35e9, rel=1e-3)


def test_gemm_shapes_and_attention_flops_use_a_times_d():
    spec = _spec()
    ops = model_ops(spec.model, spec.training).by_name()
    b, s, h, q = 2, 1024, 1024, 512
    assert ops["qkv"].gemm == (b * s, q + 2 * q, h)  # (a + 2g)·d with g = a = 8
    assert ops["proj"].gemm == (b * s, h, q)
    assert ops["attn_core"].fwd_flops == 4.0 * b * s * s * q
    assert attention_core_forward_flops(spec.model, b) == 4.0 * b * s * s * q


def test_activations_scale_the_attention_terms():
    """Korthikanti et al. 2022 Table 2 with tensor parallelism, s·b·h·(10 + 24/t) for a·d = h,
    with Q, K, V and the projection input (2 + 4g/a + 2 of the 24) scaled by a·d/h = 1/2."""
    spec = _spec("parallelism.tensor=2")
    s, b, h, t = 1024, 2, 1024, 2
    expect = s * b * h * (10 + (0.5 * (4 + 4) + 16) / t)
    assert activation_bytes_per_layer(spec.model, spec.training, spec.parallelism) == pytest.approx(expect, rel=1e-12)


def test_runs_end_to_end():
    from simcluster.run import simulate_workload

    out = simulate_workload(_spec())
    assert out.summary["iteration_time_s"] > 0
