"""Megatron-Core's EP all-to-all overlap (``parallelism.moe_a2a_overlap``): merged 1F1B steps, their order, their
closed form, and the simulated timeline (simcluster.plan.ep_overlap)."""

from __future__ import annotations

import pytest

from simcluster.lowering.lower import LoweringOptions
from simcluster.plan.ep_overlap import backward_split, merged, pair_seconds, pair_steps, steady_pairs
from simcluster.plan.plan import build_plan
from simcluster.plan.schedules import SCHEDULES, microbatches_in_flight, peak_in_flight, warm_units
from simcluster.run import simulate_workload
from simcluster.spec import load_workload

SMALL = """\
name: ep-overlap
model: {layers: 4, hidden: 1024, heads: 16, seq_len: 2048, vocab: 32000, ffn_hidden: 2816, mlp: swiglu,
        moe: {experts: 16, top_k: 4, expert_ffn_hidden: 1408}}
training: {global_batch: 64, micro_batch: 1, precision: bf16}
parallelism: {tensor: 1, pipeline: 1, data: 16, expert: 16, zero_stage: 1}
cluster: {preset: dgx-h100, nodes: 2}
"""
ON = ["parallelism.moe_a2a_overlap=true"]
DELAY = ON + ["parallelism.delay_wgrad_compute=true"]
PIPE = ["parallelism.pipeline=2", "parallelism.virtual_stages=2", "parallelism.data=8", "parallelism.expert=8",
        "cluster.nodes=2", "model.layers=8"]


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


@pytest.mark.parametrize("schedule,p,v,m", [("1f1b", 1, 1, 4), ("interleaved", 2, 2, 4), ("interleaved", 4, 2, 8),
                                            ("interleaved", 4, 3, 12), ("interleaved", 2, 2, 2)])
