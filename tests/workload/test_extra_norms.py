"""Norms beyond a pre-norm layer's two: query and key norms (model.qk_norm: Qwen3, Gemma 3, OLMo 2) and Gemma's
sandwich norms (model.post_norms): the graph's operators, the inputs they keep, their scales, eager code's RMSNorm
kernels, and where the importers set them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from simcluster.costs.memory import activation_bytes_per_layer
from simcluster.costs.params import layer_params
from simcluster.errors import SpecError
from simcluster.run import simulate_workload
from simcluster.spec import workload_from_data
from simcluster.spec.models import hf_model
from simcluster.workload import model_ops

HF = Path(__file__).resolve().parent.parent / "data" / "hf"
BASE = {"name": "qk", "model": {"layers": 4, "hidden": 2048, "heads": 16, "kv_heads": 4, "head_dim": 128,
                                "seq_len": 4096, "vocab": 32000, "mlp": "swiglu"},
        "training": {"global_batch": 16, "micro_batch": 1, "precision": "bf16", "flash_attention": True},
        "parallelism": {"tensor": 2, "pipeline": 1, "data": 4}, "cluster": {"preset": "dgx-h100", "nodes": 1}}


def _spec(qk: bool, post: bool = False, **training):
    d = copy.deepcopy(BASE)
    d["model"].update(qk_norm=qk, post_norms=post)
    d["training"].update(training)
    return workload_from_data(d)


def test_the_graph_norms_every_heads_queries_and_keys_after_the_qkv_gemm():
    spec = _spec(True)
    names = [o.name for o in model_ops(spec.model, spec.training).layer]
    assert names[names.index("qkv") + 1] == "qk_norm"
    op = next(o for o in model_ops(spec.model, spec.training).layer if o.name == "qk_norm")
    assert (op.kind, op.tp, op.elements) == ("norm", "heads", 4096 * (16 + 4) * 128)  # b·s·(a + g)·d
    assert "qk_norm" not in [o.name for o in model_ops(_spec(False).model, spec.training).layer]


def test_its_inputs_are_kept_without_recompute_and_its_scales_counted():
    on, off = _spec(True), _spec(False)
    extra = activation_bytes_per_layer(on.model, on.training, on.parallelism) - activation_bytes_per_layer(
        off.model, off.training, off.parallelism)
    assert extra == pytest.approx(4096 * 2 * (16 + 4) * 128 / 2)  # 2 B per element of q and k, split over t = 2
    full = _spec(True, recompute="full")
    assert activation_bytes_per_layer(full.model, full.training, full.parallelism) == activation_bytes_per_layer(
        off.model, full.training, full.parallelism)  # full recompute keeps the layer's input only
    assert layer_params(on.model) - layer_params(off.model) == 2 * 128


def test_a_step_pays_the_norms_and_eager_code_pays_its_rmsnorm_kernels():
    """One fused kernel each way under Megatron-Core (about 1 % of this step); eager Llama-style code's seven
    forward and fourteen backward RMSNorm kernels over q and k cost several times more."""
    def step(qk: bool, framework: str) -> float:
        return simulate_workload(_spec(qk, framework=framework)).summary["iteration_time_s"]
    megatron = step(True, "megatron") / step(False, "megatron") - 1
    eager = step(True, "pytorch") / step(False, "pytorch") - 1
    assert 0.002 < megatron < 0.05
    assert eager > 3 * megatron


def test_latent_attention_has_its_own_norms():
    d = copy.deepcopy(BASE)
    d["model"].update(qk_norm=True, attention="mla", mla={"kv_lora_rank": 512, "rope_head_dim": 64, "v_head_dim": 128})
    d["model"].pop("kv_heads")
    with pytest.raises(SpecError, match="model.qk_norm"):
        workload_from_data(d)


@pytest.mark.parametrize("name, qk, post", [("qwen3-30b-a3b", True, False), ("gemma-3-1b", True, True),
                                            ("llama3-8b", False, False), ("gemma-2-9b", False, True),
                                            ("mixtral-8x7b", False, False)])
def test_hugging_face_model_types_that_norm_q_and_k_or_each_blocks_output(name, qk, post):
    out, problems = hf_model(json.loads((HF / name / "config.json").read_text()), "config.json")
    assert not problems and out.get("qk_norm", False) is qk and out.get("post_norms", False) is post


def test_gemmas_post_norms_follow_proj_and_fc2_keep_their_inputs_and_cost_eager_code_more():
    on, off = _spec(False, post=True), _spec(False)
    names = [o.name for o in model_ops(on.model, on.training).layer]
    assert names[names.index("proj") + 1] == "post_ln1" and names[names.index("fc2") + 1] == "post_ln2"
    extra = activation_bytes_per_layer(on.model, on.training, on.parallelism) - activation_bytes_per_layer(
        off.model, off.training, off.parallelism)
    assert extra == pytest.approx(4096 * 2048 * 2 * 2)  # two more 16-bit norm inputs of x, whole without SP
    assert layer_params(on.model) - layer_params(off.model) == 4 * 2048

    def step(post: bool, framework: str) -> float:
        return simulate_workload(_spec(False, post, framework=framework)).summary["iteration_time_s"]
    megatron = step(True, "megatron") / step(False, "megatron") - 1
    assert 0.002 < megatron < 0.05 and step(True, "pytorch") / step(False, "pytorch") - 1 > 3 * megatron


@pytest.mark.parametrize("model, key", [({"parallel_block": True}, "model.parallel_block"),
                                        ({"moe": {"experts": 8, "top_k": 2}}, "model.moe")])
def test_post_norms_are_refused_where_not_modelled(model, key):
    d = copy.deepcopy(BASE)
    d["model"].update(post_norms=True, **model)
    with pytest.raises(SpecError, match="model.post_norms"):
        workload_from_data(d)


def test_import_megatron_reads_qk_layernorm():
    from simcluster.spec.megatron import megatron_workload
    args = ("--num-layers 4 --hidden-size 2048 --num-attention-heads 16 --seq-length 4096 --global-batch-size 16 "
            "--bf16 --swiglu --qk-layernorm")
    data, ignored = megatron_workload(args, gpus=8, cluster="dgx-h100", name="qk")
    assert data["model"]["qk_norm"] is True and not ignored
    assert "qk_norm" not in megatron_workload(args.replace(" --qk-layernorm", ""), gpus=8, cluster="dgx-h100",
                                              name="qk")[0]["model"]
