"""Megatron-Core's selective recompute by submodule (``training.recompute_modules``, ``--recompute-modules``): what
each simulated module drops from the saved activations and adds to the backward, against their closed forms; what
the spec refuses; how ``import-megatron`` and the search carry it."""

from __future__ import annotations

import pytest

from simcluster.costs.memory import activation_bytes_per_layer
from simcluster.errors import SpecError
from simcluster.plan import build_plan
from simcluster.plan.costing import block_cost, op_time
from simcluster.plan.moe import Load
from simcluster.search.memory import dependent_values
from simcluster.spec.megatron import megatron_workload, parse_args
from simcluster.spec.workload import workload_from_data
from simcluster.workload.moe import moe_ops

H, S, E, K, F, T = 1024, 1024, 16, 2, 704, 2


def spec(modules: list[str] | None, recompute: str = "selective", flash: bool = True, moe: bool = True,
         shared: int = 0, mla: bool = False, parallel: bool = False, **par_extra):
    """Two MoE layers (or dense ones), tensor 2 with sequence parallelism, expert 8 over the data ranks; ``shared``
    shared experts; ``mla``: multi-latent attention."""
    model = {"layers": 2, "hidden": H, "heads": 16, "seq_len": S, "vocab": 32000, "ffn_hidden": 2816, "mlp": "swiglu"}
    if moe:
        model["moe"] = {"experts": E, "top_k": K, "expert_ffn_hidden": F, "shared_experts": shared}
    if parallel:
        model["parallel_block"] = True
    if mla:
        model.update(attention="mla", head_dim=64, mla={"kv_lora_rank": 256, "q_lora_rank": 384, "rope_head_dim": 32,
                                                         "v_head_dim": 64})
    training = {"global_batch": 16, "recompute": recompute, "flash_attention": flash}
    if modules is not None:
        training["recompute_modules"] = modules
    par = {"tensor": T, "sequence_parallel": True, "expert": 8 if moe else 1, "expert_tensor": 1 if moe else None,
           **par_extra}
    return workload_from_data({"name": "rm", "model": model, "training": training,
                               "parallelism": {k: v for k, v in par.items() if v is not None},
                               "cluster": {"preset": "dgx-h100", "nodes": 2}})


def activations(sp) -> float:
    """Stage 0's activations (one microbatch in flight; the loss's backward is the peak moment, so that what a
    module drops shows whole: its rerun's transient is tested apart)."""
    plan = build_plan(sp)
    assert plan.in_flight(0) == 1
    return plan.memory(0).activations


def rerun(sp, name: str) -> list:
    """The steps named ``name`` of layer 1's backward."""
    return [s for s in build_plan(sp).layer_unit_steps("B", 1, 0) if s.name == name]


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
    """Per MoE layer and microbatch: the norm's 16-bit output over the rank's s/t tokens (2·s·h/t bytes) is not kept;
    the backward runs ln2's forward once more, in phase recompute."""
    base, norm = spec(None), spec(["core_attn", "layernorm"])
    assert activations(base) - activations(norm) == pytest.approx(2 * 2 * S * H / T)  # 2 MoE layers
    b = build_plan(norm)
    ln2 = next(o for o in moe_ops(norm.model, norm.training).pre if o.name == "ln2")
    (step,) = rerun(norm, "rc.pre_mlp_norm")
    assert step.phase == "recompute" and step.seconds == pytest.approx(op_time(ln2, b.moe.cm, T, 1, True, True, False))
    assert b.moe.pre == build_plan(base).moe.pre
    assert not rerun(base, "rc.pre_mlp_norm")


def test_under_the_merged_1f1b_the_norm_reruns_after_the_combines_backward():
    """Megatron-Core's fine-grained schedule (moe_a2a_overlap) hooks the pre-MLP norm's rerun on the experts' output
    (fine_grained_callables.py): it runs once the combine's backward has delivered that gradient."""
    names = [s.name for s in build_plan(spec(["layernorm"], pipeline=1, moe_a2a_overlap=True)).layer_unit_steps(
        "B", 1, 0)]
    assert names[names.index("bwd.combine") + 1] == "rc.pre_mlp_norm"
    names = [s.name for s in build_plan(spec(["layernorm"], pipeline=1)).layer_unit_steps("B", 1, 0)]
    assert names.index("rc.pre_mlp_norm") < names.index("bwd.combine")


