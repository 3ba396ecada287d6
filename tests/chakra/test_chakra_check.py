"""Issue 19: a task graph read from a Chakra folder is checked before it is simulated:
deadlocks (a dependency cycle, a cross-rank cycle, a receive waiting on the wrong send)
are named with their tasks and ranks; infinite, NaN or negative numbers and ids out of
range are refused. The checks need no protobuf; the end-to-end test does (skipped without
the simcluster[chakra] extra)."""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path

import pytest

from simcluster.chakra import have_chakra
from simcluster.chakra.check import deadlock, graph_problems
from simcluster.collectives.transfer import Transfer
from simcluster.lowering.task import TaskGraph

ROOT = Path(__file__).resolve().parents[2]


def _two_ranks() -> TaskGraph:
    """Rank 0 computes then sends to rank 1, which receives then computes."""
    tg = TaskGraph()
    tg.add(kind="compute", name="fwd0", ranks=(0,), stream="compute", duration=1e-3)
    tg.add(kind="send", name="send0to1", ranks=(0,), stream="pp", deps=(0,), group=(0, 1),
           transfers=(Transfer((0,), (1.0,), 1e6, 1e-6),), nbytes=1e6)
    tg.add(kind="compute", name="fwd1", ranks=(1,), stream="compute", deps=(1,), duration=1e-3)
    tg.add(kind="send", name="send1to0", ranks=(1,), stream="pp", deps=(2,), group=(1, 0),
           transfers=(Transfer((1,), (1.0,), 1e6, 1e-6),), nbytes=1e6)
    tg.add(kind="compute", name="bwd0", ranks=(0,), stream="compute", deps=(3,), duration=1e-3)
    return tg


def test_sound_graph_has_no_problems():
    tg = _two_ranks()
    assert graph_problems(tg.tasks, tg.streams, n_links=2) == []


def test_dependency_cycle_is_named():
    tg = _two_ranks()
    tg.tasks[0].deps = (4,)  # fwd0 waits for bwd0, which waits (through the sends) for fwd0
    start = time.perf_counter()
    (reason,) = graph_problems(tg.tasks, tg.streams, n_links=2)
    assert time.perf_counter() - start < 5
    assert reason.startswith("deadlock: 5 of 5 tasks can never run")
    assert "bwd0 (task 4, rank 0) -> fwd0 (task 0, rank 0) -> back to the first" in reason


def test_cross_rank_cycle_through_stream_order():
    """Each rank sends first on its stream but its send waits for the other rank's: a cycle across ranks."""
    tg = TaskGraph()
    tg.add(kind="compute", name="a0", ranks=(0,), stream="compute", duration=1.0)
    tg.add(kind="compute", name="a1", ranks=(1,), stream="compute", duration=1.0)
    tg.add(kind="compute", name="b0", ranks=(0,), stream="compute", deps=(3,), duration=1.0)  # waits for b1
    tg.add(kind="compute", name="b1", ranks=(1,), stream="compute", deps=(2,), duration=1.0)  # waits for b0
    (reason,) = graph_problems(tg.tasks, tg.streams, n_links=0)
    assert "b0 (task 2, rank 0)" in reason and "b1 (task 3, rank 1)" in reason and "2 of 4" in reason


def test_receive_waiting_on_the_wrong_send():
    """fwd1 waits for the send of the backward pass instead of the forward one: it can never start."""
    tg = _two_ranks()
    tg.tasks[2].deps = (3,)
    reason = deadlock(tg.tasks, tg.streams)
    assert reason is not None and "fwd1" in reason and "send1to0" in reason


def test_collective_a_member_never_joins_in_order():
    """A two-rank collective that rank 1 reaches only after a task waiting for the collective."""
    tg = TaskGraph()
    tg.add(kind="collective", name="ar", ranks=(0, 1), stream="dp", duration=0.0)
    tg.add(kind="compute", name="late", ranks=(1,), stream="dp", deps=(0,), duration=1.0)
    tg.streams[(1, "dp")] = [1, 0]  # rank 1 runs `late` (which needs `ar`) before `ar`
    reason = deadlock(tg.tasks, tg.streams)
    assert reason is not None and "ar (task 0, ranks 0, 1)" in reason and "late" in reason


@pytest.mark.parametrize("field, value", [("duration", float("inf")), ("duration", float("nan")),
                                          ("duration", -1.0), ("nbytes", float("nan")), ("flops", float("inf"))])
def test_non_finite_or_negative_numbers(field, value):
    tg = _two_ranks()
    setattr(tg.tasks[0], field, value)
    (reason,) = graph_problems(tg.tasks, tg.streams, n_links=2)
    assert f"task 0 (fwd0): {field}" in reason and "finite number >= 0" in reason


def test_transfer_numbers_and_links():
    tg = _two_ranks()
    tg.tasks[1].transfers = (Transfer((0,), (1.0,), float("inf"), 0.0),)
    assert "bytes or latency" in graph_problems(tg.tasks, tg.streams, n_links=2)[0]
    tg.tasks[1].transfers = (Transfer((7,), (1.0,), 1.0, 0.0),)
    assert "link that is not in the cluster" in graph_problems(tg.tasks, tg.streams, n_links=2)[0]


def test_ids_out_of_range():
    tg = _two_ranks()
    tg.tasks[2].deps = (99,)
    tg.streams[(0, "compute")].append(-3)
    tg.tasks[4].id = 40
    problems = graph_problems(tg.tasks, tg.streams, n_links=2)
    assert any("dependency 99 is not a task id (0 to 4)" in p for p in problems)
    assert any("-3 is not a task id" in p for p in problems)
    assert any("has id 40, expected 4" in p for p in problems)


def _cli(*argv: object) -> tuple[int, str]:
    from simcluster.cli import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, err.getvalue()


@pytest.mark.skipif(not have_chakra(), reason="simcluster[chakra] not installed")
@pytest.mark.parametrize("tamper, words", [
    ("cycle", "deadlock:"),
    ("inf", "duration inf is not a finite number"),
    ("id", "is not a task id"),
])
def test_tampered_export_is_exit_2_naming_the_tasks(tmp_path, tamper, words):
    """Export the toy workload, edit one node's recorded task, run the folder: exit 2, no traceback."""
    from simcluster.chakra.load import _read
    from simcluster.chakra.protocol import attr, pb, read_messages, write_message

    traces = tmp_path / "traces"
    assert _cli("export-chakra", ROOT / "workloads" / "toy-8gpu.yaml", traces)[0] == 0
    path = sorted(traces.glob("*.et"))[0]
    meta = pb.GlobalMetadata()
    meta.ParseFromString(next(read_messages(path.read_bytes())))
    nodes = _read(path)[1]
    first = next(n for n in nodes if any(a.name == "sc.task" for a in n.attr))
    last = [n for n in nodes if any(a.name == "sc.task" for a in n.attr)][-1]
    task_attr = next(a for a in first.attr if a.name == "sc.task")
    task = json.loads(task_attr.string_val)
    if tamper == "cycle":
        task["deps"] = {"__t__": [last.id]}
    elif tamper == "inf":
        task["duration"] = "inf"
    else:
        task["deps"] = {"__t__": [10**6]}
    text = json.dumps(task).replace('"inf"', "Infinity")
    first.attr.remove(task_attr)
    first.attr.append(attr("sc.task", text))
    with open(path, "wb") as f:
        write_message(f, meta)
        for n in nodes:
            write_message(f, n)
    start = time.perf_counter()
    rc, err = _cli("run", traces, "--out", tmp_path / "out")
    assert time.perf_counter() - start < 30
    assert rc == 2, err
    assert words in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
