"""Model import (issue 16): ``model.from`` (a Hugging Face config.json), ``model.preset`` (the
shipped catalogue) and ``simcluster import-megatron`` (a Megatron-LM command line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simcluster.cli import main
from simcluster.errors import SpecError
from simcluster.spec import load_workload, workload_from_data
from simcluster.spec.models import MODELS_DIR, hf_model, list_model_presets
from simcluster.spec.yamlio import load_yaml

DATA = Path(__file__).resolve().parent.parent / "data"
HF = DATA / "hf"
VALIDATION = Path(__file__).resolve().parent.parent.parent / "simcluster" / "data" / "validation"
BASE = {"training": {"global_batch": 16, "micro_batch": 2}, "parallelism": {"tensor": 2, "pipeline": 2},
        "cluster": {"preset": "dgx-a100-80gb", "nodes": 1}}


def test_from_llama3_config_matches_the_preset():
    imported = workload_from_data({**BASE, "model": {"from": str(HF / "llama3-8b" / "config.json")}}).model
    preset = workload_from_data({**BASE, "model": {"preset": "llama3-8b"}}).model
    assert imported == preset
    assert (imported.layers, imported.kv_heads, imported.ffn_hidden, imported.vocab) == (32, 8, 14336, 128256)
    assert imported.mlp == "swiglu" and imported.tied_embeddings is False and imported.seq_len == 8192


def test_from_gpt2_names_and_a_folder():
    m = workload_from_data({**BASE, "model": {"from": str(HF / "gpt2"), "layers": 4}}).model  # the folder's config.json
    assert (m.layers, m.hidden, m.heads, m.vocab, m.seq_len, m.ffn_hidden) == (4, 768, 12, 50257, 1024, 3072)
    assert m.mlp == "gelu" and m.tied_embeddings is True


def test_from_is_relative_to_the_workload_file(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text((HF / "tiny-llama" / "config.json").read_text())
    (tmp_path / "w.yaml").write_text("model: {from: cfg/config.json, seq_len: 256}\n"
                                     "training: {global_batch: 16, micro_batch: 2}\n"
                                     "parallelism: {tensor: 2, pipeline: 2}\n"
                                     "cluster: {preset: dgx-a100-80gb, nodes: 1}\n")
    spec = load_workload(tmp_path / "w.yaml", overrides=["model.layers=2"])
    assert (spec.model.layers, spec.model.seq_len, spec.model.kv_heads) == (2, 256, 4)


def test_unmappable_keys_are_named_exit_2(tmp_path, capsys):
    """DeepSeek-V2's device-limited routing (topk_method group_limited_greedy) is not modelled: named, exit 2."""
    with pytest.raises(SpecError) as info:
        workload_from_data({**BASE, "model": {"from": str(HF / "deepseek-v2" / "config.json")}})
    text = str(info.value)
    assert "group_limited_greedy" in text and "model.from" in text
    w = tmp_path / "w.yaml"
    w.write_text(f"model: {{from: {HF / 'deepseek-v2'}}}\ntraining: {{global_batch: 8}}\ncluster: dgx-a100-80gb\n")
    assert main(["validate", str(w)]) == 2
    err = capsys.readouterr().err
    assert "group_limited_greedy" in err and "Traceback" not in err
    config = {**json.loads((HF / "mixtral-8x7b" / "config.json").read_text()), "ffn_config": {"moe_top_k": 4}}
    assert "ffn_config" in " ".join(p.reason for p in hf_model(config, "c.json")[1])


MOE_BASE = {"training": {"global_batch": 16, "micro_batch": 1}, "parallelism": {"tensor": 1, "pipeline": 1},
            "cluster": {"preset": "dgx-h100", "nodes": 1}}


def _imported(name: str, **keys: object):
    return workload_from_data({**MOE_BASE, "model": {"from": str(HF / name / "config.json"), **keys}}).model


@pytest.mark.parametrize("name", ["mixtral-8x7b", "deepseek-v3"])
def test_moe_configs_give_the_hand_written_workloads(name):
    """Mixtral's and DeepSeek-V3's released config.json give exactly the model of the shipped workloads
    (experts, shared experts, dense layers, node-limited routing, latent attention, multi-token prediction)."""
    assert _imported(name, seq_len=4096) == load_workload(Path("workloads") / f"{name}.yaml").model


