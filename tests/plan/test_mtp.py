"""Multi-token prediction (``model.mtp_layers``; DeepSeek-V3 §2.2): the modules' layers on the last
chunk, their projection and head pass in the head's cost, their parameters and activations on the
last stage, and the Hugging Face key."""

from __future__ import annotations

import pytest

from simcluster.costs import params as P
from simcluster.costs.memory import stage_extra_activation_bytes, stage_params
from simcluster.plan.partition import model_chunks
from simcluster.plan.plan import build_plan
from simcluster.spec import workload_from_data
from simcluster.spec.models import hf_model

MODEL = {"layers": 8, "hidden": 1024, "heads": 16, "seq_len": 2048, "vocab": 32000, "mlp": "swiglu",
         "tied_embeddings": False}


def _spec(mtp: int, p: int = 2, v: int = 1, t: int = 1):
    par = {"tensor": t, "pipeline": p, "data": 1}
    if v > 1:
        par.update({"virtual_stages": v, "schedule": "interleaved"})
    return workload_from_data({"model": {**MODEL, "mtp_layers": mtp},
                               "training": {"global_batch": 8, "micro_batch": 2},
                               "parallelism": par, "cluster": {"preset": "dgx-h100", "nodes": 1}})


def test_the_modules_layers_follow_the_main_layers_on_the_last_chunk():
    spec = _spec(2, p=2, v=2)
    chunks = model_chunks(spec.model, 2, 2)
    assert chunks[:-1] == [[0, 1], [2, 3], [4, 5]]
    assert chunks[-1] == [6, 7, 8, 9]  # the main layers 6, 7, then the two modules' layers
    plan = build_plan(spec)
    assert plan.layers_of(1) == [2, 3, 6, 7, 8, 9] and plan.layers_of(0) == [0, 1, 4, 5]


def test_head_cost_adds_each_modules_projection_and_logits_flops():
    # per module, forward: the projection 2·bs·(2h)·h and the logits 2·bs·h·V again (t = 1)
    bs, h, V = 2 * 2048, 1024, 32000
    base, one, two = (build_plan(_spec(d)).blocks.head for d in (0, 1, 2))
    module = 2.0 * bs * 2 * h * h + 2.0 * bs * h * V
    assert one.fwd_flops - base.fwd_flops == pytest.approx(module)
    assert two.fwd_flops - base.fwd_flops == pytest.approx(2 * module)
    assert one.bwd_flops - base.bwd_flops == pytest.approx(2 * module)
    assert base.fwd_s < one.fwd_s < two.fwd_s


def test_tensor_parallel_splits_the_modules_gemms():
    bs, h, V, t = 2 * 2048, 1024, 32000, 2
    base, one = (build_plan(_spec(d, t=t)).blocks.head for d in (0, 1))
    assert one.fwd_flops - base.fwd_flops == pytest.approx((2.0 * bs * 2 * h * h + 2.0 * bs * h * V) / t)


def test_last_stage_holds_the_modules_parameters_and_an_embedding_copy():
    spec = _spec(1)
    h, V = MODEL["hidden"], MODEL["vocab"]
    plan = build_plan(spec)
    # grads and ZeRO shards: the last stage's head key carries the projection, norms and the embedding copy
    expected = 2 * h * h + 4 * h + V * h
    assert P.mtp_params(spec.model, 1, shares_embedding_stage=False) == expected
    assert plan.stage_params(1) - build_plan(_spec(0)).stage_params(1) == pytest.approx(
        expected + P.layer_params(spec.model))
    # memory: the same parameters on the stage with the logits (one stage: the embedding is there already)
    args = dict(layers_on_stage=0, has_embedding=False, has_logits=True)
    assert stage_params(spec.model, spec.parallelism, **args) - stage_params(_spec(0).model, spec.parallelism, **args) \
        == pytest.approx(expected)
    one_stage = dict(layers_on_stage=0, has_embedding=True, has_logits=True)
    assert stage_params(spec.model, spec.parallelism, **one_stage) - stage_params(
        _spec(0).model, spec.parallelism, **one_stage) == pytest.approx(2 * h * h + 4 * h)
    # a tied model's last stage already holds the word embedding (its output projection)
    tied = spec.model.model_copy(update={"tied_embeddings": True})
    assert P.mtp_params(tied, 1) == 2 * h * h + 4 * h


def test_the_modules_saved_activations_include_their_logits():
    one, none = _spec(1), _spec(0)
    extra = [stage_extra_activation_bytes(s.model, s.training, s.parallelism, has_embedding=False, has_logits=True)
             for s in (none, one)]
    sb, h, V = 2 * 2048, 1024, 32000
    # the head's saved bytes again (its inputs 4 B per element of h at 16 bits and the loss's logits), plus the
    # module's norms' and projection's inputs (4 B per element of h)
    assert extra[1] - extra[0] == pytest.approx(extra[0] + 4 * sb * h)
    assert sb * V < extra[0]


def test_hugging_face_num_nextn_predict_layers_maps_onto_mtp_layers():
    cfg = {"model_type": "deepseek_v3", "num_hidden_layers": 61, "hidden_size": 7168, "num_attention_heads": 128,
           "vocab_size": 129280, "max_position_embeddings": 4096, "num_nextn_predict_layers": 1}
    out, _ = hf_model(cfg, "config.json")
    assert out["mtp_layers"] == 1


def test_mtp_layers_must_not_be_negative():
    from simcluster.errors import SpecError

    with pytest.raises(SpecError, match="mtp_layers"):
        _spec(-1)


def test_a_last_stage_of_mtp_layers_only_is_a_stage_with_layers():
    from simcluster.errors import SpecError

    base = {"model": {**MODEL, "mtp_layers": 1}, "training": {"global_batch": 8, "micro_batch": 2},
            "parallelism": {"pipeline": 2, "data": 1, "stage_layers": [8, 0]},
            "cluster": {"preset": "dgx-h100", "nodes": 1}}
    plan = build_plan(workload_from_data(base))
    assert plan.layers_of(1) == [8]
    base["model"] = {**MODEL, "mtp_layers": 0}
    with pytest.raises(SpecError, match="holds no layer"):
        workload_from_data(base)
