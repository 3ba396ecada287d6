"""Fewer K/V heads than tensor ranks: the heads are replicated (multi-query attention as in
PaLM, Chowdhery et al. 2022 §2; grouped-query attention, Ainslie et al. 2023), each rank
keeping the one K/V head its query heads read, and the replicas' gradients summed over the
tensor group (Megatron-LM)."""

from __future__ import annotations

import pytest

from simcluster.costs.memory import activation_bytes_per_layer
from simcluster.plan import build_plan
from simcluster.run import lower_workload, simulate_workload
from simcluster.spec import load_workload

TOY = "workloads/toy-8gpu.yaml"  # h 1024, a 16 (d 64), 4 layers, s 1024, V 32000, micro batch 2


def _spec(g: int, t: int, *more: str):
    return load_workload(TOY, [f"model.kv_heads={g}", f"parallelism.tensor={t}", "parallelism.pipeline=1",
                               f"parallelism.data={8 // t}", *more])


def test_mqa_with_tensor_8_is_valid():
    spec = _spec(1, 8)
    assert spec.parallelism.tensor == 8 and spec.model.kv_heads == 1


def test_kv_heads_must_divide_tensor_when_fewer():
    from simcluster.errors import SpecError
    with pytest.raises(SpecError, match="kv_heads 2 does not divide tensor 3"):
        load_workload(TOY, ["model.heads=24", "model.hidden=1536", "model.kv_heads=2", "parallelism.tensor=3",
                            "parallelism.pipeline=1", "parallelism.data=1"])


def test_parameters_per_rank_replicate_the_kv_head():
    """Per rank: Q (h·h + h)/t, K and V one head each 2·(h·d + d), proj h²/t, MLP 8h²/t + 4h/t,
    replicated 6h (proj and fc2 biases, two layernorms)."""
    h, d, t = 1024, 64, 8
    plan = build_plan(_spec(1, t))
    expect = (h * h + h) / t + 2 * (h * d + d) + h * h / t + (4 * h * h + 4 * h) / t + 4 * h * h / t + 6 * h
    assert plan.params.layer == pytest.approx(expect, rel=1e-12)
    assert plan.params.kv_replicated == 2 * (h * d + d)


def test_flops_count_the_model_not_the_replicas():
    """Model FLOPs per iteration = 3 × forward (Narayanan et al. 2021 §5.1) with the real
    K/V width g·d: per layer 2·B·s·(h·(h + 2gd) + h² + 8h²) + 4·B·s²·h, plus logits 2·B·s·h·V."""
    spec = _spec(1, 8)
    out = simulate_workload(spec)
    h, d, g, s, V, L, B = 1024, 64, 1, 1024, 32000, 4, 16
    fwd = L * (2 * B * s * (h * (h + 2 * g * d) + h * h + 8 * h * h) + 4 * B * s * s * h) + 2 * B * s * h * V
    assert out.summary["model_flops_per_iteration"] == pytest.approx(3 * fwd, rel=1e-9)


def test_qkv_gemm_per_rank_is_its_query_share_plus_one_kv_head():
    """t = 8, g = 1: N per rank = h/8 + 2d (not (h + 2d)/8), so the layer's time exceeds the
    same layout's with g = 8 by less than the two replicated heads' GEMM work."""
    one, eight = build_plan(_spec(1, 8)), build_plan(_spec(8, 8))
    assert one.blocks.attn.fwd_s > eight.blocks.attn.fwd_s * (1 - 1e-12)
    assert one.blocks.attn.fwd_flops < eight.blocks.attn.fwd_flops  # model FLOPs: g = 1 has fewer


def test_activations_hold_the_replicated_kv_head():
    """Korthikanti et al. 2022 Table 2 with tensor parallelism, s·b·h·(10 + 24/t) for g = a,
    with the K/V share 4·g/(a·t) replaced by the replicated head's 4·1/a:
    s·b·h·(10 + (4 + 16)/t + 4/a)."""
    spec = _spec(1, 8)
    s, b, h, a, t = 1024, 2, 1024, 16, 8
    expect = s * b * h * (10 + (4 + 16) / t + 4 / a)
    got = activation_bytes_per_layer(spec.model, spec.training, spec.parallelism)
    assert got == pytest.approx(expect, rel=1e-12)


def test_replicated_kv_gradients_are_summed_over_the_tensor_group():
    spec = _spec(1, 8)
    plan, _, tg = lower_workload(spec)
    sync = [t for t in tg.tasks if t.name == "tp.all_reduce replicated K/V grads"]
    h, d = 1024, 64
    assert sync and all(t.group == tuple(range(8)) for t in sync)
    assert sync[0].nbytes == 4 * 2 * (h * d + d) * 4  # 4 layers, fp32 main_grad (4 B)
    none = lower_workload(_spec(8, 8))[2]
    assert not [t for t in none.tasks if "replicated K/V" in t.name]
