"""The output layer's weight gradient deferred to the pipeline flush (simcluster.costs.deferred_wgrad):
Megatron-Core's defer_embedding_wgrad_compute and wgrad_deferral_limit (core_r0.9.0)."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.costs.deferred_wgrad import deferred, held_bytes
from simcluster.errors import SpecError
from simcluster.plan import build_plan
from simcluster.plan.steps import HEAD_GRADS
from simcluster.run import simulate_workload

# a large vocabulary on a short model: the last stage's head is a big share of its work
BASE = ("parallelism.pipeline=4", "parallelism.tensor=2", "parallelism.sequence_parallel=true", "model.layers=8",
        "model.vocab=128000", "training.global_batch=32", "model.tied_embeddings=false", "cluster.nodes=2",
        "parallelism.data=2", "parallelism.zero_stage=1")
ON = BASE + ("parallelism.defer_embedding_wgrad_compute=true", "parallelism.wgrad_deferral_limit=10")


def test_counts_the_first_microbatches(tmp_path):
    spec = make_spec(tmp_path, *ON)
    assert spec.num_microbatches == 16 and deferred(spec.training, spec.parallelism) == 10
    every = make_spec(tmp_path, *ON, "parallelism.wgrad_deferral_limit=0")
    assert deferred(every.training, every.parallelism) == 16  # 0: all of them
    off = make_spec(tmp_path, *BASE)
    assert deferred(off.training, off.parallelism) == 0 and held_bytes(1, 1, 1, off.training, off.parallelism) == 0


@pytest.mark.parametrize("override", ["parallelism.pipeline=1", "training.framework=pytorch"])
def test_needs_megatron_and_a_pipeline(tmp_path, override):
    with pytest.raises(SpecError, match="parallelism.defer_embedding_wgrad_compute"):
        make_spec(tmp_path, *ON, override)


def test_head_backward_sheds_its_weight_gradient_while_deferred(tmp_path):
    plan = build_plan(make_spec(tmp_path, *ON))
    n, w_s, w_f = plan.deferred_wgrad
    assert n == 10 and w_s > 0 and w_f == pytest.approx(plan.blocks.head.bwd_flops / 2)
    last = plan.K - 1

    def head(mb):
        return next(s for key, s in plan.unit_steps("B", last, mb) if key == HEAD_GRADS and s.what == "compute")
    assert head(0).seconds == pytest.approx(plan.blocks.head.bwd_s - w_s) and not head(9).grads
    assert head(10).seconds == pytest.approx(plan.blocks.head.bwd_s) and head(15).grads
    assert plan.grads_produced(plan.p - 1)[-1][0] == HEAD_GRADS  # reduced last, after the flush


def test_flush_runs_the_deferred_gemms_and_the_head_reduction_waits(tmp_path):
    """One all-gather (sequence parallel) and one compute of n GEMMs after the last stage's last unit, on the last
    stage only; the head's gradient bucket waits for it; the iteration is shorter (the head is the bottleneck)."""
    on, off = simulate_workload(make_spec(tmp_path, *ON)), simulate_workload(make_spec(tmp_path, *BASE))
    plan = build_plan(make_spec(tmp_path, *ON))
    n, w_s, _ = plan.deferred_wgrad
    tasks, res = on.tasks.tasks, on.result
    drain = [t for t in tasks if t.name == "bwd.head.wgrad L-1"]
    last = on.tasks.meta["representatives"][-1]
    assert len(drain) == 1 and drain[0].ranks == (last,) and drain[0].duration == pytest.approx(n * w_s)
    mine = [t for t in tasks if last in t.ranks and t.stream == "compute" and t.phase == "backward"]
    assert res.start[drain[0].id] >= max(res.end[t.id] for t in mine if t is not drain[0]) - 1e-12
    buckets = [t for t in tasks if last in t.ranks and t.name.startswith("dp.")]
    assert buckets and any(drain[0].id in t.deps for t in buckets)
    assert on.summary["iteration_time_s"] < off.summary["iteration_time_s"]


def test_last_stage_holds_the_buffers(tmp_path):
    """Memory: each deferred microbatch's sequence-parallel input and vocabulary-parallel output gradient."""
    on, off = build_plan(make_spec(tmp_path, *ON)), build_plan(make_spec(tmp_path, *BASE))
    spec = on.spec
    m = spec.model
    want = 10 * 2 * (1 * m.seq_len * m.hidden / 2 + 1 * m.seq_len * m.vocab / 2)  # bf16, t = 2
    assert on.memory(3).buffers - off.memory(3).buffers == pytest.approx(want)
    assert held_bytes(m.seq_len, m.hidden, m.vocab, spec.training, spec.parallelism) == pytest.approx(want)
    assert all(on.memory(s).total == off.memory(s).total for s in range(3))
