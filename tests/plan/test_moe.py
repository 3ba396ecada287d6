"""Mixture of experts in the plan: FLOPs of active parameters, the balanced closed form, the slowest
expert-parallel rank setting the pace, the expert grid (simcluster.plan.moe)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simcluster.costs import efficiency as eff
from simcluster.costs import moe as M
from simcluster.lowering.lower import LoweringOptions
from simcluster.plan import build_plan
from simcluster.plan.grid import RankGrid
from simcluster.plan.moe import expert_data_group, expert_group
from simcluster.run import simulate_workload
from simcluster.spec.workload import workload_from_data

MOE_STEPS = ("moe_in", "experts", "moe_out")


def moe_spec(moe: dict | None = None, nodes: int = 1, preset: str = "hgx-h800", training: dict | None = None,
             **par: object):
    model = {"layers": 2, "hidden": 1024, "heads": 16, "seq_len": 1024, "vocab": 32000, "ffn_hidden": 2816,
             "mlp": "swiglu", "moe": {"experts": 16, "top_k": 2, "expert_ffn_hidden": 704, **(moe or {})}}
    return workload_from_data({"name": "moe", "model": model, "training": training or {"global_batch": 2 * 8 * nodes},
                               "parallelism": {"pipeline": 1, "expert": 8, **par},
                               "cluster": {"preset": preset, "nodes": nodes}})


@pytest.mark.parametrize("tensor, expert", [(1, 8), (2, 4)])
def test_moe_layer_flops_are_the_active_parameter_formula(tensor, expert):
    spec = moe_spec({"shared_experts": 1}, nodes=2, tensor=tensor, expert=expert, sequence_parallel=tensor > 1)
    plan = build_plan(spec)
    steps = plan.layer_unit_steps("F", 1, 0)
    mlp = sum(s.flops for s in steps if s.what == "compute" and s.name.split(".")[1] in MOE_STEPS)
    tokens = spec.training.micro_batch * spec.model.seq_len
    # the tensor group's ranks together: router h·E + (top_k + shared)·3·h·f_e, 2 FLOPs each, per token
    h, E, k, f = 1024, 16, 2, 704
    assert mlp * tensor == pytest.approx(tokens * 2 * (h * E + (k + 1) * 3 * h * f), rel=1e-12)
    assert mlp * tensor == pytest.approx(tokens * M.moe_mlp_flops_per_token(spec.model), rel=1e-12)
    assert sum(s.flops for s in plan.layer_unit_steps("B", 1, 0) if s.what == "compute"
               and s.name.split(".")[1] in MOE_STEPS) == pytest.approx(2 * mlp)


def test_mixtral_parameter_counts_match_the_published_ones():
    # Jiang et al. 2024 (Mixtral of Experts, §2): 47B parameters, 13B active per token
    spec = workload_from_data({"name": "m", "model": {
        "layers": 32, "hidden": 4096, "heads": 32, "kv_heads": 8, "seq_len": 4096, "vocab": 32000,
        "ffn_hidden": 14336, "mlp": "swiglu", "tied_embeddings": False, "moe": {"experts": 8, "top_k": 2}},
        "training": {"global_batch": 8}, "cluster": {"preset": "dgx-h100"}})
    assert M.total_params(spec.model) == pytest.approx(46.7e9, rel=0.01)
    assert M.active_params(spec.model) == pytest.approx(12.9e9, rel=0.01)


def _grouped(cm, n, m, nn, kk):
    """E/ep GEMMs in one kernel, each at the device's curve (its calibration, its sustained clock) at the
    per-expert shape."""
    cal = cm.calibration
    e = eff.gemm_body_efficiency(m, nn, kk, cal.gemm_eff_max * cm.clock_ratio, cal.gemm_size_half)
    body = cm.roofline_time(2.0 * m * nn * kk, cm.gemm_bytes(m, nn, kk), e, cal.bandwidth_fraction("copy"))
    return cm.kernel_time(n * body)


def _experts_fwd(plan, m):
    """Forward seconds of a rank's E/ep experts at m tokens each (the balanced closed form): with NCCL's all-to-all
    and E/ep > 1 the received copies sorted by local expert and back first (two copies of n·m·h elements)."""
    cm, n, h, f = plan.cm, plan.moe.local, 1024, 704
    act = cm.memory_time(2 * n * m * (2 * f + f), "elementwise")
    sort = 2 * cm.memory_time(2 * 2 * n * m * h, "copy") if n > 1 else 0.0
    return sort + _grouped(cm, n, m, 2 * f, h) + _grouped(cm, n, m, h, f) + act


def test_the_alltoall_dispatcher_sorts_the_received_copies_by_local_expert():
    """Megatron-Core's alltoall dispatcher receives the copies grouped by source rank and sorts them by local expert
    before the GEMMs and back after (sort_chunks_by_idxs): two copies of the R·h received elements a pass, forward
    and backward (their gradients). DeepEP's and HybridEP's tokens arrive per rank and are expanded into expert order
    by the permutation already costed; with one expert a rank there is nothing to sort."""
    balanced = 8 * 1024 * 2 // 16
    nccl, deepep = (build_plan(moe_spec(moe_dispatcher=d)) for d in ("alltoall", "deepep"))
    assert nccl.moe.sorts and not deepep.moe.sorts
    load = nccl.moe.load(0, 0)
    a, b = nccl.moe.experts(load), deepep.moe.experts(load)
    sort = 2 * nccl.cm.memory_time(2 * 2 * 2 * balanced * 1024, "copy")
    assert a.fwd_s - b.fwd_s == pytest.approx(sort, rel=1e-12)
    assert a.bwd_s - b.bwd_s == pytest.approx(sort, rel=1e-12) and a.wgrad_s == b.wgrad_s
    one = build_plan(moe_spec({"experts": 8}))
    assert one.moe.local == 1 and not one.moe.sorts


def test_expert_biases_add_fc2s_weighted_bias_expert_by_expert():
    """model.moe.expert_bias (GPT-OSS): each expert holds n_up + h more parameters, and fc2's bias is added weighted by
    the probabilities in eager PyTorch (TEGroupedMLP._apply_bias): 2d + 24 bytes per element of the R·h output forward,
    2d + 32 backward (costs.moe.weighted_bias_bytes)."""
    assert M.weighted_bias_bytes(2) == (28, 36)
    plain, biased = (build_plan(moe_spec({"expert_bias": b}, moe_dispatcher="deepep")) for b in (False, True))
    assert M.expert_params(biased.spec.model) - M.expert_params(plain.spec.model) == 2 * 704 + 1024
    load = plain.moe.load(0, 0)
    a, b = plain.moe.experts(load), biased.moe.experts(load)
    cm, elems = plain.cm, 2 * (8 * 1024 * 2 // 16) * 1024  # two local experts' copies × h
    assert b.fwd_s - a.fwd_s == pytest.approx(cm.memory_time(28 * elems, "elementwise"), rel=1e-12)
    assert b.bwd_s - a.bwd_s == pytest.approx(cm.memory_time(36 * elems, "elementwise"), rel=1e-12)
    assert b.wgrad_s == a.wgrad_s and b.fwd_flops == a.fwd_flops


def test_unfused_weighted_activation_runs_its_eager_kernels():
    """TransformerConfig's default bias_activation_fusion = False (training.fused_kernels: false): the SwiGLU, the
    product with the fp32 probabilities and the cast back run as separate kernels, 7d + 8 bytes per f_e element
    forward and 16d + 28 backward (costs.moe.weighted_activation_bytes) instead of the fused kernel's 3d and 6d."""
    assert M.weighted_activation_bytes(True, 2, True) == (6, 12)
    assert M.weighted_activation_bytes(False, 2, True) == (4, 8)
    assert M.weighted_activation_bytes(True, 2, False) == (22, 60)
    assert M.weighted_activation_bytes(False, 2, False) == (16, 40)
    fused, eager = (build_plan(moe_spec(training={"global_batch": 16, "fused_kernels": v})) for v in (None, False))
    load = fused.moe.load(0, 0)
    a, b = fused.moe.experts(load), eager.moe.experts(load)
    cm, elems = fused.cm, 2 * (8 * 1024 * 2 // 16) * 704  # two local experts' copies × f_e
    assert b.fwd_s - a.fwd_s == pytest.approx(cm.memory_time(22 * elems, "elementwise")
                                              - cm.memory_time(6 * elems, "elementwise"), rel=1e-12)
    assert b.bwd_s - a.bwd_s == pytest.approx(cm.memory_time(60 * elems, "elementwise")
                                              - 2 * cm.memory_time(6 * elems, "elementwise"), rel=1e-12)


@pytest.mark.parametrize("capacity", [None, 1.0])
def test_uniform_router_is_the_balanced_closed_form(capacity):
    spec = moe_spec({"capacity_factor": capacity})
    plan = build_plan(spec)
    tokens = 1024  # b·s per rank; 8 ranks route 8·1024·2 copies over 16 experts
    balanced = 8 * tokens * 2 / 16
    for layer in range(2):
        for mb in range(plan.m):
            load = plan.moe.load(layer, mb)
            assert load.r_max == load.r_mean == 2 * balanced  # two experts per rank
    out = simulate_workload(spec, LoweringOptions(ideal_network=True, include_optimizer=False,
                                                  include_embedding_head=False))
    tl = out.result.timeline
    experts = tl[(tl["rank"] == 0) & tl["task"].str.startswith("fwd.experts")]
    assert len(experts) == 2 * plan.m
    assert (experts["end_s"] - experts["start_s"]).to_numpy() == pytest.approx(_experts_fwd(plan, int(balanced)),
                                                                               rel=1e-12)


def test_experts_run_at_the_devices_own_gemm_curve():
    """On an A100 the grouped GEMMs take the A100's calibrated ceiling (its MAMF ratio over the H100 fit), not the
    H100 curve at the A100's peak; on an H800 the H100's sustained clock (1830/1980)."""
    a100 = build_plan(moe_spec(preset="dgx-a100-80gb"))
    assert a100.cm.calibration.gemm.ratio > 1.0 and a100.cm.clock_ratio == 1.0
    balanced = 8 * 1024 * 2 // 16
    assert a100.moe.experts(a100.moe.load(0, 0)).fwd_s == pytest.approx(_experts_fwd(a100, balanced), rel=1e-12)
    h800 = build_plan(moe_spec())
    assert h800.cm.clock_ratio == pytest.approx(1830 / 1980)


def test_with_skew_the_slowest_rank_sets_the_pace():
    skewed = moe_spec({"load_imbalance": {"distribution": "zipf", "skew": 1.0, "seed": 7}})
    plan = build_plan(skewed)
    imb = skewed.model.moe.load_imbalance
    out = simulate_workload(skewed, LoweringOptions(ideal_network=True, include_optimizer=False,
                                                    include_embedding_head=False))
    tl = out.result.timeline
    rows = tl[(tl["rank"] == 0) & tl["task"].str.startswith("fwd.experts")]
    balanced = _experts_fwd(plan, 1024)
    for _, row in rows.iterrows():
        loads = np.full(16, 0.0)
        shares = np.arange(1, 17, dtype=float) ** -1.0
        rng = np.random.default_rng([7, int(row["layer"]), int(row["microbatch"])])
        shares = shares[rng.permutation(16)]
        loads = 8 * 1024 * 2 * shares / shares.sum()
        busiest = loads.reshape(8, 2).sum(axis=1).max()  # ranks hold two consecutive experts each
        assert busiest == pytest.approx(M.rank_loads(M.expert_loads(imb, 16, 16384, int(row["layer"]),
                                                                    int(row["microbatch"])), 8, None).max())
        lost = tl[(tl["rank"] == 0) & (tl["task"] == f"fwd.imbalance L{int(row['layer'])}")
                  & (tl["microbatch"] == row["microbatch"])]
        assert len(lost) == 1 and lost["phase"].iloc[0] == "imbalance" and lost["flops"].iloc[0] == 0
        assert lost["start_s"].iloc[0] == pytest.approx(row["end_s"])  # right after the experts at the mean load
        secs = row["end_s"] - row["start_s"] + lost["end_s"].iloc[0] - lost["start_s"].iloc[0]
        assert secs == pytest.approx(_experts_fwd(plan, math.ceil(busiest / 2)), rel=1e-12)
        assert secs > balanced
    assert out.details["breakdown"][0]["moe_imbalance"] > 0
    # the draws are deterministic and differ per layer and microbatch
    assert plan.moe.load(0, 0) == build_plan(skewed).moe.load(0, 0) != plan.moe.load(1, 0)


def test_capacity_factor_drops_the_overflow():
    spec = moe_spec({"capacity_factor": 1.0, "load_imbalance": {"distribution": "zipf", "skew": 2.0}})
    load = build_plan(spec).moe.load(0, 0)
    assert load.r_max <= 2 * 1024 + 1e-9  # two experts per rank, each capped at 8·1024·2/16
    assert load.r_mean < 2 * 1024


def test_expert_grid_is_megatron_cores():
    grid = RankGrid(t=2, c=1, d=8, p=2)  # 16 ranks per stage: etp 2 × ep 4 × edp 2
    assert expert_group(grid, 2, 4, 21) == tuple(range(16, 24))
    assert expert_data_group(grid, 2, 4, 21) == (21, 29)
    assert expert_data_group(grid, 1, 8, 3) == (3, 11)


def test_dualpipe_overlaps_each_layers_all_to_all_with_its_compute():
    spec = moe_spec(schedule="dualpipe")
    plan = build_plan(spec)
    f = plan.layer_unit_steps("F", 0, 0)
    assert [s.what for s in f[:2]] == ["a2a", "a2a"] and all(s.overlap for s in f[:2])
    computes = [s for s in f if s.what == "compute"]
    assert computes[-1].overlap and not any(s.overlap for s in computes[:-1])
    out = simulate_workload(spec, LoweringOptions(include_optimizer=False, include_embedding_head=False))
    tl = out.result.timeline
    rows = tl[(tl["rank"] == 0) & (tl["microbatch"] == 0) & (tl["layer"] == 0)]
    fwd = rows[rows["task"].str.startswith("fwd.")].sort_values("start_s")
    a2a = rows[rows["task"].str.startswith("ep.all_to_all fwd.")]
    body = fwd.iloc[:-1]
    # the layer: max(compute before its last step, the two all-to-alls) + its last step
    start = fwd["start_s"].min()
    expect = max(body["end_s"].max(), a2a["end_s"].max()) - start + (fwd["end_s"].iloc[-1] - fwd["start_s"].iloc[-1])
    assert fwd["end_s"].max() - start == pytest.approx(expect, rel=1e-9)
    assert a2a["start_s"].min() == pytest.approx(start)
    blocking = simulate_workload(moe_spec(), LoweringOptions(include_optimizer=False, include_embedding_head=False))
    assert out.summary["iteration_time_s"] < blocking.summary["iteration_time_s"]


def test_node_limited_routing_sends_one_copy_per_node_at_most_m_nodes():
    # 16 ranks on two nodes, top-8: a token crosses InfiniBand once per node, at most node_limit nodes
    base = {"top_k": 8, "experts": 16}
    plain = build_plan(moe_spec(base, nodes=2, expert=16)).moe
    limited = build_plan(moe_spec({**base, "router": "node_limited", "node_limit": 1}, nodes=2, expert=16)).moe
    assert plain.a2a_bytes == 1024 * 8 * 1024 * 2  # τ·k·h·2 bytes
    assert limited.a2a_bytes == pytest.approx(plain.a2a_bytes * 1 / 8)
    both = build_plan(moe_spec({**base, "router": "node_limited", "node_limit": 4}, nodes=2, expert=16)).moe
    assert both.a2a_bytes == pytest.approx(plain.a2a_bytes * 2 / 8)  # only two nodes to reach
    # in one node nothing crosses InfiniBand: every copy; nor with Megatron-Core's groups (its alltoall sends each copy)
    one = build_plan(moe_spec({**base, "router": "node_limited", "node_limit": 1}, expert=8)).moe
    assert one.a2a_bytes == 1024 * 8 * 1024 * 2
    groups = build_plan(moe_spec({**base, "router": "node_limited", "node_limit": 1, "router_groups": 2}, nodes=2,
                                 expert=16)).moe
    assert groups.a2a_bytes == plain.a2a_bytes


def test_expert_memory_is_sharded_over_expert_parallel_and_expert_data_ranks():
    # 16 GPUs, expert 4: 16 experts, 4 per rank, expert-data 4; ZeRO-1 shards expert states 4 ways
    spec = moe_spec({"expert_ffn_hidden": 704}, nodes=2, expert=4, zero_stage=1)
    plan = build_plan(spec)
    mp = plan.moe
    assert (mp.ep, mp.etp, mp.edp, mp.local) == (4, 1, 4, 4)
    assert mp.routed_params == 4 * 3 * 1024 * 704
    again = build_plan(moe_spec({"expert_ffn_hidden": 704}, nodes=2, expert=4, zero_stage=1)).memory(0)
    one = plan.memory(0)
    assert one == again  # deterministic
    # two MoE layers on the stage: weights 2 B, gradients 4 B (Megatron's fp32 main_grad), optimizer 12 B / edp
    # per routed parameter
    routed = 2 * mp.routed_params
    no_experts = one.weights - routed * 2
    assert no_experts > 0 and one.gradients - routed * 4 == pytest.approx(2 * no_experts)
    assert plan.expert_params(0) == routed


def test_expert_tensor_parallelism_runs_and_counts_the_same_flops():
    t1 = simulate_workload(moe_spec(nodes=2, expert=8))
    t2 = simulate_workload(moe_spec(nodes=2, tensor=2, expert=4, sequence_parallel=True))
    assert t2.tasks.meta["fidelity"] == "symmetric"
    f1, f2 = (o.summary["model_flops_per_iteration"] for o in (t1, t2))
    assert f2 == pytest.approx(f1, rel=0.01)  # the same model and batch: the same active FLOPs


@pytest.mark.parametrize("recipe", ["delayed", "current"])
def test_fp8_experts_cast_each_tensor_once_under_transformer_engines_recipes(recipe):
    """Per-tensor FP8 (TE's GroupedLinear, as its Linear): the forward casts the experts' input, the activation
    between the two GEMMs and both weights once, row- and column-wise; the backward casts the two output
    gradients; no grouped GEMM quantizes its operands (blockwise, DeepSeek-V3's scheme, quantizes both operands
    of every GEMM instead)."""
    spec = moe_spec(preset="dgx-h100")
    data = spec.model_dump(mode="json", exclude_none=True)
    data["training"].update(precision="fp8", fp8_recipe=recipe)
    plan = build_plan(workload_from_data(data))
    cm, n, h, f, m = plan.cm, plan.moe.local, 1024, 704, 8 * 1024 * 2 // 16
    up = 2 * f

    def body(mm, nn, kk):
        return cm.kernel_time(n * cm.gemm_body_time(mm, nn, kk))

    def cast(el):
        return cm.quantize_time(n * el, layouts=2)

    act = cm.memory_time(2 * n * m * (up + f), "elementwise")
    sort = 2 * cm.memory_time(2 * 2 * n * m * h, "copy")  # the 16-bit copies sorted by local expert and back
    cost = plan.moe.experts(plan.moe.load(0, 0))
    assert cm.fp8_per_tensor
    assert cost.fwd_s == pytest.approx(sort + body(m, up, h) + body(m, h, f) + act + cast(m * h) + cast(m * f)
                                       + cast(h * up) + cast(f * h), rel=1e-12)
    wgrad = body(up, h, m) + body(h, f, m)
    assert cost.wgrad_s == pytest.approx(wgrad, rel=1e-12)
    assert cost.bwd_s == pytest.approx(sort + body(m, h, up) + body(m, f, h) + wgrad + 3 * act + cast(m * h)
                                       + cast(m * up),
                                       rel=1e-12)


def test_details_say_how_the_tokens_are_dispatched():
    """details.json's moe.dispatch: the dispatcher, S per rank, whether the copies are sorted by local expert (NCCL's
    all-to-all with two experts a rank) and a deduplicating dispatcher's shares of S (HybridEP in one node: nothing over
    InfiniBand, NVLink 8·P_rank/2 with P_rank = 1 − C(14, 2)/C(16, 2))."""
    opts = LoweringOptions(ideal_network=True, include_optimizer=False, include_embedding_head=False)
    nccl = simulate_workload(moe_spec(), opts).details["moe"]["dispatch"]
    assert nccl == {"dispatcher": "alltoall", "bytes_per_rank": 1024 * 2 * 1024 * 2, "sorted_by_local_expert": True,
                    "infiniband_share": None, "nvlink_share": None}
    hybrid = simulate_workload(moe_spec(moe_dispatcher="hybridep"), opts).details["moe"]["dispatch"]
    assert not hybrid["sorted_by_local_expert"] and hybrid["infiniband_share"] == 0.0  # one node
    assert hybrid["nvlink_share"] == pytest.approx(8 * (1 - math.comb(14, 2) / math.comb(16, 2)) / 2)