@pytest.mark.parametrize("name, total, active, lookup, source", [
    ("mixtral-8x7b", 46.7e9, 12.9e9, False, "Mistral AI, 'Mixtral of experts' (2023-12): 46.7B total, 12.9B a token"),
    ("qwen1.5-moe-a2.7b", 14.3e9, 2.7e9, False, "Qwen blog 'Qwen1.5-MoE' (2024-03): 14.3B total, 2.7B activated"),
    ("qwen3-30b-a3b", 30.5e9, 3.3e9, False, "Qwen3-30B-A3B model card: 30.5B in total, 3.3B activated"),
    ("olmoe-1b-7b", 6.9e9, 1.3e9, False, "OLMoE (arXiv:2409.02060) Table 1: 6.9B total, 1.3B active"),
    ("deepseek-v2-lite", 15.7e9, 2.4e9, True, "DeepSeek-V2 (arXiv:2405.04434) App. B: 15.7B total, 2.4B activated"),
    ("deepseek-v3", 671e9, 37e9, True, "DeepSeek-V3 (arXiv:2412.19437) §1: 671B total, 37B activated, MTP aside"),
])
def test_moe_configs_give_the_published_parameter_counts(name, total, active, lookup, source):
    """Total parameters within 1 % and activated within 5 % of what each model's authors publish (DeepSeek counts
    no input embedding among the activated: a lookup, no compute)."""
    model = _imported(name, seq_len=4096, **({"mtp_layers": 0} if name == "deepseek-v3" else {}))
    from simcluster.costs import moe as M
    from simcluster.costs.params import embedding_params, total_params
    assert total_params(model) == pytest.approx(total, rel=0.01), source
    used = M.active_params(model) - (embedding_params(model) if lookup else 0.0)
    assert used == pytest.approx(active, rel=0.05), source


#: (config, its keys, transformers' rule for a sparse layer i: Qwen2MoeDecoderLayer, DeepseekV3DecoderLayer)
SPARSE_CASES = [("qwen3-30b-a3b", {"decoder_sparse_step": step, "mlp_only_layers": only},
                 lambda i, step=step, only=only: i not in only and (i + 1) % step == 0)
                for step, only in ((1, []), (2, []), (3, []), (4, []), (1, [0]), (1, [0, 1, 2]))] + [
                ("deepseek-v2-lite", {"first_k_dense_replace": first, "moe_layer_freq": freq},
                 lambda i, first=first, freq=freq: i >= first and i % freq == 0)
                for first, freq in ((0, 1), (1, 1), (3, 1), (3, 2), (4, 2), (1, 3), (5, 4))]


@pytest.mark.parametrize("name, keys, sparse", SPARSE_CASES)
def test_sparse_layers_are_where_transformers_puts_them(name, keys, sparse):
    from simcluster.costs.moe import is_moe_layer
    config = {**json.loads((HF / name / "config.json").read_text()), **keys}
    model = workload_from_data({**MOE_BASE, "model": {**hf_model(config, "c.json")[0], "seq_len": 1024}}).model
    assert [is_moe_layer(model, i) for i in range(model.layers)] == [sparse(i) for i in range(model.layers)]


def test_qwen_dense_layers_between_or_a_shared_expert_of_another_width_are_named():
    config = json.loads((HF / "qwen3-30b-a3b" / "config.json").read_text())
    assert "mlp_only_layers" in hf_model({**config, "mlp_only_layers": [3, 7]}, "c.json")[1][0].reason
    assert "mlp_only_layers" in hf_model({**config, "decoder_sparse_step": 2, "mlp_only_layers": [0]}, "c.json")[1][0].reason
    qwen15 = json.loads((HF / "qwen1.5-moe-a2.7b" / "config.json").read_text())
    assert hf_model(qwen15, "c.json")[0]["moe"]["shared_experts"] == 4  # 5632 = 4 × 1408
    for shared, size in ((2000, 1408), (5632, "x"), (5632, -5)):
        problems = hf_model({**qwen15, "shared_expert_intermediate_size": shared, "moe_intermediate_size": size},
                            "c.json")[1]
        assert "shared_expert_intermediate_size" in problems[0].reason


def test_routing_and_latent_attention_of_deepseek_configs():
    v3 = _imported("deepseek-v3", seq_len=4096)
    assert (v3.moe.router, v3.moe.node_limit) == ("node_limited", 4)  # noaux_tc, topk_group 4 of n_group 8
    lite = _imported("deepseek-v2-lite", seq_len=4096)
    assert lite.moe.router == "topk" and lite.attention == "mla" and lite.mla.q_lora_rank is None
    assert (lite.head_dim, lite.mla.rope_head_dim, lite.mla.v_head_dim, lite.kv_heads) == (128, 64, 128, lite.heads)
    config = json.loads((HF / "deepseek-v3" / "config.json").read_text())
    assert "topk_method" in hf_model({**config, "topk_method": "sinkhorn"}, "c.json")[1][0].reason
    # transformers' DeepseekV3Config writes head_dim = qk_rope_head_dim: the latent attention's head is qk_nope
    assert hf_model({**config, "head_dim": 64}, "c.json")[0]["head_dim"] == 128


def test_keys_beside_from_override_inside_moe_and_mla():
    m = _imported("mixtral-8x7b", seq_len=4096, moe={"capacity_factor": 1.25})
    assert (m.moe.experts, m.moe.top_k, m.moe.capacity_factor) == (8, 2, 1.25)
    v3 = _imported("deepseek-v3", seq_len=4096, mla={"q_lora_rank": 1024}, moe={"router": "topk"})
    assert (v3.mla.q_lora_rank, v3.mla.kv_lora_rank, v3.moe.router, v3.moe.experts) == (1024, 512, "topk", 256)