def test_merged_steps_pair_independent_passes(schedule, p, v, m):
    """With Megatron-Core's extra warm-up forward every merged step's backward belongs to a forward that ran in an
    earlier step (never the one beside it), every unit is run once, and the activations held grow by that one
    forward; without it the last stage would merge a forward with its own backward. A stage whose units are all
    warm-up forwards merges nothing (2 stages, 2 chunks, 2 microbatches: the crosscheck's deadlock of session 31,
    where the last warm-up forward was merged with the first cool-down backward, which waits for it downstream)."""
    for s in range(p):
        order = SCHEDULES.get(schedule)(p, m, v, s, warm_extra=1)
        assert sorted(order) == sorted(SCHEDULES.get(schedule)(p, m, v, s))
        done: set[tuple[int, int]] = set()
        pairs = 0
        steady = steady_pairs(schedule, p, m, v, s)
        for item in merged(order, steady):
            if isinstance(item[0], tuple):
                (_, mbf, cf), (_, mbb, cb) = item
                assert (mbb, cb) in done and (mbf, cf) != (mbb, cb)
                done.add((mbf, cf))
                pairs += 1
            elif item[0] == "F":
                done.add(item[1:])
        assert pairs == m * v - min(2 * (p - s - 1) + (v - 1) * p + 1 if p > 1 else 1, m * v)
        assert microbatches_in_flight(schedule, p, m, v, s, 1) == -(-peak_in_flight(order) // v)
    plain = SCHEDULES.get(schedule)(p, m, v, p - 1)  # without the extra forward the last stage's first
    if p > 1 and m * v > warm_units(schedule, p, m, v, p - 1):  # backward follows its own forward
        assert any(plain[i][0] == "F" and plain[i][1:] == plain[i + 1][1:] for i in range(len(plain) - 1))


def test_a_pair_runs_in_megatron_cores_order(small):
    """Per layer pair: combine_b | dispatch_f → dispatch_b | combine_f on the all-to-all stream, each compute
    waiting for the all-to-all that feeds it; delayed weight gradients after dispatch_b (experts) and at the pair's
    end (attention), the chunk's first layer's after everything else of the backward. Nothing is lost or added."""
    plan = build_plan(load_workload(small, DELAY))
    steps = pair_steps(plan, 0, 2, 0, 1)
    a2a = [(k, s.tag) for k, _, s in steps if s.what == "a2a"]
    assert a2a == [("B", "bwd.combine"), ("F", "fwd.dispatch"), ("B", "bwd.dispatch"), ("F", "fwd.combine")] * 4
    assert all(s.overlap for _, _, s in steps if s.what == "a2a")
    joins = [(k, s.name, s.joins) for k, _, s in steps if s.joins]
    assert joins[:4] == [("B", "bwd.experts", "bwd.combine"), ("F", "fwd.experts", "fwd.dispatch"),
                         ("B", "bwd.moe_in", "bwd.dispatch"), ("F", "fwd.moe_out", "fwd.combine")]
    names = [(k, key, s.name) for k, key, s in steps if s.what == "compute"]
    assert names.index(("B", 3, "bwd.experts.wgrad")) == names.index(("B", 3, "bwd.experts")) + 1
    assert names[:2] == [("F", -1, "fwd.embedding"), ("B", -2, "bwd.head")]
    assert names[-3:] == [("B", 0, "bwd.attn.wgrad"), ("F", -2, "fwd.head"), ("B", -1, "bwd.embedding")]
    assert names.index(("B", 1, "bwd.attn.wgrad")) == names.index(("F", 2, "fwd.moe_out")) + 1
    sums = {k: sum(s.seconds for kk, _, s in steps if kk == k and s.what == "compute") for k in "FB"}
    assert sums["F"] == pytest.approx(sum(s.seconds for _, s in plan.unit_steps("F", 0, 2) if s.what == "compute"))
    assert sums["B"] == pytest.approx(sum(s.seconds for _, s in plan.unit_steps("B", 0, 1) if s.what == "compute"))
    assert sum(s.grads for _, _, s in steps) == sum(s.grads for _, s in plan.unit_steps("B", 0, 1))


@pytest.mark.parametrize("extra", [ON, DELAY])
def test_a_simulated_pair_is_its_closed_form(small, extra):
    """Without the compute's slowdown beside communication, one layer pair on the timeline (the forward of layer 1
    for microbatch 2 with the backward of layer 2 for microbatch 1) lasts exactly what pair_seconds gives with the
    all-to-alls' simulated durations."""
    spec = load_workload(small, extra)
    delay = "parallelism.delay_wgrad_compute=true" in extra
    tl = simulate_workload(spec, LoweringOptions(contention=False)).result.timeline
    r = tl[tl["rank"] == 0]
    start = r[(r.task == "bwd.moe_out L2") & (r.microbatch == 1)].start_s.iloc[0]
    end = r[(r.task == "bwd.attn.wgrad L2") & (r.microbatch == 1)].end_s.iloc[0] if delay else \
        r[(r.task == "fwd.moe_out L1") & (r.microbatch == 2)].end_s.iloc[0]
    a2a = {}
    for tag, layer, mb in (("fwd.dispatch", 1, 2), ("fwd.combine", 1, 2), ("bwd.combine", 2, 1), ("bwd.dispatch", 2, 1)):
        row = r[(r.task == f"ep.all_to_all {tag} L{layer}") & (r.microbatch == mb)].iloc[0]
        a2a[tag] = row.end_s - row.start_s
    plan = build_plan(spec)
    f = plan.layer_unit_steps("F", 1, 2)
    if delay:
        b, w_mlp, w_attn, _ = backward_split(plan.moe, 2, 1, plan.layer_blocks(2), plan.layer_shape(2))
    else:
        b, w_mlp, w_attn = plan.layer_unit_steps("B", 2, 1), None, None
    assert end - start == pytest.approx(pair_seconds(f, b, w_mlp, w_attn, lambda st: a2a[st.tag]), rel=1e-9)


def test_overlap_hides_the_all_to_alls_without_changing_the_work(small):
    """Experts over two nodes (16-way): the merged steps hide most of the exposed all-to-all time (11.7 → 2.9 ms of a
    40 ms step here) and the step gets shorter; FLOPs, microbatches and tokens stay; one more microbatch is held."""
    off = simulate_workload(load_workload(small)).summary
    on = simulate_workload(load_workload(small, DELAY))
    s = on.summary
    ep_off = off["iteration_time_s"] - s["iteration_time_s"]
    assert ep_off > 0.1 * off["iteration_time_s"]
    assert s["model_flops_per_iteration"] == off["model_flops_per_iteration"]
    assert s["peak_memory_bytes"] > off["peak_memory_bytes"]
    exposed = [b["exposed_ep_comm"] for b in on.details["breakdown"]]
    assert max(exposed) < 0.1 * s["iteration_time_s"]


@pytest.mark.parametrize("extra", [ON, DELAY])
def test_interleaved_pipeline_with_merged_steps_keeps_its_invariants(small, extra):
    """Two stages of two chunks each: the timeline passes the engine's invariants (simulate_workload checks them),
    every forward and backward unit runs once per microbatch and chunk, and sends follow their pass."""
    out = simulate_workload(load_workload(small, PIPE + extra))
    tl = out.result.timeline
    r = tl[(tl["rank"] == 0) & (tl.stream == "compute")]
    units = {(row.phase, row.microbatch, row.layer) for row in r.itertuples() if row.phase in ("forward", "backward")
             and row.layer >= 0}
    assert len({(mb, layer) for ph, mb, layer in units if ph == "forward"}) == 8 * 4  # m · layers on stage 0
    sends = tl[(tl["rank"] == 0) & (tl.kind == "send")]
    assert len(sends) == 8 * 2 + 8  # stage 0 sends both chunks' activations on and chunk 1's gradients back
    for send in sends.itertuples():  # each after the last task of its pass (the delayed weight gradients apart)
        kind = "forward" if send.stream == "pp-fwd" else "backward"
        before = r[(r.phase == kind) & (r.microbatch == send.microbatch) & (r.end_s <= send.start_s + 1e-12)]
        assert len(before)


@pytest.mark.parametrize("keys,fragment", [
    (["parallelism.delay_wgrad_compute=true"], "needs moe_a2a_overlap"),
    (ON + ["training.framework=deepspeed"], "framework deepspeed"),
    (ON + ["parallelism.expert=1"], "parallelism.expert > 1"),
    (ON + ["parallelism.pipeline=2", "parallelism.data=8", "parallelism.expert=8"], "interleaved"),
    (ON + ["parallelism.schedule=dualpipe"], "merged 1F1B"),
    (ON + ["training.recompute=full"], "full recompute"),
])
def test_what_megatron_core_refuses_is_refused(small, keys, fragment):
    from simcluster.errors import SpecError
    with pytest.raises(SpecError, match=fragment):
        load_workload(small, keys)


def test_a_stage_of_warm_up_forwards_merges_nothing(small):
    """Two microbatches on 2 stages × 2 chunks: stage 0's four units are all warm-up forwards, so nothing merges there
    and the step completes (merging its last forward with its first backward deadlocked: the backward waits for a
    gradient that needs that forward's output, which a merged step sends only at its end)."""
    spec = load_workload(small, PIPE + DELAY + ["training.global_batch=16"])
    plan = build_plan(spec)
    assert plan.m == 2 and [steady_pairs(plan.schedule, 2, 2, 2, s) for s in (0, 1)] == [0, 1]
    assert simulate_workload(spec).summary["iteration_time_s"] > 0
