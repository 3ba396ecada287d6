"""``benchmarks/validation/crosscheck.py``: random layouts run two ways that must agree; it finds a disagreement
when there is one (partial symmetry over shared NICs, as it was before session 28's fix)."""

from __future__ import annotations

import random

import pytest

from helpers_bench import load_benchmark

CC = load_benchmark("crosscheck")


def test_layouts_are_reproducible_and_valid_often_enough():
    a, b = CC.layout(random.Random(3)), CC.layout(random.Random(3))
    assert a == b and any(s.startswith("training.framework=") for s in a)
    # about 27 % of drawn layouts are valid (300 draws, seeds 7 and 8): 24 draws leave 4 or more about 95 % of the time
    compared, refused, reports = CC.run("fidelity", 24, seed=1)
    assert compared >= 4 and compared + refused == 24
    assert reports == []


def test_a_disagreement_is_reported_with_its_layout(monkeypatch):
    import simcluster.lowering.partial as partial

    sets = ["model.layers=1", "model.hidden=512", "model.heads=8", "model.seq_len=256", "model.vocab=4096",
            "parallelism.tensor=4", "parallelism.pipeline=1", "parallelism.data=8", "parallelism.zero_stage=2",
            "training.micro_batch=2", "training.global_batch=16", "cluster.nodes=4",
            "cluster.inter_node.nics_per_node=4"]
    assert CC.compare("partial", sets) is None
    monkeypatch.setattr(partial, "_groups_slow_each_other", lambda plan, topo: False)  # the old partial symmetry
    why = CC.compare("partial", sets)
    assert why is not None and "(auto)" in why and "(full)" in why


MLA = ["parallelism.schedule=interleaved", "parallelism.pipeline=2", "parallelism.tensor=2", "parallelism.data=2",
       "parallelism.virtual_stages=2", "parallelism.sequence_parallel=true", "training.micro_batch=1",
       "training.global_batch=8", "model.layers=4", "model.hidden=512", "model.heads=8", "model.seq_len=256",
       "model.vocab=4096", "model.mlp=swiglu", "model.attention=mla",
       "model.mla={kv_lora_rank: 64, q_lora_rank: 96, rope_head_dim: 16, v_head_dim: 32}",
       "training.recompute=selective", "cluster.preset=dgx-h100", "cluster.nodes=1"]
MOE = ["model.moe={experts: 8, top_k: 2, shared_experts: 1, dense_layers: 1}", "parallelism.expert=2"]


@pytest.mark.parametrize("sets", [
    MLA + ["training.recompute_modules=[layernorm, mla_up_proj, mlp]"],
    MLA + MOE + ["training.recompute_modules=[layernorm, mla_up_proj, shared_experts, mlp]"],
    MLA + MOE + ["training.recompute_modules=[moe, core_attn]"],
    MLA + MOE,
], ids=["dense-norm-up-mlp", "moe-norm-up-shared-mlp", "moe-moe-core", "moe-unset"])
@pytest.mark.parametrize("check", ["fusion", "chakra", "fidelity"])
def test_latent_attention_reruns_agree_across_lowerings(sets, check):
    """Megatron-Core's recompute_modules under latent attention (the random layouts draw none) with tensor, sequence,
    interleaved pipeline and expert parallelism: fused and explicit units, the Chakra round trip, and the symmetric
    and full-fidelity lowerings give the same run."""
    from simcluster.chakra import have_chakra

    if check == "chakra" and not have_chakra():
        pytest.skip("simcluster[chakra] not installed (pip install --no-deps mlc-chakra protobuf)")
    assert CC.compare(check, sets) is None
