"""Closed-form FLOPs against Narayanan 2021 eq. (3) and Korthikanti 2022."""

import pytest

from simcluster.costs import flops as F
from simcluster.spec.training import TrainingSpec
from simcluster.spec.workload import ModelSpec

GPT3 = ModelSpec(layers=96, hidden=12288, heads=96, kv_heads=96, ffn_hidden=4 * 12288, vocab=51200,
                 seq_len=2048, mlp="gelu", tied_embeddings=True)


def training(recompute="none", batch=1536):
    return TrainingSpec(global_batch=batch, micro_batch=1, precision="bf16", optimizer="adam",
                        recompute=recompute, flash_attention=False)


B, s, l, h, V = 1536, 2048, 96, 12288, 51200  # GPT-3 175B as Narayanan 2021 Table 1 trains it


def test_model_flops_equal_the_72_form():
    # the derivation behind Narayanan et al. 2021 eq. (3): 24·B·s·l·h² per pass of the layers' matmuls,
    # x (1 + s/(6h)) for attention, + the logits; forward and backward (3 passes), no recomputation
    expect = 72 * B * s * l * h**2 * (1 + s / (6 * h) + V / (12 * l * h))
    assert F.model_flops_per_iteration(GPT3, training()) == pytest.approx(expect, rel=1e-12)
    assert F.narayanan_flops(B, s, l, h, V, full_recompute=False) == pytest.approx(expect, rel=1e-12)
    assert F.hardware_flops_per_iteration(GPT3, training("none")) == F.model_flops_per_iteration(GPT3, training())


def test_full_recompute_equals_the_96_form():
    # Narayanan 2021 eq. (3), as printed: full recomputation adds a fourth forward pass
    # (96 = 4 x 24); the logits are not recomputed, so their term stays 3 passes (V/(16lh) = 3/4 · V/(12lh))
    expect = 96 * B * s * l * h**2 * (1 + s / (6 * h) + V / (16 * l * h))
    assert F.hardware_flops_per_iteration(GPT3, training("full")) == pytest.approx(expect, rel=1e-12)
    assert F.narayanan_flops(B, s, l, h, V, full_recompute=True) == pytest.approx(expect, rel=1e-12)


def test_narayanan_gpt3_iteration_time():
    """175B, B=1536, s=2048 on 1024 A100 at 140 TFLOP/s/GPU (Narayanan 2021 §5.1) ⇒ ≈ 31.5 s."""
    flops = F.hardware_flops_per_iteration(GPT3, training("full"))
    assert flops / (1024 * 140e12) == pytest.approx(31.5, abs=0.05)
    assert F.achieved_flops_per_gpu(flops, 31.47, 1024) == pytest.approx(140e12, rel=2e-3)


def test_selective_adds_one_attention_core_forward():
    b, s, h, l = 1536, 2048, 12288, 96
    extra = F.hardware_flops_per_iteration(GPT3, training("selective")) - F.model_flops_per_iteration(GPT3, training())
    assert extra == pytest.approx(4 * b * s * s * h * l, rel=1e-12)
    # = 72·B·s·l·h²·(1 + 2s/(9h) + V/(12lh)): the s/(6h) term grows by a third
    total = 72 * b * s * l * h * h * (1 + 2 * s / (9 * h) + 51200 / (12 * l * h))
    assert F.hardware_flops_per_iteration(GPT3, training("selective")) == pytest.approx(total, rel=1e-12)


def test_forward_per_layer_is_24bsh2_plus_4bs2h():
    b, s, h = 8, 2048, 12288
    assert F.layer_forward_flops(GPT3, b) == 24 * b * s * h * h + 4 * b * s * s * h


def test_generalised_counts_follow_the_weights():
    """SwiGLU with f = 8h/3 and no GQA has GPT's 12h² weights, hence the same FLOPs; GQA removes K/V work."""
    h = 4096
    gpt = ModelSpec(layers=32, hidden=h, heads=32, kv_heads=32, ffn_hidden=4 * h, vocab=32000, seq_len=4096,
                    mlp="gelu", tied_embeddings=False)
    swiglu = gpt.model_copy(update={"mlp": "swiglu", "ffn_hidden": 11008})  # LLaMA-7B's f > 8h/3
    t = training(batch=4)
    assert F.model_flops_per_iteration(swiglu, t) > F.model_flops_per_iteration(gpt, t)
    m = gpt.model_copy(update={"mlp": "swiglu", "hidden": 3072, "heads": 24, "kv_heads": 24, "ffn_hidden": 8192})
    assert F.layer_forward_flops(m, 1) == 24 * m.seq_len * m.hidden**2 + 4 * m.seq_len**2 * m.hidden
    gqa = gpt.model_copy(update={"kv_heads": 8})
    d = h // 32
    saved = F.layer_forward_flops(gpt, 1) - F.layer_forward_flops(gqa, 1)
    assert saved == 2 * gpt.seq_len * h * 2 * (32 - 8) * d


def test_unknown_recompute_is_an_error():
    sometimes = training().model_copy(update={"recompute": "sometimes"})  # past the spec's validation
    with pytest.raises(ValueError, match="known"):
        F.hardware_flops_per_iteration(GPT3, sometimes)
