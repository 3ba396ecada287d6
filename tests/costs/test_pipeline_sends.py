"""Pipeline sends per stack: blocking or overlapped, split over the tensor ranks, gathered on receipt
(simcluster.costs.frameworks, "Pipeline sends")."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.costs.frameworks import framework
from simcluster.costs.pipeline_sends import pipeline_sends
from simcluster.errors import SpecError
from simcluster.plan import build_plan
from simcluster.run import simulate_workload

PIPE = ("parallelism.tensor=2", "parallelism.pipeline=2", "parallelism.data=2", "training.global_batch=8",
        "model.layers=4")


@pytest.mark.parametrize(("name", "schedule", "sp", "want"), [
    ("megatron", "1f1b", False, (True, False, False)),  # Megatron-Core: whole activation, blocking 1F1B
    ("megatron", "interleaved", False, (False, False, False)),  # --overlap-p2p-communication (default since 2023)
    ("megatron", "1f1b", True, (True, True, False)),  # sequence parallel: already split, nothing to gather
    ("deepspeed", "1f1b", False, (True, True, True)),  # is_pipe_partitioned: PartitionedTensor.full()
    ("pytorch", "1f1b", False, (False, False, False)),
    ("jax", "1f1b", False, (False, True, False)),  # XLA moves the sharded activation
    ("megatron", "dualpipe", False, (False, False, False)),  # DualPipe hides its sends (DeepSeek-V3 §3.2.1)
    ("deepspeed", "dualpipe", False, (False, True, True)),
])
def test_stack_defaults(name, schedule, sp, want):
    s = pipeline_sends(framework(name), schedule, sp)
    assert (s.blocking, s.split, s.gather) == want


def test_overrides_win():
    s = pipeline_sends(framework("megatron"), "interleaved", False, overlap=False, scatter_gather=True)
    assert (s.blocking, s.split, s.gather) == (True, True, True)


def test_send_bytes_are_the_activation_or_its_tensor_share(tmp_path):
    whole = build_plan(make_spec(tmp_path, *PIPE))
    act = 1 * 1024 * 1024 * 2  # b·s·h·2 bytes
    assert whole.act_bytes == act and whole.p2p_bytes == act
    sg = build_plan(make_spec(tmp_path, *PIPE, "parallelism.p2p_scatter_gather=true"))
    assert sg.p2p_bytes == act / 2 and sg.shape.recv_gather
    sp = build_plan(make_spec(tmp_path, *PIPE, "parallelism.sequence_parallel=true",
                              "parallelism.p2p_scatter_gather=true"))
    assert sp.p2p_bytes == act / 2 and not sp.shape.recv_gather


def test_scatter_gather_starts_every_received_unit_with_a_tensor_all_gather(tmp_path):
    out = simulate_workload(make_spec(tmp_path, *PIPE, "parallelism.p2p_scatter_gather=true"))
    tasks, start, end = out.tasks.tasks, out.result.start, out.result.end
    m = out.tasks.meta["microbatches"]
    gathers = [t for t in tasks if "pp.recv_gather" in t.name]
    # stage 1 gathers each microbatch's activation, stage 0 each one's gradient: m per rank
    per_rank: dict[int, int] = {}
    for t in gathers:
        assert t.kind == "collective" and t.op == "all_gather" and len(t.group) == 2
        for r in t.ranks:
            per_rank[r] = per_rank.get(r, 0) + 1
    reps = out.tasks.meta["representatives"]
    assert reps and all(per_rank.get(r) == m for r in reps)
    sends = [t for t in tasks if t.kind == "send"]
    for g in gathers:  # each gather waits for a send, and the received unit's compute waits for it
        assert any(end[s.id] <= start[g.id] + 1e-12 for s in sends)
        later = [t for t in tasks if g.id in t.deps]
        assert later and all(t.kind == "compute" and start[t.id] >= end[g.id] - 1e-12 for t in later)


def test_blocking_sends_hold_the_stage(tmp_path):
    """Megatron's 1F1B: every later compute of the sender starts after its send ends; the overlapped
    interleaved schedule lets the next unit start first (zero-length markers aside: tp.wait, which the send
    itself waits for)."""
    out = simulate_workload(make_spec(tmp_path, *PIPE))
    tasks, start, end = out.tasks.tasks, out.result.start, out.result.end
    for s in (t for t in tasks if t.kind == "send"):
        r = s.ranks[0]
        assert all(start[t.id] >= end[s.id] - 1e-12 for t in tasks
                   if t.kind == "compute" and r in t.ranks and start[t.id] >= start[s.id] and end[t.id] > start[t.id])
    inter = simulate_workload(make_spec(tmp_path, *PIPE, "model.layers=8", "parallelism.virtual_stages=2",
                                        "training.global_batch=16"))
    tasks, start, end = inter.tasks.tasks, inter.result.start, inter.result.end
    overlapped = [s for s in tasks if s.kind == "send" and any(
        t.kind == "compute" and s.ranks[0] in t.ranks and start[s.id] <= start[t.id] < end[s.id] - 1e-12
        for t in tasks)]
    assert overlapped


@pytest.mark.parametrize(("extra", "key"), [
    (("training.framework=deepspeed",), "parallelism.overlap_p2p_comm"),
    ((), "parallelism.overlap_p2p_comm"),  # Megatron overlaps only the interleaved schedule
])
def test_overlap_where_the_stack_cannot_is_an_error(tmp_path, extra, key):
    with pytest.raises(SpecError) as err:
        make_spec(tmp_path, *PIPE, *extra, "parallelism.overlap_p2p_comm=true")
    assert key in str(err.value)
