"""FSDP's root unit (simcluster.plan.fsdp_root): the embedding, final norm and output gathered once before the
forward and reduce-scattered after the whole backward, both exposed."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.costs.frameworks import FSDP_COPY_OUT_BYTES, FSDP_GRAD_CAST_BYTES, framework
from simcluster.plan import build_plan
from simcluster.plan.fsdp_root import RootUnit, fsdp_root
from simcluster.plan.plan import compute_model
from simcluster.run import simulate_workload

FSDP = ("parallelism.data=8", "parallelism.zero_stage=3", "model.layers=2", "training.global_batch=8",
        "model.tied_embeddings=false",
        "training.framework=pytorch")


def test_root_unit_closed_form(tmp_path):
    """r = embedding + head weights; copy-out 4·r B, the untied embedding's gradient cast 6·V·h B."""
    spec = make_spec(tmp_path, *FSDP)
    cm = compute_model(spec, spec.cluster.device)
    stack = framework("pytorch", 3)
    root = fsdp_root(stack, cm, 100e6, 60e6, False, 1, 8, 3)
    assert root.params == 160e6
    assert root.copy_out_s == pytest.approx(cm.memory_time(FSDP_COPY_OUT_BYTES * 160e6, "copy"), rel=1e-12)
    assert root.grad_cast_s == pytest.approx(cm.memory_time(FSDP_GRAD_CAST_BYTES * 100e6, "copy"), rel=1e-12)
    assert fsdp_root(stack, cm, 100e6, 60e6, True, 1, 8, 3).grad_cast_s == 0.0  # tied: cast with the output's GEMM
    # none without FSDP at ZeRO-3 with data parallelism on one stage
    assert fsdp_root(framework("pytorch", 2), cm, 100e6, 60e6, False, 1, 8, 2) == RootUnit()
    assert fsdp_root(framework("megatron", 3), cm, 100e6, 60e6, False, 1, 8, 3) == RootUnit()
    assert fsdp_root(framework("deepspeed", 3), cm, 100e6, 60e6, False, 1, 8, 3) == RootUnit()
    assert fsdp_root(stack, cm, 100e6, 60e6, False, 1, 1, 3) == RootUnit()
    assert fsdp_root(stack, cm, 100e6, 60e6, False, 2, 8, 3) == RootUnit()


def test_root_steps_frame_the_first_chunk(tmp_path):
    """F starts with the root's gather and copy-out; B ends with the gradient cast and the reduce-scatter."""
    plan = build_plan(make_spec(tmp_path, *FSDP))
    root = plan.params.embedding + plan.params.head
    assert plan.shape.root.params == pytest.approx(root)
    f = [s for _, s in plan.unit_steps("F", 0)]
    assert (f[0].what, f[0].params) == ("gather", root) and f[1].name == "zero.copy_out" and f[1].waits_params
    assert f[2].name == "fwd.embedding"
    b = [s for _, s in plan.unit_steps("B", 0)]
    assert [s.name for s in b[-3:]] == ["bwd.embedding", "zero.copy_in", "zero.reduce_scatter"]
    assert b[-1].params == root and b[-2].grads
    meg = build_plan(make_spec(tmp_path, *FSDP[:-1]))
    assert not [s for _, s in meg.unit_steps("F", 0) if s.what == "gather" and s.params]


def test_root_collectives_move_its_bytes_and_hold_the_step(tmp_path):
    """The root's all-gather moves r·2 B before the embedding runs; its reduce-scatter r·4 B (fp32) after the
    embedding's backward, and the optimizer waits for it."""
    spec = make_spec(tmp_path, *FSDP)
    plan = build_plan(spec)
    root = plan.params.embedding + plan.params.head
    out = simulate_workload(spec)
    tasks = {t.name: t for t in out.tasks.tasks if t.ranks[0] == 0 or 0 in t.ranks}
    start, end = out.result.start, out.result.end
    gather, rs = tasks["zero.all_gather L-1"], tasks["zero.reduce_scatter L-1"]
    assert gather.nbytes == pytest.approx(root * plan.dtype_bytes) and plan.dtype_bytes == 2
    assert rs.nbytes == pytest.approx(root * plan.grad_bytes) and plan.grad_bytes == 4
    assert start[gather.id] == 0.0 and start[tasks["fwd.embedding L-1"].id] >= end[gather.id]
    assert start[rs.id] >= end[tasks["bwd.embedding L-1"].id]
    assert start[tasks["optimizer.step"].id] >= end[rs.id] - 1e-12
