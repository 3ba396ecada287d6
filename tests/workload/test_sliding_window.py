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
    ({"model_type": "gemma2", "sliding_window": 4096}, None, "some layers only"),
    ({"model_type": "mistral", "sliding_window": "4k"}, None, "not a positive number"),
])
def test_hugging_face_windows(config, window, problem):
    base = {"num_hidden_layers": 28, "hidden_size": 1024, "num_attention_heads": 16, "intermediate_size": 4096,
            "vocab_size": 32000, "max_position_embeddings": 8192, "hidden_act": "silu"}
    out, problems = hf_model({**base, **config}, "config.json")
    assert out.get("sliding_window") == window
    assert (problem is None) == (not problems)
    if problem:
        assert problem in problems[0].reason