def test_an_imported_moe_model_simulates():
    """Qwen1.5-MoE from its config.json, two layers, expert parallel 4 on one node: a run, experts and all."""
    from simcluster import api
    data = {"model": {"from": str(HF / "qwen1.5-moe-a2.7b"), "seq_len": 1024, "layers": 2},
            "training": {"global_batch": 8, "micro_batch": 1, "precision": "bf16"},
            "parallelism": {"tensor": 1, "pipeline": 1, "data": 8, "expert": 4}, "cluster": {"preset": "dgx-h100", "nodes": 1}}
    res = api.simulate(data)
    assert res.summary["iteration_time_s"] > 0 and res.workload.model.moe.shared_experts == 4


@pytest.mark.parametrize("name, embedding, rest, every, source", [
    ("gemma-2-9b", 917_504_000, 8_324_201_984, 2,
     "Gemma Team 2024, Gemma 2 (arXiv:2408.00118) Table 2: 917,504,000 embedding, 8,324,201,984 non-embedding"),
    ("gemma-3-1b", 302e6, 698e6, 6, "Gemma Team 2025, Gemma 3 Technical Report Table 1: 1B, 302M embedding, "
     "698M non-embedding"),
])
def test_gemma_configs_alternate_windows_and_give_the_published_parameter_counts(name, embedding, rest, every, source):
    """Gemma 2's and Gemma 3's released config.json: gated MLP, head_dim 256, their window on every layer but each
    every-th (transformers' Gemma2DecoderLayer / Gemma3TextConfig's sliding_window_pattern), and the authors'
    parameter counts within 0.2 % (without the learned position embeddings every model here is costed with)."""
    from simcluster.costs.params import embedding_params, position_params, total_params
    from simcluster.workload.sliding_window import full_attention
    model = _imported(name)
    assert (model.mlp, model.head_dim, model.full_attention_every, model.tied_embeddings) == ("swiglu", 256, every, True)
    assert [i for i in range(model.layers) if full_attention(model, i)] == list(range(every - 1, model.layers, every))
    lookup = embedding_params(model) - position_params(model)
    assert lookup == pytest.approx(embedding, rel=0.002), source
    assert total_params(model) - lookup - position_params(model) == pytest.approx(rest, rel=0.002), source


#: GPT-OSS-120B's config.json keys that shape its cost (transformers' GptOssConfig as released with it; the file
#: also sets rope_scaling, ids and dtypes, which cost nothing).
GPT_OSS_120B = {"model_type": "gpt_oss", "num_hidden_layers": 36, "hidden_size": 2880, "num_attention_heads": 64,
                "num_key_value_heads": 8, "head_dim": 64, "intermediate_size": 2880, "num_local_experts": 128,
                "num_experts_per_tok": 4, "experts_per_token": 4, "vocab_size": 201088, "hidden_act": "silu",
                "max_position_embeddings": 131072, "initial_context_length": 4096, "sliding_window": 128,
                "layer_types": ["sliding_attention", "full_attention"] * 18, "swiglu_limit": 7.0,
                "tie_word_embeddings": False, "attention_bias": True, "router_aux_loss_coef": 0.9,
                "output_router_logits": False}


def test_gpt_oss_maps_experts_and_alternating_windows():
    """GPT-OSS-120B: 128 experts of 2,880, 4 a token, a 128-token window on every other layer; the parameters of
    OpenAI's gpt-oss model card (2025-08) Table 1, 116.83B in all and 5.13B active a token (without the input
    lookup), within 0.5 %."""
    from simcluster.costs import moe as M
    from simcluster.costs.params import embedding_params, position_params, total_params
    out, problems = hf_model(GPT_OSS_120B, "config.json")
    assert not problems
    assert (out["moe"], out["sliding_window"], out["full_attention_every"]) == ({"experts": 128, "top_k": 4}, 128, 2)
    model = workload_from_data({**MOE_BASE, "model": {**out, "seq_len": 4096}}).model
    assert total_params(model) - position_params(model) == pytest.approx(116.83e9, rel=0.005)
    assert M.active_params(model) - embedding_params(model) == pytest.approx(5.13e9, rel=0.005)
    assert "experts_per_token" in hf_model({**GPT_OSS_120B, "experts_per_token": 2}, "c.json")[1][0].reason


def test_missing_file_and_unknown_preset():
    with pytest.raises(SpecError, match="cannot read"):
        workload_from_data({**BASE, "model": {"from": "no/such/config.json"}})
    with pytest.raises(SpecError, match="unknown model preset 'nope'.*llama3-70b"):
        workload_from_data({**BASE, "model": {"preset": "nope"}})


def test_hf_activation_and_defaults():
    model, problems = hf_model({"model_type": "gpt_neox", "num_hidden_layers": 2, "hidden_size": 64,
                                "num_attention_heads": 4, "intermediate_size": 256, "vocab_size": 100,
                                "max_position_embeddings": 128, "hidden_act": "gelu", "rotary_pct": 0.25}, "c.json")
    assert not problems and model["mlp"] == "gelu" and model["tied_embeddings"] is False
    _, problems = hf_model({"num_hidden_layers": 2, "hidden_act": "relu2"}, "c.json")
    assert problems and "relu2" in problems[0].reason
    assert "alibi" not in model  # BLOOM's configs (n_layer, n_head, ...) have no ALiBi key: the type says it
    bloom, problems = hf_model({"model_type": "bloom", "n_layer": 2, "hidden_size": 64, "n_head": 4,
                                "vocab_size": 100}, "c.json")
    assert bloom["alibi"] is True and bloom["embed_layernorm"] is True and not problems  # word_embeddings_layernorm
    assert "embed_layernorm" not in model


