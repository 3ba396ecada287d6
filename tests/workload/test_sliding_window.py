"""Sliding-window attention (model.sliding_window): the window's share of the query-key pairs, in the flash
kernel's time and the model FLOPs; nothing saved by the unfused attention, which masks the whole square."""

from __future__ import annotations

import copy

import pytest

from simcluster.costs.compute import ComputeModel
from simcluster.errors import SpecError
from simcluster.run import simulate_workload
from simcluster.spec import workload_from_data
from simcluster.spec.models import hf_model
from simcluster.topology.devices import DEVICES
from simcluster.workload.sliding_window import window_pair_ratio

BASE = {"name": "w", "model": {"preset": "mistral-7b"},
        "training": {"global_batch": 16, "micro_batch": 1, "precision": "bf16", "flash_attention": True},
        "parallelism": {"tensor": 1, "pipeline": 1, "data": 8, "zero_stage": 1},
        "cluster": {"preset": "dgx-h100", "nodes": 1}}


def _spec(**model):
    d = copy.deepcopy(BASE)
    d["model"].update(model)
    return workload_from_data(d)


@pytest.mark.parametrize("s, w", [(8192, 4096), (4096, 1024), (10, 3), (7, 1)])
def test_the_pair_ratio_counts_each_querys_keys(s, w):
    pairs = sum(min(i, w) for i in range(1, s + 1))
    assert window_pair_ratio(s, w) == pytest.approx(pairs / (s * (s + 1) / 2), rel=1e-12)
    assert window_pair_ratio(s, s) == window_pair_ratio(s, 2 * s) == window_pair_ratio(s, None) == 1.0


def test_mistral_7b_half_window_keeps_three_quarters_of_the_pairs():
    # w = s/2: P_w = w(w+1)/2 + w² against s(s+1)/2 -> 3/4 as s grows (Jiang et al. 2023: 4,096 of 8,192)
    assert window_pair_ratio(8192, 4096) == pytest.approx(0.75, abs=1e-4)


def test_only_the_flash_kernel_skips_the_keys_outside_the_window():
    cm = ComputeModel(DEVICES.get("h100"))
    r = window_pair_ratio(8192, 4096)
    for backward in (False, True):
        full = cm.attention_flops(1, 32, 8192, 128, backward=backward)
        assert cm.attention_flops(1, 32, 8192, 128, backward=backward, window=4096) == pytest.approx(r * full)
        assert cm.attention_time(1, 32, 8192, 128, backward=backward, window=4096) < \
            cm.attention_time(1, 32, 8192, 128, backward=backward)
        unfused = cm.attention_time(1, 32, 8192, 128, flash=False, backward=backward)
        assert cm.attention_time(1, 32, 8192, 128, flash=False, backward=backward, window=4096) == unfused


def test_a_run_under_the_window_costs_less_attention_and_counts_fewer_model_flops():
    windowed, whole = _spec(), _spec(sliding_window=None)
    assert windowed.model.sliding_window == 4096 and whole.model.sliding_window is None
    a, b = simulate_workload(windowed).summary, simulate_workload(whole).summary
    assert a["iteration_time_s"] < b["iteration_time_s"]
    flops = lambda s: s["model_tflops_per_gpu"] * s["iteration_time_s"]
    # 4·B·s²·h per layer of the dense count times the pair ratio: the difference is the attention's quarter
    m = windowed.model
    dropped = 3 * m.layers * 4.0 * BASE["training"]["global_batch"] * m.seq_len**2 * m.hidden * (1 - window_pair_ratio(8192, 4096))
    assert (flops(b) - flops(a)) * 1e12 * windowed.num_gpus == pytest.approx(dropped, rel=1e-6)
    # a window as long as the sequence changes nothing
    same = simulate_workload(_spec(sliding_window=8192)).summary
    assert same["iteration_time_s"] == b["iteration_time_s"]


def test_unsupported_combinations_are_refused():
    d = copy.deepcopy(BASE)
    d["parallelism"].update(context=2, data=4)
    with pytest.raises(SpecError, match="sliding_window.*context"):
        workload_from_data(d)


