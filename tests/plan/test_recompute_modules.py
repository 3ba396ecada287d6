"""Megatron-Core's selective recompute by submodule (``training.recompute_modules``, ``--recompute-modules``): what
each simulated module drops from the saved activations and adds to the backward, against their closed forms; what
the spec refuses; how ``import-megatron`` and the search carry it."""

from __future__ import annotations

import pytest

from simcluster.costs.memory import activation_bytes_per_layer
from simcluster.errors import SpecError
from simcluster.plan import build_plan
from simcluster.plan.costing import op_time
from simcluster.plan.moe import Load
from simcluster.search.memory import dependent_values
from simcluster.spec.megatron import megatron_workload, parse_args
from simcluster.spec.workload import workload_from_data
from simcluster.workload.moe import moe_ops

H, S, E, K, F, T = 1024, 1024, 16, 2, 704, 2


def spec(modules: list[str] | None, recompute: str = "selective", flash: bool = True, moe: bool = True):
    """Two MoE layers (or dense ones), tensor 2 with sequence parallelism, expert 8 over the data ranks."""
    model = {"layers": 2, "hidden": H, "heads": 16, "seq_len": S, "vocab": 32000, "ffn_hidden": 2816, "mlp": "swiglu"}
    if moe:
        model["moe"] = {"experts": E, "top_k": K, "expert_ffn_hidden": F}
    training = {"global_batch": 16, "recompute": recompute, "flash_attention": flash}
    if modules is not None:
        training["recompute_modules"] = modules
    par = {"tensor": T, "sequence_parallel": True, "expert": 8 if moe else 1, "expert_tensor": 1 if moe else None}
    return workload_from_data({"name": "rm", "model": model, "training": training,
                               "parallelism": {k: v for k, v in par.items() if v is not None},
                               "cluster": {"preset": "dgx-h100", "nodes": 2}})


def activations(sp) -> float:
    plan = build_plan(sp)
    return plan.memory(0).activations / plan.in_flight(0)


def test_the_default_is_the_attention_core():
    assert spec(None).training.recomputed_modules == {"core_attn"}
    assert spec(["core_attn"]).training.recomputed_modules == {"core_attn"}
    assert spec(None, recompute="none").training.recomputed_modules == frozenset()
    a, b = build_plan(spec(None)), build_plan(spec(["core_attn"]))
    assert a.layer_unit_steps("B", 1, 0) == b.layer_unit_steps("B", 1, 0)


def test_without_core_attn_the_attention_core_is_not_rerun_and_its_scores_stay():
    """[moe_act] alone: no rc.attn_core step; without flash attention the scores are kept as without recompute."""
    names = [s.name for s in build_plan(spec(["moe_act"])).layer_unit_steps("B", 1, 0)]
    assert "rc.attn_core" not in names
    assert "rc.attn_core" in [s.name for s in build_plan(spec(None)).layer_unit_steps("B", 1, 0)]
    unfused = spec([], flash=False)
    none = spec(None, recompute="none", flash=False)
    assert activation_bytes_per_layer(unfused.model, unfused.training, unfused.parallelism) == pytest.approx(
        activation_bytes_per_layer(none.model, none.training, none.parallelism))
    core = spec(None, flash=False)
    assert activation_bytes_per_layer(core.model, core.training, core.parallelism) < activation_bytes_per_layer(
        unfused.model, unfused.training, unfused.parallelism)


def test_layernorm_drops_the_pre_mlp_norm_output_and_reruns_the_norm():
    """Per MoE layer and microbatch: the norm's 16-bit output over the rank's s/t tokens (2·s·h/t bytes) is not kept,
    and the backward runs ln2's forward once more."""
    base, norm = spec(None), spec(["core_attn", "layernorm"])
    assert activations(base) - activations(norm) == pytest.approx(2 * 2 * S * H / T)  # 2 MoE layers
    a, b = build_plan(base), build_plan(norm)
    ln2 = next(o for o in moe_ops(norm.model, norm.training).pre if o.name == "ln2")
    cm = b.moe.cm
    assert b.moe.pre.bwd_s - a.moe.pre.bwd_s == pytest.approx(op_time(ln2, cm, T, 1, True, True, False))
    assert b.moe.pre.fwd_s == a.moe.pre.fwd_s