@pytest.mark.parametrize("name", list_model_presets())
def test_every_preset_validates_and_names_its_source(name):
    assert "source" in load_yaml(MODELS_DIR / f"{name}.yaml").data
    spec = workload_from_data({"model": {"preset": name}, "training": {"global_batch": 64},
                               "cluster": {"preset": "dgx-h100", "nodes": 1}})
    assert spec.model.layers > 0


def test_the_catalogue_has_the_well_known_models():
    assert {"llama3-8b", "llama3-70b", "llama3-405b", "gpt3-175b", "mistral-7b", "qwen2-72b"} <= set(list_model_presets())


@pytest.mark.parametrize("row, gpus", [("145.6b", 1536), ("18.4b", 256)])
def test_import_megatron_gives_the_table1_rows(row, gpus, tmp_path):
    """run_table_1.sh's arguments of two Table 1 rows give the suite's workloads: the same resolved
    model, training and layout, hence the same simulated figures (checked by simulating 18.4B)."""
    out = tmp_path / f"{row}.yaml"
    assert main(["import-megatron", str(DATA / "megatron" / f"table1-{row}.txt"), "--gpus", str(gpus),
                 "--out", str(out)]) == 0
    imported = load_workload(out).resolved_dict()
    suite = load_workload(VALIDATION / "narayanan2021" / f"gpt-{row}.yaml").resolved_dict()
    for d in (imported, suite):
        d.pop("name"), d.pop("source", None)
        # the Megatron-LM version (2021: blocking, scatter-gathered sends) is not among its arguments
        d["parallelism"].pop("overlap_p2p_comm"), d["parallelism"].pop("p2p_scatter_gather")
    # nor its gradient accumulation (fused from Feb 2022); --no-gradient-accumulation-fusion says it:
    imported["training"]["gradient_accumulation_fusion"] = False
    # nor its backward all-reduces (beside the weight gradients from Aug 2021);
    # --no-async-tensor-model-parallel-allreduce says it:
    imported["parallelism"]["tp_grad_overlap"] = False
    assert imported == suite
    if row == "18.4b":
        from simcluster.run import simulate_workload

        text = (DATA / "megatron" / f"table1-{row}.txt").read_text() + (" --no-gradient-accumulation-fusion"
                                                                       " --no-async-tensor-model-parallel-allreduce\n")
        (tmp_path / "args.txt").write_text(text)
        assert main(["import-megatron", str(tmp_path / "args.txt"), "--gpus", str(gpus), "--out", str(out)]) == 0
        a = simulate_workload(load_workload(out)).summary
        b = simulate_workload(load_workload(VALIDATION / "narayanan2021" / f"gpt-{row}.yaml")).summary
        assert a["hardware_tflops_per_gpu"] == b["hardware_tflops_per_gpu"]
        assert a["iteration_time_s"] == b["iteration_time_s"]


def test_import_megatron_maps_the_modern_flags(tmp_path, capsys):
    args = tmp_path / "args.txt"
    args.write_text("torchrun --nnodes 2 --nproc_per_node 8 pretrain_gpt.py --num-layers 8 --hidden-size 1024 "
                    "--num-attention-heads 16 --group-query-attention --num-query-groups 4 --ffn-hidden-size 2816 "
                    "--seq-length 4096 --max-position-embeddings 8192 --vocab-size 32000 "
                    "--tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 "
                    "--num-layers-per-virtual-pipeline-stage 2 --sequence-parallel --recompute-activations "
                    "--micro-batch-size 1 --global-batch-size 64 --use-distributed-optimizer --bf16 --swiglu "
                    "--untie-embeddings-and-output-weights --use-flash-attn --overlap-grad-reduce "
                    "--overlap-param-gather --defer-embedding-wgrad-compute --wgrad-deferral-limit 12\n")
    assert main(["import-megatron", str(args)]) == 0
    out = tmp_path / "w.yaml"
    out.write_text(capsys.readouterr().out)
    spec = load_workload(out)
    m, t, p = spec.model, spec.training, spec.parallelism
    assert (m.kv_heads, m.ffn_hidden, m.seq_len, m.vocab, m.mlp, m.tied_embeddings) == (4, 2816, 4096, 32000, "swiglu", False)  # 32000 = 125 x 128 x 2
    assert (t.precision, t.recompute, t.flash_attention, t.micro_batch) == ("bf16", "selective", True, 1)
    assert (p.tensor, p.pipeline, p.data, p.virtual_stages, p.schedule) == (2, 2, 4, 2, "interleaved")
    assert p.sequence_parallel and p.zero_stage == 1 and p.overlap_grad_reduce and spec.num_gpus == 16
    assert p.overlap_param_gather and p.defer_embedding_wgrad_compute and p.wgrad_deferral_limit == 12