def test_moe_act_drops_the_activation_output_and_reruns_the_activation():
    """Per MoE layer and microbatch: the activation's 16-bit output (R_max rows of f_e) is not kept; the weighted
    activation's forward runs once more just before the experts' backward (the busiest rank's rows)."""
    base, act = spec(None), spec(["core_attn", "moe_act"])
    a, b = build_plan(base), build_plan(act)
    r_max = b.moe.load(0, 0).r_max
    assert activations(base) - activations(act) == pytest.approx(2 * 2 * r_max * F)
    la, lb = a.moe.experts(Load(r_max, r_max)), b.moe.experts(Load(r_max, r_max))
    assert (lb.fwd_s, lb.bwd_s) == (la.fwd_s, la.bwd_s)  # the rerun is a step of its own, in phase recompute
    names = [s.name for s in b.layer_unit_steps("B", 1, 0)]
    (step,) = rerun(act, "rc.moe_act")
    assert names.index("rc.moe_act") + 1 == names.index("bwd.experts") and step.phase == "recompute"
    assert step.seconds == b.moe.activation_s(b.moe.load(1, 0))
    assert 0 < step.seconds < la.fwd_s / 4  # one memory-bound pass beside the GEMMs
    both = build_plan(spec(["layernorm", "moe_act"]))
    assert activations(base) - activations(spec(["core_attn", "layernorm", "moe_act"])) == pytest.approx(
        2 * (2 * S * H / T + 2 * r_max * F))
    assert both.moe.experts(Load(r_max, r_max)).bwd_s == pytest.approx(lb.bwd_s)


def test_mlp_checkpoints_the_dense_mlp_with_its_tensor_collectives():
    """Dense layers: the MLP module (Transformer Engine's norm + fc1, and fc2) keeps only its input, the pre-MLP norm's
    input, so its SwiGLU tensors (6 bytes per element of f: gate, up, product) and fc1's input (the norm's output, 2
    bytes per element of h) leave the saved activations, s·(6·f + 2·h)/t per layer; the backward
    runs the MLP block's forward again with its sequence-parallel all-gather and reduce-scatter (phase recompute),
    and the hardware FLOPs count its GEMMs again, 2·B·s·3·h·f a layer. Inert on MoE layers (Megatron-Core)."""
    base, mlp = spec(None, moe=False), spec(["core_attn", "mlp"], moe=False)
    # the loss's moment peaks: both layers' drop shows
    assert activations(base) - activations(mlp) == pytest.approx(2 * (6 * 2816 + 2 * H) * S / T)
    steps = rerun(mlp, "rc.mlp")
    assert [(s.what, s.op) for s in steps] == [("tp", "all_gather"), ("compute", ""), ("tp", "reduce_scatter")]
    assert all(s.phase == "recompute" for s in steps)
    assert steps[1].seconds == pytest.approx(build_plan(mlp).blocks.mlp.fwd_s)
    from simcluster.costs.flops import hardware_flops_per_iteration
    extra = hardware_flops_per_iteration(mlp.model, mlp.training) - hardware_flops_per_iteration(
        base.model, base.training)
    assert extra == pytest.approx(2 * 16 * S * 3 * H * 2816 * 2)
    assert activations(spec(["core_attn", "mlp"])) == activations(spec(None))  # every layer MoE: nothing to do
    moe, plain = spec(["core_attn", "mlp"]), spec(None)
    assert hardware_flops_per_iteration(moe.model, moe.training) == hardware_flops_per_iteration(
        plain.model, plain.training)


