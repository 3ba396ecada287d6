"""Tensor-parallel communication beside the GEMMs (simcluster.plan.tp_overlap): Transformer Engine's userbuffers.

Source: NVIDIA/TransformerEngine ``initialize_ub`` at v1.12: ring exchange for the forward all-gathers, the
forward reduce-scatter pipelined in ``num_splits`` = 4 chunks (the last exposed), bulk overlap in the backward.
"""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.costs.contention import OVERLAP_COMPUTE_SLOWDOWN
from simcluster.plan import build_plan
from simcluster.plan.tp_overlap import TE_PIPELINE_SPLITS
from simcluster.run import simulate_workload
from simcluster.search.pass_time import PassTime
from simcluster.errors import SpecError

TP = ("parallelism.tensor=4", "parallelism.data=2", "parallelism.sequence_parallel=true", "model.layers=2",
      "training.global_batch=4", "model.hidden=4096", "model.heads=32")
ON = TP + ("parallelism.tp_comm_overlap=true",)


def _layer(plan, kind: str):
    return [s for key, s in plan.unit_steps(kind, 0) if key == 0]


def test_block_steps(tmp_path):
    """F: all-gather and 3/4 of the reduce-scatter beside the block, the last 1/4 after it; B: both beside."""
    plan = build_plan(make_spec(tmp_path, *ON))
    f = [(s.what, s.op, s.overlap, s.share) for s in _layer(plan, "F")]
    n = TE_PIPELINE_SPLITS
    block = [("tp", "all_gather", True, 1.0), ("tp", "reduce_scatter", True, (n - 1) / n),
             ("compute", "", False, 1.0), ("tp", "reduce_scatter", False, 1 / n)]
    assert f == block + block
    b = [(s.what, s.op, s.overlap) for s in _layer(plan, "B")]
    assert b == [("tp", "all_gather", True), ("tp", "reduce_scatter", True), ("compute", "", False)] * 2
    off = build_plan(make_spec(tmp_path, *TP, "parallelism.tp_grad_overlap=false"))
    assert not any(s.overlap for s in _layer(off, "F") + _layer(off, "B"))
    assert [s.share for s in _layer(off, "F") if s.what == "tp"] == [1.0] * 4


def test_estimate_exposes_only_the_last_chunk(tmp_path):
    """Compute far longer than the collectives: the analytical pass pays the forward's last reduce-scatter
    chunks (1/n of each block's bytes) and, of the rest, only the compute's slowdown beside it (the engine's
    contention: s × the side collectives' seconds)."""
    plan = build_plan(make_spec(tmp_path, *ON))
    coll = {"all_gather": 2e-5, "reduce_scatter": 4e-5}
    f, b = tuple(_layer(plan, "F")), tuple(_layer(plan, "B"))
    fwd = PassTime().add(f, lambda st: coll[st.op] * st.share)
    compute = sum(s.seconds for s in f if s.what == "compute")
    assert min(s.seconds for s in f if s.what == "compute") > 6e-5  # longer than what runs beside it
    assert fwd.tp == pytest.approx(2 * coll["reduce_scatter"] / TE_PIPELINE_SPLITS)
    side = sum(coll[s.op] * s.share for s in f if s.what == "tp" and s.overlap)
    assert fwd.compute == pytest.approx(compute + OVERLAP_COMPUTE_SLOWDOWN * side)
    assert PassTime().add(b, lambda st: coll[st.op] * st.share).tp == 0.0
    slow = PassTime().add(f, lambda st: 1.0)  # collectives outlast the compute: the block waits for them
    assert slow.compute == pytest.approx(2 * (1.0 + 1.0))


def test_simulated_step_hides_the_collectives(tmp_path):
    """The side collectives start with the block and the next block waits for them; the step is faster than
    with blocking collectives, by at most the collectives' time, and moves the same bytes."""
    on, off = simulate_workload(make_spec(tmp_path, *ON)), simulate_workload(make_spec(tmp_path, *TP))
    t_on, t_off = on.summary["iteration_time_s"], off.summary["iteration_time_s"]
    tp_on = sum(on.result.end[t.id] - on.result.start[t.id] for t in on.tasks.tasks
                if t.name.startswith("tp.") and 0 in t.ranks)
    assert t_off - tp_on < t_on < t_off
    layer_bytes = sum(t.nbytes for t in on.tasks.tasks
                      if t.name.startswith("tp.") and 0 in t.ranks and t.layer >= 0)
    plan = build_plan(make_spec(tmp_path, *ON))  # 2 microbatches · 2 layers · (F, B) · 2 blocks · (AG, RS)
    assert layer_bytes == pytest.approx(2 * 2 * 2 * 2 * 2 * plan.act_bytes)
    tasks = {t.name: t for t in on.tasks.tasks if 0 in t.ranks and t.microbatch == 0}
    gather, block = tasks["tp.all_gather fwd.attn L0"], tasks["fwd.attn L0"]
    assert gather.id not in block.deps  # beside the block, not before it
    nxt = tasks["tp.all_gather fwd.mlp L0"]
    last = tasks["tp.reduce_scatter fwd.attn.last L0"]
    assert block.id in last.deps and on.result.start[nxt.id] >= on.result.end[last.id] - 1e-12


@pytest.mark.parametrize("override", ["parallelism.tensor=1", "parallelism.sequence_parallel=false",
                                      "training.framework=deepspeed"])
def test_needs_megatron_sequence_parallel_tensor_groups(tmp_path, override):
    with pytest.raises(SpecError, match="parallelism.tp_comm_overlap: describes Transformer Engine"):
        make_spec(tmp_path, *ON, override, *(("parallelism.data=8",) if override.endswith("tensor=1") else ()))


def test_a_backward_unit_ends_when_the_collectives_beside_its_last_gemm_end(tmp_path):
    """Userbuffers' backward reduce-scatter runs beside the unit's last GEMM; the unit's send (and the next unit)
    waits for it, here where the tensor group spans two nodes on a slow network and the collective outlasts the
    GEMM."""
    spec = make_spec(tmp_path, "parallelism.tensor=16", "parallelism.pipeline=2", "parallelism.data=1",
                     "parallelism.sequence_parallel=true", "parallelism.tp_comm_overlap=true", "model.layers=2",
                     "model.hidden=2048", "model.heads=16", "training.global_batch=2", "cluster.nodes=4",
                     "cluster.inter_node.nic_bandwidth=2 Gb/s")
    out = simulate_workload(spec)
    tasks, res = out.tasks.tasks, out.result
    r = out.tasks.meta["representatives"][1]
    send = next(t for t in tasks if r in t.ranks and t.name == "send.bwd mb0")
    mine = [t for t in tasks if r in t.ranks and t.microbatch == 0 and t.phase in ("backward", "tp_comm")
            and res.end[t.id] <= res.start[send.id] + 1e-12]
    last = max((t for t in mine if t.stream == "compute" and t.duration > 0), key=lambda t: res.end[t.id])
    beside = [t for t in tasks if r in t.ranks and t.stream == "tp" and t.microbatch == 0
              and res.start[t.id] >= res.start[last.id] - 1e-12 and res.start[t.id] < res.end[last.id]]
    assert beside and max(res.end[t.id] for t in beside) > res.end[last.id]  # it outlasts the GEMM
    assert res.start[send.id] >= max(res.end[t.id] for t in beside) - 1e-12
