"""Multi-head latent attention: DeepSeek-V3's published parameter counts, FLOPs, tensor-parallel sharding.

Published: DeepSeek-V3 Technical Report (arXiv:2412.19437) §1 and §4.2: 671B total parameters, 37B
activated per token; MLA sizes (§4.2): 61 layers, hidden 7168, 128 heads of 128, RoPE 64,
kv_lora_rank 512, q_lora_rank 1536.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simcluster.costs import flops as F
from simcluster.costs import mla
from simcluster.costs import moe as M
from simcluster.costs import params as P
from simcluster.errors import SpecError
from simcluster.spec import load_workload
from simcluster.workload.graph import model_ops

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ds():
    return load_workload(ROOT / "workloads/deepseek-v3.yaml")


def test_deepseek_v3_parameters_are_the_published_671b_and_37b(ds):
    # "671B" (the main model, without the multi-token-prediction module) is rounded to the billion
    # (± 0.07 %); the model adds learned positions (29M) and LayerNorm biases DeepSeek's RMSNorms do not
    # have: 0.5 % covers them. "37B" activated: whether the input embedding's 0.93B (a lookup, 2.5 % of
    # 37B) counts is a convention, hence 3 %.
    main = ds.model.model_copy(update={"mtp_layers": 0})
    assert M.total_params(main) == pytest.approx(671e9, rel=0.005)
    assert M.active_params(main) == pytest.approx(37e9, rel=0.03)


def test_deepseek_v3_with_its_mtp_module_is_the_published_685b(ds):
    # DeepSeek-V3's README: "685B, which includes 671B of the Main Model weights and 14B of the Multi-Token
    # Prediction (MTP) Module weights". The checkpoint stores the module's copies of the shared embedding
    # and output head (model.layers.61.embed_tokens, shared_head.head: 2·V·h), which the model counts once.
    assert ds.model.mtp_layers == 1
    stored_copies = 2 * ds.model.vocab * ds.model.hidden
    assert M.total_params(ds.model) + stored_copies == pytest.approx(685e9, rel=0.005)
    # the module beyond its layer: the projection M_1 (2h·h) and its norms (P.mtp_params)
    h = ds.model.hidden
    assert P.mtp_params(ds.model, shares_embedding_stage=True) == 2 * h * h + 4 * h


def test_mla_weights_per_layer_closed_form(ds):
    h, a = 7168, 128
    expected = h * 1536 + 1536 * a * (128 + 64) + h * (512 + 64) + 512 * a * (128 + 128) + a * 128 * h
    assert mla.matrix_params(ds.model) == expected == 187_105_280
    assert P.layer_matrix_params(ds.model) == expected + 3 * h * 18432


def test_tensor_parallel_splits_heads_and_replicates_the_down_projections(ds):
    m = ds.model
    t = 8
    split = mla.split_params(m) + 3 * m.hidden * m.ffn_hidden + 2 * m.ffn_hidden
    replicated = m.hidden * 1536 + m.hidden * (512 + 64) + 1536 + 512 + 6 * m.hidden
    assert P.layer_params(m, t) == pytest.approx(split / t + replicated, rel=1e-12)


def test_mla_forward_flops_per_token_match_the_formula(ds):
    m = ds.model
    s, a = m.seq_len, m.heads
    attn = [op for op in model_ops(m, ds.training).layer if op.block == "attn"]
    gemm = sum(op.fwd_flops for op in attn if op.kind == "gemm")
    core = sum(op.fwd_flops for op in attn if op.kind == "attention")
    tokens = ds.training.micro_batch * s
    assert gemm / tokens == pytest.approx(2 * mla.matrix_params(m), rel=1e-12)
    assert core / tokens == pytest.approx(2 * s * a * (128 + 64 + 128), rel=1e-12)
    assert (gemm + core) / tokens == pytest.approx(mla.forward_flops_per_token(m), rel=1e-12)
    # the closed-form iteration count uses the same core
    assert F.attention_core_forward_flops(m, 1) == pytest.approx(core / ds.training.micro_batch, rel=1e-12)


def test_selective_recompute_stores_less_and_recomputes_the_up_projections(ds):
    m = ds.model
    full = mla.activation_bytes_per_token(m, 1.0, 1.0, 1, False)
    kept = mla.activation_bytes_per_token(m, 1.0, 1.0, 1, False, recompute_up=True)
    assert kept == 7168 + 2 * (1536 + 512 + 64) + 128 * 128  # X in FP8, latents, O in FP8
    assert full - kept > 2 * 128 * (2 * 192 + 128)  # Q, K, V no longer stored
    b = ds.training.global_batch
    up = 2 * b * m.seq_len * (1536 * 128 * 192 + 512 * 128 * 256)
    # the workload's recompute_modules [layernorm, mla_up_proj] (DeepSeek-V3 §3.2.3): the up-projections, no core
    assert ds.training.recompute_modules == ["layernorm", "mla_up_proj"]
    extra = F.hardware_flops_per_iteration(m, ds.training) - F.model_flops_per_iteration(m, ds.training)
    assert extra == pytest.approx(m.layers * up)
    unset = ds.training.model_copy(update={"recompute_modules": None})  # the attention core as well
    extra = F.hardware_flops_per_iteration(m, unset) - F.model_flops_per_iteration(m, unset)
    assert extra == pytest.approx(m.layers * (F.attention_core_forward_flops(m, b) + up))


def test_mla_needs_its_section():
    with pytest.raises(SpecError, match="model.attention"):
        load_workload(ROOT / "workloads/deepseek-v3.yaml", overrides=["model.mla=null"])
