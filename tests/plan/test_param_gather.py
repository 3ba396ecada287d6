"""The weight all-gather beside the next forward (simcluster.plan.param_gather): Megatron-LM's
``--overlap-param-gather`` (core_r0.9.0 distributed_data_parallel.py: forward pre-hooks wait per bucket), NeMo's
``overlap_param_sync``."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.errors import SpecError
from simcluster.plan import build_plan
from simcluster.run import simulate_workload

ZERO1 = ("parallelism.data=4", "parallelism.pipeline=2", "parallelism.zero_stage=1", "model.layers=4",
         "training.global_batch=16", "model.tied_embeddings=false")
ON = ZERO1 + ("parallelism.overlap_param_gather=true",)


def test_the_first_forward_gathers_each_layer_before_its_compute(tmp_path):
    plan = build_plan(make_spec(tmp_path, *ON))
    first = plan.unit_steps("F", 0, 0)
    gathers = [(key, s) for key, s in first if s.what == "gather"]
    assert [key for key, _ in gathers] == [-1, 0, 1]  # the embedding, then each layer of the stage
    assert gathers[0][1].params == plan.params.embedding and gathers[1][1].params == 0.0  # 0: a layer's
    for key, s in gathers:
        nxt = next(t for k, t in first[first.index((key, s)) + 1:] if t.what == "compute")
        assert nxt.waits_params
    assert not [s for _, s in plan.unit_steps("F", 0, 1) if s.what == "gather"]  # later microbatches: none
    last = plan.unit_steps("F", 1, 0)
    assert [key for key, s in last if s.what == "gather"] == [2, 3, -2]  # the head's after the last layer
    assert not [s for _, s in build_plan(make_spec(tmp_path, *ZERO1)).unit_steps("F", 0, 0) if s.what == "gather"]


def test_no_gather_after_the_step_and_the_same_bytes(tmp_path):
    """Every stage all-gathers its weights once either way: after the optimizer step, or layer by layer beside
    the first forward; with the layers' weights most of the stage's (a small vocabulary) the iteration is
    shorter, by at most that gather (the first layer's gather stays exposed)."""
    small = ("model.vocab=1024",)
    on, off = simulate_workload(make_spec(tmp_path, *ON, *small)), simulate_workload(make_spec(tmp_path, *ZERO1, *small))

    def gathers(out):
        return [t for t in out.tasks.tasks if t.name.startswith("zero.all_gather") and 0 in t.ranks]
    after = gathers(off)
    assert [t.name for t in after] == ["zero.all_gather params"]
    beside = gathers(on)
    assert len(beside) == 3 and sum(t.nbytes for t in beside) == pytest.approx(after[0].nbytes)
    step = next(t for t in on.tasks.tasks if t.name == "optimizer.step" and 0 in t.ranks)
    assert all(on.result.end[t.id] <= on.result.start[step.id] for t in beside)
    t_on, t_off = on.summary["iteration_time_s"], off.summary["iteration_time_s"]
    gather_s = off.result.end[after[0].id] - off.result.start[after[0].id]
    assert t_off - gather_s - 1e-12 <= t_on < t_off


@pytest.mark.parametrize("zero", [0, 3])
def test_needs_zero_1_or_2(tmp_path, zero):
    with pytest.raises(SpecError, match="parallelism.overlap_param_gather: overlaps the weight all-gather"):
        make_spec(tmp_path, *ON, f"parallelism.zero_stage={zero}")


def test_experts_gather_beside_the_forward_on_their_own_dp_stream():
    """A mixture of experts with expert-data parallelism: the routed experts' gather starts with the iteration
    on stream dp-edp (counted with data parallelism in the lanes), not after the optimizer step."""
    from simcluster.reporting.shares import comm_class
    from simcluster.spec.workload import workload_from_data
    model = {"layers": 2, "hidden": 1024, "heads": 16, "seq_len": 1024, "vocab": 32000, "ffn_hidden": 2816,
             "mlp": "swiglu", "moe": {"experts": 16, "top_k": 2, "expert_ffn_hidden": 704}}
    spec = workload_from_data({"name": "moe", "model": model, "training": {"global_batch": 32},
                               "parallelism": {"pipeline": 1, "expert": 8, "zero_stage": 1,
                                               "overlap_param_gather": True},
                               "cluster": {"preset": "hgx-h800", "nodes": 2}})
    out = simulate_workload(spec)
    experts = [t for t in out.tasks.tasks if t.name == "zero.all_gather expert params"]
    assert experts and all(t.stream == "dp-edp" and not t.deps for t in experts)
    assert all(out.result.start[t.id] == 0.0 for t in experts)
    assert comm_class("dp-edp", "zero_comm", experts[0].name) == "zero"


def test_interleaved_dispatch_index():
    """Megatron-Core's interleaved schedule: chunks 0 and 1 before the first forward, chunk c ≥ 2 at the
    forward (c − 1)·p − s of stage s (schedules.py at core_r0.9.0)."""
    from simcluster.plan.param_gather import chunk_gather_dispatch
    assert chunk_gather_dispatch(0, 4, 0) is None and chunk_gather_dispatch(1, 4, 3) is None
    assert [chunk_gather_dispatch(c, 4, 0) for c in (2, 3)] == [4, 8]
    assert [chunk_gather_dispatch(c, 4, 3) for c in (2, 3)] == [1, 5]


INTERLEAVED = ("parallelism.data=2", "parallelism.pipeline=4", "parallelism.schedule=interleaved",
               "parallelism.virtual_stages=4", "parallelism.zero_stage=1", "model.layers=16",
               "training.global_batch=16", "model.tied_embeddings=false", "model.hidden=4096", "model.heads=32",
               "model.seq_len=512", "cluster.nodes=1")


def test_interleaved_gathers_chunk_by_chunk_aligned_across_stages(tmp_path):
    """Under the interleaved schedule each chunk's gathers are issued together: chunks 0 and 1 at the start
    of the iteration, chunk c ≥ 2 after the first task of the stage's forward (c − 1)·p − s; the later chunks'
    gathers, p + s − 1 forwards ahead of need, never hold a forward up, although each gather here takes longer
    than the layer's forward of one microbatch."""
    spec = make_spec(tmp_path, *INTERLEAVED, "parallelism.overlap_param_gather=true")
    out = simulate_workload(spec)
    tasks, res = out.tasks.tasks, out.result
    p = 4
    reps = out.tasks.meta["representatives"]
    for s, r in enumerate(reps):
        forwards = sorted((t for t in tasks if r in t.ranks and t.stream == "compute" and t.phase == "forward"
                           and t.microbatch is not None), key=lambda t: res.start[t.id])
        firsts = []  # the first task of each forward unit, in order
        for t in forwards:
            if not firsts or (t.chunk, t.microbatch) != (firsts[-1].chunk, firsts[-1].microbatch):
                firsts.append(t)
        for c in range(4):
            gathers = [t for t in tasks if r in t.ranks and t.name.startswith("zero.all_gather") and t.chunk == c]
            assert gathers, (s, c)
            assert all(g2.deps == (g1.id,) for g1, g2 in zip(gathers, gathers[1:]))  # one after another
            if c < 2:
                assert not gathers[0].deps
            else:
                anchor = firsts[(c - 1) * p - s]
                assert gathers[0].deps == (anchor.id,)  # stage s: s forwards before chunk c − 1 starts
            if c >= 1:  # done strictly before the chunk's first forward could start: it held nothing up
                use = next(t for t in firsts if t.chunk == c)
                assert max(res.end[g.id] for g in gathers) < res.start[use.id] - 1e-9, (s, c)
    layer = next(t for t in tasks if t.name.startswith("fwd.") and 0 in t.ranks)
    gather = next(t for t in tasks if t.name.startswith("zero.all_gather L") and 0 in t.ranks)
    assert res.end[gather.id] - res.start[gather.id] > res.end[layer.id] - res.start[layer.id]