#: Megatron-Core command lines of the shipped MoE workloads (the flags NVIDIA's MoE recipes use).
DEEPSEEK_V3_ARGS = (
    "--num-layers 61 --hidden-size 7168 --ffn-hidden-size 18432 --num-attention-heads 128 --seq-length 4096 "
    "--max-position-embeddings 163840 --padded-vocab-size 129280 --swiglu --untie-embeddings-and-output-weights "
    "--multi-latent-attention --q-lora-rank 1536 --kv-lora-rank 512 --qk-head-dim 128 --qk-pos-emb-head-dim 64 "
    "--v-head-dim 128 --num-experts 256 --moe-layer-freq \"([0]*3+[1]*58)\" --moe-ffn-hidden-size 2048 "
    "--moe-shared-expert-intermediate-size 2048 --moe-router-topk 8 --moe-router-group-topk 4 "
    "--moe-router-num-groups 8 --moe-router-load-balancing-type seq_aux_loss --moe-router-score-function sigmoid "
    "--moe-router-enable-expert-bias --moe-router-topk-scaling-factor 2.5 --moe-router-dtype fp32 "
    "--moe-grouped-gemm --moe-permute-fusion --moe-token-dispatcher-type alltoall --mtp-num-layers 1 "
    "--expert-model-parallel-size 64 "
    "--pipeline-model-parallel-size 16 --micro-batch-size 1 --global-batch-size 15360 --bf16 --fp8-format e4m3 "
    "--fp8-recipe blockwise --use-distributed-optimizer --disable-bias-linear")
MIXTRAL_ARGS = (
    "--num-layers 32 --hidden-size 4096 --ffn-hidden-size 14336 --num-attention-heads 32 --group-query-attention "
    "--num-query-groups 8 --seq-length 4096 --max-position-embeddings 32768 --vocab-size 32000 "
    "--make-vocab-size-divisible-by 128 --swiglu --untie-embeddings-and-output-weights --num-experts 8 "
    "--moe-router-topk 2 --moe-router-load-balancing-type aux_loss --moe-aux-loss-coeff 1e-2 --moe-grouped-gemm "
    "--moe-token-dispatcher-type alltoall --expert-model-parallel-size 8 --pipeline-model-parallel-size 4 "
    "--num-layers-per-virtual-pipeline-stage 1 --micro-batch-size 1 --global-batch-size 256 --bf16 "
    "--use-distributed-optimizer --overlap-param-gather --overlap-grad-reduce --use-flash-attn --disable-bias-linear")


@pytest.mark.parametrize("name, args, gpus, cluster", [("deepseek-v3", DEEPSEEK_V3_ARGS, 2048, "hgx-h800"),
                                                       ("mixtral-8x7b", MIXTRAL_ARGS, 64, "dgx-h100")])
def test_import_megatron_maps_moe_mla_mtp_and_fp8(name, args, gpus, cluster, tmp_path):
    """A Megatron-Core line of each shipped MoE workload gives its model exactly, its expert layout and precision."""
    (tmp_path / "args.txt").write_text(args + "\n")
    out = tmp_path / "w.yaml"
    assert main(["import-megatron", str(tmp_path / "args.txt"), "--gpus", str(gpus), "--cluster", cluster,
                 "--out", str(out)]) == 0
    imported, shipped = load_workload(out), load_workload(Path("workloads") / f"{name}.yaml")
    assert imported.model == shipped.model
    for key in ("tensor", "pipeline", "data", "expert", "zero_stage"):
        assert getattr(imported.parallelism, key) == getattr(shipped.parallelism, key), key
    # Megatron-Core's --fp8-recipe blockwise is Transformer Engine's Float8BlockScaling (te_blockwise); the shipped
    # DeepSeek-V3 workload is DeepSeek's own run, its DeepGEMM kernels and BF16 moments (blockwise)
    te = {"blockwise": "te_blockwise"}
    assert (imported.training.precision, imported.training.fp8_recipe) == (
        shipped.training.precision, te.get(shipped.training.fp8_recipe, shipped.training.fp8_recipe))
    header = out.read_text().split("name:")[0]
    assert "--moe-router-dtype" not in header and "--moe-aux-loss-coeff" not in header  # costless: not "ignored"


def test_import_megatron_reads_the_model_zoos_deepseek_v3_h100_line(tmp_path):
    """The Megatron-MoE-ModelZoo's H100 settings for DeepSeek-V3 (best_practice/deepseek-v3/run_deepseek_v3_h100.sh:
    TP 2, PP 8, EP 64, 1,024 GPUs, GBS 8,192, selective recompute of mla_up_proj and mlp, the layout Et|(tt|)*30mL,
    DeepEP, the merged 1F1B) on the shipped model's line: a valid workload with the layout's 32 chunks."""
    line = (DEEPSEEK_V3_ARGS.replace("--pipeline-model-parallel-size 16", "--pipeline-model-parallel-size 8")
            .replace("--global-batch-size 15360", "--global-batch-size 8192")
            .replace("--moe-token-dispatcher-type alltoall", "--moe-token-dispatcher-type flex --moe-enable-deepep")
            + " --tensor-model-parallel-size 2 --sequence-parallel --recompute-granularity selective "
              "--recompute-modules mla_up_proj mlp --pipeline-model-parallel-layout \"Et|(tt|)*30mL\" "
              "--overlap-moe-expert-parallel-comm --delay-wgrad-compute")
    (tmp_path / "args.txt").write_text(line + "\n")
    out = tmp_path / "w.yaml"
    assert main(["import-megatron", str(tmp_path / "args.txt"), "--gpus", "1024", "--cluster", "dgx-h100",
                 "--out", str(out)]) == 0
    spec = load_workload(out)
    p, t = spec.parallelism, spec.training
    assert (p.tensor, p.pipeline, p.virtual_stages, p.expert, p.schedule) == (2, 8, 4, 64, "interleaved")
    assert p.stage_layers == [1] + [2] * 30 + [0] and spec.model.mtp_layers == 1
    assert (t.recompute, t.recompute_modules) == ("selective", ["mla_up_proj", "mlp"])
    assert p.moe_a2a_overlap and p.delay_wgrad_compute and p.moe_dispatcher == "deepep"


