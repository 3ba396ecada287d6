"""engine/graph.py: what each task unblocks, in the engine's order, each once."""

from __future__ import annotations

from simcluster.engine.graph import unblocking
from simcluster.lowering.task import TaskGraph


def _graph(spec: list[tuple[tuple[int, ...], str, tuple[int, ...]]]) -> TaskGraph:
    tg = TaskGraph()
    for ranks, stream, deps in spec:
        tg.add(kind="compute", name=f"t{len(tg.tasks)}", ranks=ranks, stream=stream, deps=deps, duration=1.0)
    return tg


def _lists(tg: TaskGraph) -> list[list[int]]:
    succ, off, _, _ = unblocking(tg)
    return [list(succ[off[a]:off[a + 1]]) for a in range(len(tg.tasks))]


def test_stream_successors_then_dependents_in_id_order() -> None:
    # 0 and 1 on rank 0's compute stream; 2 on rank 1 waits for 0; 3 on rank 0's tp stream waits for 0
    tg = _graph([((0,), "compute", ()), ((0,), "compute", ()), ((1,), "compute", (0,)), ((0,), "tp", (0,))])
    assert _lists(tg) == [[1, 2, 3], [], [], []]
    succ, off, blockers, firsts = unblocking(tg)
    assert blockers == [0, 1, 1, 1]
    assert firsts == [0, 3, 2]  # sorted (rank, stream): (0, compute), (0, tp), (1, compute)
    assert list(off) == [0, 3, 3, 3, 3]


def test_each_relation_counted_once() -> None:
    # a collective on ranks 0-2 follows another on the same three streams, and also depends on it (twice)
    tg = _graph([((0, 1, 2), "tp", ()), ((0, 1, 2), "tp", (0, 0))])
    assert _lists(tg) == [[1], []]
    assert unblocking(tg)[2] == [0, 1]


def test_dependent_also_next_on_a_stream_keeps_its_stream_place() -> None:
    # 2 is next after 0 on rank 1's stream and depends on 0: one entry, among the stream successors
    tg = _graph([((0, 1), "compute", ()), ((0,), "compute", ()), ((1,), "compute", (0,)), ((2,), "compute", (0,))])
    assert _lists(tg) == [[1, 2, 3], [], [], []]
    assert unblocking(tg)[2] == [0, 1, 1, 1]


def test_blockers_sum_to_the_edges() -> None:
    tg = _graph([((r % 3,), "compute", tuple(range(max(0, i - 2), i))) for i, r in enumerate(range(12))])
    succ, off, blockers, _ = unblocking(tg)
    assert sum(blockers) == len(succ) == off[-1]
    for a, nxt in enumerate(_lists(tg)):
        assert len(nxt) == len(set(nxt))  # no repeats
        assert all(b > a for b in nxt)  # ids grow along streams and dependencies here


def test_empty_graph() -> None:
    succ, off, blockers, firsts = unblocking(TaskGraph())
    assert (list(succ), list(off), blockers, firsts) == ([], [0], [], [])