def test_moe_act_drops_the_activation_output_and_reruns_the_activation():
    """Per MoE layer and microbatch: the activation's 16-bit output (R_max rows of f_e) is not kept; the experts'
    backward runs the weighted activation's forward once more."""
    base, act = spec(None), spec(["core_attn", "moe_act"])
    a, b = build_plan(base), build_plan(act)
    r_max = b.moe.load(0, 0).r_max
    assert activations(base) - activations(act) == pytest.approx(2 * 2 * r_max * F)
    la, lb = a.moe.experts(Load(r_max, r_max)), b.moe.experts(Load(r_max, r_max))
    assert lb.fwd_s == la.fwd_s
    rerun = lb.bwd_s - la.bwd_s
    assert 0 < rerun < la.fwd_s / 4  # one memory-bound pass beside the GEMMs
    both = build_plan(spec(["layernorm", "moe_act"]))
    assert activations(base) - activations(spec(["core_attn", "layernorm", "moe_act"])) == pytest.approx(
        2 * 2 * S * H / T + 2 * 2 * r_max * F)
    assert both.moe.experts(Load(r_max, r_max)).bwd_s == pytest.approx(lb.bwd_s)


@pytest.mark.parametrize("modules, recompute, moe, why", [
    (["mlp"], "selective", True, "mlp: not simulated yet"),
    (["moe", "shared_experts"], "selective", True, "moe, shared_experts: not simulated yet"),
    (["moe_act"], "full", True, "it needs recompute: selective"),
    (["moe_act"], "selective", False, "the model has no model.moe"),
])
def test_what_is_not_simulated_or_means_nothing_is_refused(modules, recompute, moe, why):
    with pytest.raises(SpecError, match=why):
        spec(modules, recompute=recompute, moe=moe)


def test_import_megatron_reads_the_module_list():
    args = parse_args("pretrain_gpt.py --recompute-granularity selective --recompute-modules moe_act layernorm --bf16")
    assert args["--recompute-modules"] == "moe_act layernorm" and args["--bf16"] is True
    line = ("--num-layers 4 --hidden-size 1024 --num-attention-heads 16 --seq-length 1024 --global-batch-size 8 "
            "--vocab-size 32000 --tokenizer-type NullTokenizer --bf16 --recompute-granularity {} "
            "--recompute-modules core_attn layernorm")
    data, ignored = megatron_workload(line.format("selective"), gpus=8)
    assert data["training"]["recompute_modules"] == ["core_attn", "layernorm"] and "--recompute-modules" not in ignored
    data, ignored = megatron_workload(line.format("full"), gpus=8)  # inert without selective granularity
    assert "recompute_modules" not in data["training"] and "--recompute-modules" not in ignored


def test_the_search_keeps_the_modules_only_for_selective_layouts():
    sp = spec(["layernorm", "moe_act"])
    assert dependent_values(sp, t=2, sp=True, rc="selective")["training.recompute_modules"] == ["layernorm", "moe_act"]
    assert dependent_values(sp, t=2, sp=True, rc="full")["training.recompute_modules"] is None


def test_hardware_flops_count_the_attention_core_only_when_it_is_recomputed():
    from simcluster.costs.flops import hardware_flops_per_iteration, model_flops_per_iteration

    core, rest, none = spec(None), spec(["layernorm", "moe_act"]), spec(None, recompute="none")
    assert hardware_flops_per_iteration(rest.model, rest.training) == model_flops_per_iteration(
        none.model, none.training)
    assert hardware_flops_per_iteration(core.model, core.training) > model_flops_per_iteration(
        core.model, core.training)