@pytest.mark.parametrize("extra, named", [
    (" --moe-shared-expert-overlap --moe-pad-expert-input-to-capacity",
     "--moe-pad-expert-input-to-capacity, --moe-shared-expert-overlap"),
    (" --moe-token-dispatcher-type allgather", "allgather"),
    (" --moe-enable-deepep", "--moe-enable-deepep: needs --moe-token-dispatcher-type flex"),
    (" --moe-layer-freq [1,0,0,1,1,1,1,1]", "--moe-layer-freq"),
    (" --moe-layer-freq \"__import__('os').getcwd()\"", "--moe-layer-freq"),  # read, never evaluated
    (" --moe-router-num-groups 3 --moe-router-group-topk 2", "must divide the experts"),  # 3 groups of 8 experts
    (" --moe-expert-capacity-factor many", "--moe-expert-capacity-factor"),
    (" --multi-latent-attention --kv-lora-rank 512", "--qk-head-dim"),
    (" --fp8-format e4m3 --fp8-recipe mxfp8", "mxfp8"),
    (" --no-fp8-wgrad --fp8-format hybrid", "--no-fp8-wgrad"),
    (" --n-shared-experts 2", "--n-shared-experts"),  # another project's fork
    (" --moe-router-topk 0", "--moe-router-topk: expected a positive integer"),  # not Megatron's default 2
    (" --moe-router-num-groups 8", "needs both"),
    (" --fp8-format", "--fp8-format: expects a value"),
    (" --window-size 4096,8", "not causal"),
    (" --window-size 127,0 --window-attn-skip-freq \"([0,1]*4)\"", "full attention on layers [0, 2, 4, 6]"),
    (" --window-attn-skip-freq 2", "needs --window-size"),
    (" --window-size 127,0 --softmax-type learnable", "attention sinks"),
    (" --window-size 127,0 --window-attn-skip-freq", "--window-attn-skip-freq: expects a value"),
    (" --moe-token-dispatcher-type flex --moe-flex-dispatcher-backend ncclep", "--moe-flex-dispatcher-backend: ncclep"),
    (" --moe-token-dispatcher-type flex --moe-flex-dispatcher-backend", "--moe-flex-dispatcher-backend: expects a value"),
])
def test_import_megatron_names_what_it_cannot_map(extra, named, tmp_path, capsys):
    args = tmp_path / "args.txt"
    args.write_text("--num-layers 8 --hidden-size 1024 --num-attention-heads 16 --seq-length 2048 "
                    "--global-batch-size 64 --num-experts 8 --moe-router-topk 2 --moe-grouped-gemm "
                    "--moe-token-dispatcher-type alltoall --expert-model-parallel-size 8" + extra + "\n")
    assert main(["import-megatron", str(args), "--gpus", "8", "--out", str(tmp_path / "w.yaml")]) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err and not (tmp_path / "w.yaml").exists()


@pytest.mark.parametrize("extra, window, every", [
    ("--window-size 127,0 --window-attn-skip-freq 2", 128, 2),  # GPT-OSS: window_attn_skip_freq 2 (gpt_oss_bridge.py)
    ("--window-size (4095,0)", 4096, None),  # Mistral: every layer
    ("--window-size 511,0 --window-attn-skip-freq \"([1]*5+[0])*2\"", 512, 6),  # Gemma 3's 5:1, as a pattern
    ("--window-size 511,0 --window-attn-skip-freq 13", 512, None),  # no full layer among 12
    ("--window-size 511,0 --window-attn-skip-freq 1", None, None),  # every layer full
    ("--window-size -1,0", None, None),  # -1: no limit
    ("--softmax-type vanilla", None, None),
])
def test_import_megatron_maps_sliding_windows(extra, window, every):
    """Megatron-Core's --window-size (left, right) is a window of left + 1 keys; --window-attn-skip-freq N makes layer
    numbers (1-based) divisible by N full (is_layer_window_attention): model.full_attention_every N."""
    from simcluster.spec.megatron import megatron_workload
    data, ignored = megatron_workload("--num-layers 12 --hidden-size 1024 --num-attention-heads 16 --seq-length 8192 "
                                      "--global-batch-size 64 --bf16 " + extra, gpus=8, cluster="dgx-h100", name="w")
    assert (data["model"].get("sliding_window"), data["model"].get("full_attention_every")) == (window, every)
    assert not ignored
    spec = workload_from_data(data)
    assert (spec.model.sliding_window, spec.model.full_attention_every) == (window, every)


