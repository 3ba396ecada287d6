"""Idle compute time is charged to what held the next compute task back (simcluster.metrics.waits).

Hand-made timelines whose every wait is known, the summary's breakdown of them, and the
engine's record of releasers on a real run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from simcluster.metrics.summary import _breakdown
from simcluster.metrics.waits import WAIT_CLASSES, causal_waits
from simcluster.run import simulate_workload
from simcluster.spec import load_workload

ROOT = Path(__file__).resolve().parents[2]


def _timeline(rows: list[tuple]) -> pd.DataFrame:
    """Rows (task_id, rank, stream, task, start, end, released_by); phase from the stream."""
    phase = {"compute": "forward", "dp": "dp_comm", "tp": "tp_comm", "pp-bwd": "pp_comm", "pp-fwd": "pp_comm"}
    return pd.DataFrame([{"task_id": t, "rank": r, "stream": s, "task": n, "phase": phase[s], "stage": r,
                          "start_s": a, "end_s": b, "released_by": rel}
                         for t, r, s, n, a, b, rel in rows])


def _waits(tl: pd.DataFrame, rank: int) -> list[tuple[float, float, str]]:
    w = causal_waits(tl)
    assert w is not None
    s, e, c = w.of(rank)
    return [(float(a), float(b), WAIT_CLASSES[int(k)]) for a, b, k in zip(s, e, c)]


def _by_rank(tl: pd.DataFrame, T: float) -> dict[int, dict[str, float]]:
    return {b["rank"]: b for b in _breakdown(tl, T)}


# Rank 0 computes, then reduce-scatters its gradients (1 → 3 s) while its next compute
# waits for the backward wave of rank 1 (computing until 3.5 s, then sending 3.5 → 4 s).
NEIGHBOUR = _timeline([
    (0, 0, "compute", "bwd L0", 0.0, 1.0, -1),
    (1, 0, "dp", "dp.reduce_scatter", 1.0, 3.0, 0),
    (2, 1, "compute", "bwd L1", 0.0, 3.5, -1),
    (3, 1, "pp-bwd", "send.bwd mb1", 3.5, 4.0, 2),
    (4, 0, "compute", "bwd L0 mb1", 4.0, 5.0, 3),
])


def test_a_gradient_reduce_under_a_pipeline_wait_is_not_exposed():
    assert _waits(NEIGHBOUR, 0) == [(1.0, 3.5, "bubble"), (3.5, 4.0, "pp")]
    b = _by_rank(NEIGHBOUR, 5.0)[0]
    # the priority rule would have charged the reduce-scatter's 2 s to data parallelism
    assert b["exposed_dp_comm"] == 0.0
    assert b["exposed_pp_comm"] == pytest.approx(0.5)
    assert b["bubble"] == pytest.approx(2.5)
    assert b["compute"] == pytest.approx(2.0)


def test_the_breakdown_adds_up_to_the_iteration():
    for b in _breakdown(NEIGHBOUR, 5.0):
        total = sum(b[k] for k in ("compute", "recompute", "optimizer", "moe_imbalance", "exposed_tp_comm",
                                   "exposed_ep_comm", "exposed_pp_comm", "exposed_dp_comm", "bubble"))
        assert total == pytest.approx(5.0)


def test_a_weight_gather_the_forward_needs_is_exposed():
    tl = _timeline([
        (0, 0, "compute", "fwd L0", 0.0, 1.0, -1),
        (1, 0, "dp", "zero.all_gather L1", 0.5, 2.0, -1),
        (2, 0, "compute", "fwd L1", 2.0, 3.0, 1),
    ])
    assert _waits(tl, 0) == [(1.0, 2.0, "zero")]
    assert _by_rank(tl, 3.0)[0]["exposed_dp_comm"] == pytest.approx(1.0)


def test_a_chain_of_communication_is_followed_back():
    # tp all-reduce (4 → 5 s) waits for a dp all-reduce (2 → 4 s) queued after this rank's compute;
    # the 1 → 2 s before the dp all-reduce started has no cause here: bubble
    tl = _timeline([
        (0, 0, "compute", "fwd L0", 0.0, 1.0, -1),
        (1, 1, "compute", "fwd L0", 0.0, 2.0, -1),
        (2, 0, "dp", "dp.all_reduce", 2.0, 4.0, 1),
        (3, 0, "tp", "tp.all_reduce", 4.0, 5.0, 2),
        (4, 0, "compute", "fwd L1", 5.0, 6.0, 3),
    ])
    assert _waits(tl, 0) == [(1.0, 2.0, "bubble"), (2.0, 4.0, "dp"), (4.0, 5.0, "tp")]
    b = _by_rank(tl, 6.0)[0]
    assert (b["exposed_tp_comm"], b["exposed_dp_comm"], b["bubble"]) == pytest.approx((1.0, 2.0, 1.0))


def test_another_ranks_collective_is_the_bubble():
    tl = _timeline([
        (0, 0, "compute", "fwd L0", 0.0, 1.0, -1),
        (1, 1, "tp", "tp.all_reduce", 0.0, 2.0, -1),  # on rank 1 only
        (2, 0, "compute", "fwd L1", 2.0, 3.0, 1),
    ])
    assert _waits(tl, 0) == [(1.0, 2.0, "bubble")]


def test_a_fused_units_trailing_collective_keeps_the_priority_rule():
    tl = _timeline([
        (0, 0, "compute", "layer L0", 0.0, 1.0, -1),
        (0, 0, "tp", "tp.reduce_scatter L0", 1.0, 1.5, -1),  # a part of fused task 0
        (1, 0, "dp", "dp.reduce_scatter", 1.0, 2.0, 0),
        (2, 0, "compute", "layer L1", 1.5, 2.5, 0),
    ])
    assert _waits(tl, 0) == []
    b = _by_rank(tl, 2.5)[0]
    assert b["exposed_tp_comm"] == pytest.approx(0.5) and b["exposed_dp_comm"] == 0.0


def test_without_releasers_the_priority_rule_stays():
    tl = NEIGHBOUR.drop(columns="released_by")
    assert causal_waits(tl) is None
    b = _by_rank(tl, 5.0)[0]
    assert b["exposed_dp_comm"] == pytest.approx(2.0) and b["bubble"] == pytest.approx(1.0)


def test_the_engine_records_what_released_each_task():
    spec = load_workload(ROOT / "workloads" / "toy-8gpu.yaml", overrides=["parallelism.pipeline=4",
                                                                        "parallelism.data=1"])
    out = simulate_workload(spec)  # checks invariant 6: releaser a dependency or stream predecessor
    rel = list(out.result.released_by)
    assert len(rel) == len(out.tasks.tasks)
    assert sum(r < 0 for r in rel) >= 1 and sum(r >= 0 for r in rel) > len(rel) // 2
    tl = out.result.timeline
    gpu = tl[tl["rank"] >= 0]
    assert (gpu["released_by"].to_numpy() == [rel[t] for t in gpu["task_id"]]).all()
    # every idle instant of the stages is told: the breakdown adds up to the iteration per stage
    T = out.summary["iteration_time_s"]
    for b in out.details["breakdown"]:
        parts = sum(b[k] for k in ("compute", "recompute", "optimizer", "moe_imbalance", "exposed_tp_comm",
                                   "exposed_ep_comm", "exposed_pp_comm", "exposed_dp_comm", "bubble"))
        assert parts == pytest.approx(T, rel=1e-9)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_run_folder_keeps_what_released_each_task(tmp_path, fmt):
    """``report RUN_DIR`` redraws from disk: the timeline read back gives the same wait segments."""
    from simcluster.reporting.files import write_run
    from simcluster.reporting.tables import have_pyarrow, read_timeline

    if fmt == "parquet" and not have_pyarrow():
        pytest.skip("pyarrow not installed")
    spec = load_workload(ROOT / "workloads" / "toy-8gpu.yaml", overrides=["parallelism.pipeline=4",
                                                                        "parallelism.data=1"])
    out = simulate_workload(spec)
    write_run(tmp_path, out.result.timeline, out.summary, spec.resolved_dict(), out.details, outputs=["timeline"],
              timeline_format=fmt)
    back = read_timeline(tmp_path)
    a = causal_waits(out.result.timeline[out.result.timeline["rank"] >= 0])
    b = causal_waits(back[back["rank"] >= 0])
    assert a is not None and b is not None and len(a.rank) > 0
    for x, y in ((a.rank, b.rank), (a.start, b.start), (a.end, b.end), (a.cls, b.cls)):
        assert (x == y).all()


def test_a_collective_held_back_by_another_ranks_send_waits_for_that_rank():
    # rank 0's all-reduce (with rank 1) starts when rank 1 reaches it, after rank 1 received a send
    # from rank 2: for rank 0 that is a slower peer (bubble), not its own pipeline transfer
    tl = _timeline([
        (0, 0, "compute", "bwd L0", 0.0, 1.0, -1),
        (1, 2, "compute", "bwd L2", 0.0, 2.0, -1),
        (2, 2, "pp-bwd", "send.bwd mb0", 2.0, 2.5, 1),  # rank 2 -> rank 1
        (3, 0, "dp", "dp.all_reduce", 2.5, 3.0, 2),
        (3, 1, "dp", "dp.all_reduce", 2.5, 3.0, 2),
        (4, 0, "compute", "optimizer", 3.0, 3.5, 3),
    ])
    assert _waits(tl, 0) == [(1.0, 2.5, "bubble"), (2.5, 3.0, "dp")]