def test_moe_reruns_the_whole_module_with_its_all_to_alls():
    """MoE layers: the module keeps only its input; its router, permutation, dispatch, experts, combine and
    unpermutation run again before its backward (phase recompute), not the norm before it nor the residual after."""
    base, moe = spec(None), spec(["core_attn", "moe"])
    p = build_plan(moe)
    r_max = p.moe.load(0, 0).r_max
    routed = r_max * (4 * H + 6 * F)  # a routed copy's input and output (2·h each), the expert's SwiGLU tensors
    assert activations(base) - activations(moe) == pytest.approx(2 * routed)
    names = [(s.name, s.phase) for s in build_plan(moe).layer_unit_steps("B", 1, 0) if s.name.startswith("rc.")]
    assert [n for n, _ in names] == ["rc.mlp", "rc.moe_in", "rc.dispatch", "rc.experts", "rc.combine", "rc.moe_out",
                                     "rc.mlp", "rc.attn_core"]
    assert {ph for _, ph in names} == {"recompute"}
    ops = moe_ops(moe.model, moe.training)
    (pre,) = [s for s in rerun(moe, "rc.moe_in")]
    cm = p.moe.cm
    assert pre.seconds == block_cost([o for o in ops.pre if o.name != "ln2"], cm, T, 1, True, True).fwd_s
    assert pre.seconds < p.moe.pre.fwd_s
    (post,) = rerun(moe, "rc.moe_out")
    assert post.seconds == block_cost([o for o in ops.post if o.name != "residual2"], cm, T, 1, True, True).fwd_s


def test_shared_experts_rerun_the_shared_mlp():
    """One shared expert of f_e: its SwiGLU tensors, 6·s·f_e/t bytes a layer, leave the saved activations (one layer's
    ); the backward runs its GEMMs again: 2·s·3·h·f_e/t FLOPs on a rank, with its tensor collectives."""
    base, sh = spec(None, shared=1), spec(["core_attn", "shared_experts"], shared=1)
    assert activations(base) - activations(sh) == pytest.approx(2 * 6 * S * F / T)
    steps = rerun(sh, "rc.shared_experts")
    assert [s.what for s in steps] == ["tp", "compute", "tp"]
    assert steps[1].flops == pytest.approx(2 * S * 3 * H * F / T) and steps[1].phase == "recompute"
    assert not rerun(spec(["core_attn", "shared_experts", "moe"], shared=1), "rc.shared_experts")  # moe has it


def test_mla_up_proj_and_core_attn_apart():
    """MLA: unset, the attention core and the up-projections rerun (DeepSeek-V3 §3.2.3); [core_attn] reruns the core
    only and keeps Q, K, V; [mla_up_proj] the latents' norms and up-projections only, dropping Q, K, V (2 bytes per
    element of a·(2·(d + d_R) + d_v)/t)."""
    legacy, core, up = spec(None, mla=True), spec(["core_attn"], mla=True), spec(["mla_up_proj"], mla=True)
    names = lambda sp: [s.name for s in build_plan(sp).layer_unit_steps("B", 1, 0) if s.name.startswith("rc.")]  # noqa
    assert names(legacy) == ["rc.attn_core", "rc.mla_up"]
    assert names(core) == ["rc.attn_core"] and names(up) == ["rc.mla_up"]
    qkv = 2 * 16 * (2 * (64 + 32) + 64) * S / T
    # and the up-projections' inputs (the normed latents, 2·(d_c' + d_c)) for the RoPE key (2·d_R), replicated
    assert activations(core) - activations(up) == pytest.approx(2 * (qkv + (2 * (384 + 256) - 2 * 32) * S / T))
    assert activations(legacy) == pytest.approx(activations(spec(["core_attn", "mla_up_proj"], mla=True)))
    (step,) = rerun(up, "rc.mla_up")
    assert step.flops == pytest.approx(2 * S * (384 * 16 * 96 + 256 * 16 * 128) / T)


def test_layernorm_under_mla_drops_the_input_norm_output():
    """MLA's input norm is a module of its own: its output, the down-projections' input (2·s·h/t with sequence
    parallelism), is dropped and the norm rerun; the MoE layers' pre-MLP norm as without MLA."""
    base, norm = spec(["mla_up_proj"], mla=True), spec(["mla_up_proj", "layernorm"], mla=True)
    assert activations(base) - activations(norm) == pytest.approx(2 * (2 * S * H / T + 2 * S * H / T))
    assert len(rerun(norm, "rc.input_norm")) == 1 and len(rerun(norm, "rc.pre_mlp_norm")) == 1