def test_import_megatron_needs_grouped_gemm_for_several_experts_a_rank(tmp_path, capsys):
    """Without --moe-grouped-gemm Megatron runs a rank's experts one by one (SequentialMLP): refused when a rank
    holds more than one, mapped when each holds one (the same GEMMs)."""
    args = tmp_path / "args.txt"
    line = ("--num-layers 8 --hidden-size 1024 --num-attention-heads 16 --seq-length 2048 --global-batch-size 64 "
            "--num-experts 8 --moe-token-dispatcher-type alltoall --expert-model-parallel-size ")
    args.write_text(line + "4\n")
    assert main(["import-megatron", str(args), "--gpus", "8"]) == 2
    assert "SequentialMLP" in capsys.readouterr().err
    args.write_text(line + "8\n")
    assert main(["import-megatron", str(args), "--gpus", "8"]) == 0


@pytest.mark.parametrize("value, layers, split", [("1", 8, (0, 1)), ("2", 8, (0, 2)), ("([0]*3+[1]*58)", 61, (3, 1)),
                                                  ("[0]+[1]*92", 93, (1, 1)), ("[0,1,0,1]", 4, (1, 2)),
                                                  ("[0]*2+[1,0]*3", 8, (2, 2)), ("[1,1,0]", 3, None),
                                                  ("0", 4, None), ("open('x')", 4, None),
                                                  ("([0]*1000000)*1000000", 4, None)])  # refused, not built
def test_moe_layer_freq_patterns(value, layers, split):
    """Megatron's --moe-layer-freq: i % k == 0 for an integer, else its list expression (read as data)."""
    from simcluster.spec.megatron_moe import dense_and_every, layer_pattern
    pattern = layer_pattern(value, layers)
    assert (dense_and_every(pattern) if pattern else None) == split