@pytest.mark.parametrize("config, window, problem", [
    ({"model_type": "mistral", "sliding_window": 4096}, 4096, None),
    ({"model_type": "mistral", "sliding_window": None}, None, None),
    ({"model_type": "qwen2", "sliding_window": 32768, "use_sliding_window": False, "max_window_layers": 28}, None, None),
    ({"model_type": "qwen2", "sliding_window": 4096, "use_sliding_window": True, "max_window_layers": 28}, None, None),
    ({"model_type": "qwen2", "sliding_window": 4096, "use_sliding_window": True, "max_window_layers": 0}, 4096, None),
    ({"model_type": "qwen2", "sliding_window": 4096, "use_sliding_window": True, "max_window_layers": 14}, None,
     "max_window_layers"),
    ({"model_type": "mistral", "sliding_window": "4k"}, None, "not a positive number"),
    ({"model_type": "gemma2", "sliding_window": 4096}, (4096, 2), None),  # Gemma2DecoderLayer: every other layer
    ({"model_type": "gemma3_text", "sliding_window": 1024}, (1024, 6), None),  # Gemma3TextConfig's default pattern
    ({"model_type": "gemma3_text", "sliding_window": 512, "sliding_window_pattern": 4}, (512, 4), None),
    ({"model_type": "gemma3_text", "sliding_window": 512, "sliding_window_pattern": 1}, None, None),  # all full
    ({"model_type": "gemma3_text", "sliding_window": 512, "sliding_window_pattern": 64}, (512, None), None),
    ({"model_type": "gemma3_text", "sliding_window": 512, "sliding_window_pattern": 0}, None, "not a positive"),
    ({"sliding_window": 128, "layer_types": ["sliding_attention", "full_attention"] * 14}, (128, 2), None),  # GPT-OSS
    ({"sliding_window": 128, "layer_types": (["sliding_attention"] * 3 + ["full_attention"]) * 7}, (128, 4), None),
    ({"sliding_window": 128, "layer_types": ["sliding_attention"] * 28}, (128, None), None),
    ({"sliding_window": 128, "layer_types": ["full_attention"] * 28}, None, None),
    ({"sliding_window": 128, "layer_types": ["full_attention", "sliding_attention"] * 14}, None, "layers [0, 2"),
    ({"sliding_window": 128, "layer_types": ["sliding_attention"] * 14 + ["full_attention"] * 14}, None,
     "every N-th layer"),
    ({"sliding_window": 128, "layer_types": ["sliding_attention", "full_attention"] * 13}, None, "lists 26 layers"),
    ({"sliding_window": 128, "layer_types": ["sliding_attention", "chunked_attention"] * 14}, None, "must list"),
])
def test_hugging_face_windows(config, window, problem):
    """``window``: (sliding_window, full_attention_every), a bare number for a window on every layer, None for none."""
    base = {"num_hidden_layers": 28, "hidden_size": 1024, "num_attention_heads": 16, "intermediate_size": 4096,
            "vocab_size": 32000, "max_position_embeddings": 8192, "hidden_act": "silu"}
    out, problems = hf_model({**base, **config}, "config.json")
    w, every = window if isinstance(window, tuple) else (window, None)
    assert out.get("sliding_window") == w
    assert out.get("full_attention_every") == every
    assert (problem is None) == (not problems)
    if problem:
        assert problem in problems[0].reason


ALTERNATING = {"layers": 12, "hidden": 1024, "heads": 8, "kv_heads": 4, "head_dim": 128, "ffn_hidden": 4096,
               "vocab": 32000, "seq_len": 8192, "mlp": "swiglu", "sliding_window": 1024, "full_attention_every": 2}


def _mixed(every=2, window=1024, **par):
    d = copy.deepcopy(BASE)
    d["model"] = {**ALTERNATING, "full_attention_every": every, "sliding_window": window}
    d["training"]["recompute"] = "full"
    d["parallelism"].update(par)
    return workload_from_data(d)


def test_full_layers_sit_where_transformers_puts_them_and_count_their_pairs():
    from simcluster.costs.flops import attention_core_forward_flops
    from simcluster.workload.sliding_window import full_attention, full_layers, mean_pair_ratio
    m = _mixed(every=3).model
    assert [i for i in range(m.layers) if full_attention(m, i)] == [2, 5, 8, 11] and full_layers(m) == 4
    r = window_pair_ratio(8192, 1024)
    assert mean_pair_ratio(m) == pytest.approx((8 * r + 4) / 12, rel=1e-12)
    windowed, whole = _mixed(every=None).model, _mixed(every=None, window=None).model
    # layers × the per-layer count is the model's: 8 windowed layers' pairs and 4 full ones'
    assert m.layers * attention_core_forward_flops(m, 1) == pytest.approx(
        8 * attention_core_forward_flops(windowed, 1) + 4 * attention_core_forward_flops(whole, 1), rel=1e-12)


def test_each_layer_runs_its_own_attention_core():
    from simcluster.plan.plan import build_plan
    plan = build_plan(_mixed(every=2))
    assert plan.full_blocks is not None
    assert plan.layer_blocks(1) is plan.full_blocks and plan.layer_blocks(0) is plan.blocks
    assert plan.full_blocks.attn.fwd_s > plan.blocks.attn.fwd_s  # 8,192 keys a query at most against 1,024
    assert plan.full_blocks.mlp == plan.blocks.mlp
    assert build_plan(_mixed(every=None)).full_blocks is None  # one kind of layer


def test_alternating_windows_cost_between_all_and_none():
    """Model FLOPs of half full layers are exactly the mean of all windowed and none; the step lies between, and
    the search's screen follows the simulation."""
    from simcluster.search.estimate import Estimator
    from simcluster.search.layout import Layout
    from simcluster.topology import build_topology
    par = {"tensor": 2, "pipeline": 2, "data": 2}
    mixed, windowed, whole = (_mixed(every=2, **par), _mixed(every=None, **par), _mixed(every=None, window=None, **par))
    runs = [simulate_workload(s).summary for s in (mixed, windowed, whole)]
    flops = [r["model_tflops_per_gpu"] * r["iteration_time_s"] for r in runs]
    assert flops[0] == pytest.approx((flops[1] + flops[2]) / 2, rel=1e-9)
    assert runs[1]["iteration_time_s"] < runs[0]["iteration_time_s"] < runs[2]["iteration_time_s"]
    lay = Layout(2, 2, 2, 1, 1, 1, "1f1b", False, "full", 0)
    for spec, run in zip((mixed, windowed, whole), runs):
        est = Estimator(spec, build_topology(spec.cluster)).estimate(lay).iteration_time_s
        assert est == pytest.approx(run["iteration_time_s"], rel=0.02)


@pytest.mark.parametrize("model, match", [
    ({"sliding_window": None, "full_attention_every": 2}, "full_attention_every.*needs model.sliding_window"),
    ({"full_attention_every": 13}, "more than the model's 12 layers"),
    ({"full_attention_every": 1}, "full_attention_every"),
])
def test_full_attention_every_needs_a_window_and_a_layer(model, match):
    d = copy.deepcopy(BASE)
    d["model"] = {**ALTERNATING, **model}
    with pytest.raises(SpecError, match=match):
        workload_from_data(d)