def test_a_rerun_holds_one_module_of_one_layer_again():
    """Away from the loss (the first of two stages, 1F1B): each module reruns just before its own backward, so the
    stage's peak holds one layer's largest dropped module again on top of the in-flight microbatches' activations:
    the drop is (in flight) × what a layer drops − the largest module's."""
    kw = {"pipeline": 2, "moe": False}
    base, mlp = spec(None, **kw), spec(["core_attn", "mlp"], **kw)
    plan = build_plan(mlp)
    n = plan.in_flight(0)
    per = (6 * 2816 + 2 * H) * S / T
    assert n > 1 and build_plan(base).memory(0).activations - plan.memory(0).activations == pytest.approx((n - 1) * per)
    from simcluster.costs.memory import rerun_transient_bytes
    assert rerun_transient_bytes(mlp.model, mlp.training, mlp.parallelism) == pytest.approx(per)
    assert rerun_transient_bytes(base.model, base.training, base.parallelism) == 0  # the core's: left out
    kw = {"pipeline": 2}
    base, two = spec(None, **kw), spec(["core_attn", "layernorm", "moe"], **kw)
    p = build_plan(two)
    r_max = p.moe.load(0, 0).r_max
    norm, routed = 2 * S * H / T, r_max * (4 * H + 6 * F)
    n = p.in_flight(0)
    assert build_plan(base).memory(0).activations - p.memory(0).activations == pytest.approx(
        n * (norm + routed) - max(norm, routed))


@pytest.mark.parametrize("modules, kw, why", [
    (["moe_act"], {"recompute": "full"}, "it needs recompute: selective"),
    (["moe_act"], {"moe": False}, "the model has no model.moe"),
    (["moe"], {"moe": False}, "the model has no model.moe"),
    (["shared_experts"], {}, "model.moe.shared_experts is 0"),
    (["mla_up_proj"], {}, "model.attention is mha, not mla"),
    (["moe"], {"moe_a2a_overlap": True, "pipeline": 1}, "moe cannot be recomputed with parallelism.moe_a2a_overlap"),
    (["mlp"], {"moe": False, "parallel": True}, "a parallel block"),
])
def test_what_means_nothing_or_megatron_core_refuses_is_refused(modules, kw, why):
    with pytest.raises(SpecError, match=why):
        spec(modules, **kw)


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


def test_import_megatron_writes_out_the_latent_attention_default():
    """Megatron-Core's selective granularity without --recompute-modules is [core_attn]; simcluster's unset list under
    mla also reruns the up-projections, so the importer writes Megatron-Core's default out."""
    line = ("--num-layers 4 --hidden-size 1024 --num-attention-heads 16 --seq-length 1024 --global-batch-size 8 "
            "--vocab-size 32000 --tokenizer-type NullTokenizer --bf16 --recompute-granularity selective "
            "--multi-latent-attention --q-lora-rank 384 --kv-lora-rank 256 --qk-head-dim 64 --qk-pos-emb-head-dim 32 "
            "--v-head-dim 64")
    data, _ = megatron_workload(line, gpus=8)
    assert data["model"]["attention"] == "mla" and data["training"]["recompute_modules"] == ["core_attn"]
    data, _ = megatron_workload(line + " --recompute-modules mla_up_proj mlp", gpus=8)
    assert data["training"]["recompute_modules"] == ["mla_up_proj", "mlp"]


def test_import_megatron_reads_the_deprecated_moe_layer_recompute():
    """--moe-layer-recompute: Megatron-Core makes the granularity selective and adds moe to the modules (refused
    with full granularity)."""
    line = ("--num-layers 4 --hidden-size 1024 --num-attention-heads 16 --seq-length 1024 --global-batch-size 8 "
            "--vocab-size 32000 --tokenizer-type NullTokenizer --bf16 --num-experts 8 --moe-router-topk 2 "
            "--expert-model-parallel-size 8 --moe-token-dispatcher-type alltoall --moe-layer-recompute")
    data, ignored = megatron_workload(line, gpus=8)
    assert data["training"]["recompute"] == "selective" and "--moe-layer-recompute" not in ignored
    assert data["training"]["recompute_modules"] == ["core_attn", "moe"]
    data, _ = megatron_workload(line + " --recompute-granularity selective --recompute-modules moe_act", gpus=8)
    assert data["training"]["recompute_modules"] == ["moe_act", "moe"]
    with pytest.raises(SpecError, match="full recompute granularity"):
        megatron_workload(line + " --recompute-granularity full", gpus=8)


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