def test_import_megatron_needs_the_vocabulary_of_a_tokenizer_it_cannot_read(tmp_path, capsys):
    """Megatron-LM sizes the vocabulary from --tokenizer-type's file: GPT-2's BPE (50257, the default) is known; a
    Hugging Face, SentencePiece or tiktoken model is not, so import-megatron asks for it instead of writing GPT-2's."""
    args = tmp_path / "args.txt"
    line = ("--num-layers 8 --hidden-size 1024 --num-attention-heads 16 --seq-length 2048 --global-batch-size 64 "
            "--tensor-model-parallel-size 2 --tokenizer-type {} --tokenizer-model meta-llama/Meta-Llama-3-8B\n")
    args.write_text(line.format("HuggingFaceTokenizer"))
    assert main(["import-megatron", str(args), "--gpus", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--tokenizer-type: HuggingFaceTokenizer" in err and "--set model.vocab" in err
    assert main(["import-megatron", str(args), "--gpus", "8", "--set", "model.vocab=128256"]) == 0
    out = tmp_path / "w.yaml"
    out.write_text(capsys.readouterr().out)
    assert load_workload(out).model.vocab == 128256
    args.write_text(line.format("HuggingFaceTokenizer").replace("--tokenizer-type", "--vocab-size 128000 --tokenizer-type"))
    assert main(["import-megatron", str(args), "--gpus", "8"]) == 0
    out.write_text(capsys.readouterr().out)
    assert load_workload(out).model.vocab == 128000  # 128000 = 500 x 128 x 2
    args.write_text(line.format("GPT2BPETokenizer"))
    assert main(["import-megatron", str(args), "--gpus", "8"]) == 0
    text = capsys.readouterr().out
    out.write_text(text)
    assert load_workload(out).model.vocab == 50432 and "--tokenizer-type" not in text.split("\n", 3)[2]


def test_a_sweeps_best_yaml_keeps_the_config_reachable(tmp_path):
    from simcluster.spec.sweep import load_sweep
    from simcluster.spec.yamlio import parse_yaml_text

    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text((HF / "tiny-llama" / "config.json").read_text())
    (tmp_path / "w.yaml").write_text("model: {from: cfg/config.json}\ntraining: {global_batch: 16, micro_batch: 2}\n"
                                     "parallelism: {tensor: 2, pipeline: 2}\ncluster: {preset: dgx-a100-80gb, nodes: 1}\n")
    (tmp_path / "s.yaml").write_text("name: s\nbase: w.yaml\ngrid:\n  training.micro_batch: [1, 2]\n")
    sweep = load_sweep(tmp_path / "s.yaml")
    assert sweep.workload({"training.micro_batch": 1}).model.kv_heads == 4
    elsewhere = tmp_path / "out"
    elsewhere.mkdir()
    (elsewhere / "best.yaml").write_text(sweep.workload_yaml({"training.micro_batch": 1}))
    data = parse_yaml_text((elsewhere / "best.yaml").read_text(), "best.yaml").data
    assert Path(data["model"]["from"]).is_absolute()
    assert load_workload(elsewhere / "best.yaml").model.ffn_hidden == 2816


@pytest.mark.parametrize("backend, flash", [("flash", True), ("fused", True), ("auto", True), ("unfused", False),
                                            ("local", False)])
def test_import_megatron_reads_the_attention_backend(backend, flash, tmp_path, capsys):
    """Megatron-Core's --attention-backend (which replaced --use-flash-attn): flash, cuDNN-fused or auto run a fused
    attention kernel; unfused and local the softmax path."""
    args = tmp_path / "args.txt"
    args.write_text("--num-layers 8 --hidden-size 1024 --num-attention-heads 16 --seq-length 2048 "
                    f"--global-batch-size 64 --attention-backend {backend}\n")
    out = tmp_path / "w.yaml"
    assert main(["import-megatron", str(args), "--gpus", "8", "--out", str(out)]) == 0
    assert load_workload(out).training.flash_attention is flash
    assert "--attention-backend" not in out.read_text().split("name:")[0]


def test_rope_scaling_companions_cost_nothing():
    """Phi-3's original_max_position_embeddings (its RoPE scaling's base length) is read as no cost, as rope_scaling."""
    config = {**json.loads((HF / "llama3-8b" / "config.json").read_text()), "original_max_position_embeddings": 4096}
    assert hf_model(config, "c.json")[1] == []


def test_import_megatron_maps_the_ep_all_to_all_overlap(tmp_path, capsys):
    """--overlap-moe-expert-parallel-comm and --delay-wgrad-compute (what Megatron-Bridge's moe_a2a_overlap sets) map
    to parallelism.moe_a2a_overlap and delay_wgrad_compute; with a pipeline but no virtual stages the import is
    refused as Megatron-Core refuses the line (one line, exit 2, no file written)."""
    from simcluster.spec.megatron import megatron_workload
    line = ("--num-layers 8 --hidden-size 1024 --num-attention-heads 16 --seq-length 2048 --global-batch-size 64 "
            "--bf16 --num-experts 8 --moe-router-topk 2 --moe-grouped-gemm --moe-token-dispatcher-type alltoall "
            "--expert-model-parallel-size 8 --overlap-moe-expert-parallel-comm --delay-wgrad-compute")
    data, ignored = megatron_workload(line, gpus=8, cluster="dgx-h100", name="w")
    assert (data["parallelism"]["moe_a2a_overlap"], data["parallelism"]["delay_wgrad_compute"]) == (True, True)
    assert not ignored
    spec = workload_from_data(data)
    assert spec.parallelism.moe_a2a_overlap and spec.parallelism.delay_wgrad_compute
    args = tmp_path / "args.txt"
    args.write_text(line + " --pipeline-model-parallel-size 2\n")
    out = tmp_path / "w.yaml"
    assert main(["import-megatron", str(args), "--gpus", "16", "--cluster", "dgx-h100", "--out", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "parallelism.moe_a2a_overlap" in err[0] and "interleaved" in err[0]


@pytest.mark.parametrize("extra, dispatcher", [
    ("--moe-token-dispatcher-type alltoall", "alltoall"),
    ("--moe-token-dispatcher-type flex", "deepep"),  # Megatron-Core's default flex backend
    ("--moe-token-dispatcher-type flex --moe-flex-dispatcher-backend hybridep", "hybridep"),
])
def test_import_megatron_maps_the_token_dispatcher(extra, dispatcher):
    """--moe-token-dispatcher-type flex dispatches with DeepEP or HybridEP (one InfiniBand copy per token and remote
    node): parallelism.moe_dispatcher; alltoall is NCCL's all-to-all."""
    from simcluster.spec.megatron import megatron_workload
    data, ignored = megatron_workload("--num-layers 8 --hidden-size 1024 --num-attention-heads 16 --seq-length 2048 "
                                      "--global-batch-size 64 --bf16 --num-experts 8 --moe-router-topk 2 "
                                      "--moe-grouped-gemm --expert-model-parallel-size 8 " + extra,
                                      gpus=8, cluster="dgx-h100", name="w")
    spec = workload_from_data(data)
    assert spec.parallelism.moe_dispatcher == dispatcher and not ignored
    assert spec.model.moe.expert_bias  # no --disable-bias-linear: Megatron's add_bias_linear, the experts' biases


def test_import_megatron_maps_group_limited_routing():
    """--moe-router-num-groups 8 --moe-router-group-topk 4 over one node's 8 ranks (the groups are not the nodes):
    node_limited routing over router_groups 8 groups, a token's 8 experts in 4 of them; DeepEP then sends a token to
    4 of the 8 ranks (one group a rank), half of NCCL's bytes."""
    from simcluster.plan.plan import build_plan
    from simcluster.spec.megatron import megatron_workload
    data, ignored = megatron_workload("--num-layers 8 --hidden-size 1024 --num-attention-heads 16 --seq-length 2048 "
                                      "--global-batch-size 64 --bf16 --num-experts 32 --moe-router-topk 8 "
                                      "--moe-router-num-groups 8 --moe-router-group-topk 4 --moe-grouped-gemm "
                                      "--expert-model-parallel-size 8 --moe-token-dispatcher-type flex",
                                      gpus=8, cluster="dgx-h100", name="w")
    spec = workload_from_data(data)
    moe = spec.model.moe
    assert (moe.router, moe.node_limit, moe.router_groups) == ("node_limited", 4, 8) and not ignored
    assert build_plan(spec).moe.dedup.nvl == pytest.approx(0.5)
