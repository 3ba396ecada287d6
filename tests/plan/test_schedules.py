"""Pipeline schedules: every unit exactly once, valid orders, in-flight counts."""

import pytest

from simcluster.plan.schedules import SCHEDULES, peak_in_flight
from simcluster.registry import UnknownName


@pytest.mark.parametrize("name,v", [("gpipe", 1), ("1f1b", 1), ("interleaved", 2), ("interleaved", 4),
                                    ("zero-bubble", 1)])
@pytest.mark.parametrize("p,m", [(1, 4), (2, 4), (4, 8), (4, 4), (8, 16)])
def test_every_unit_once_and_backward_after_forward(name, v, p, m):
    for s in range(p):
        order = SCHEDULES.get(name)(p, m, v, s)
        passes = "FBW" if name == "zero-bubble" else "FB"
        assert sorted(order) == sorted((k, i, c) for k in passes for i in range(m) for c in range(v))
        seen = set()
        for kind, mb, c in order:
            if kind == "B":
                assert ("F", mb, c) in seen
            if kind == "W":
                assert ("B", mb, c) in seen
            seen.add((kind, mb, c))


def test_1f1b_warmup_and_in_flight():
    p, m = 4, 8
    for s in range(p):
        order = SCHEDULES.get("1f1b")(p, m, 1, s)
        warm = next(i for i, u in enumerate(order) if u[0] == "B")
        assert warm == p - s  # p-s-1 warm-up forwards, then the first steady forward
        assert peak_in_flight(order) == p - s
    assert peak_in_flight(SCHEDULES.get("gpipe")(p, m, 1, 0)) == m


def test_zero_bubble_keeps_1f1b_memory():
    p, m = 4, 8
    for s in range(p):
        zb = SCHEDULES.get("zero-bubble")(p, m, 1, s)
        assert peak_in_flight(zb) == peak_in_flight(SCHEDULES.get("1f1b")(p, m, 1, s)) == p - s


def test_unknown_schedule_lists_known():
    with pytest.raises(UnknownName, match="known: 1f1b, dualpipe, gpipe, interleaved, zero-bubble"):
        SCHEDULES.get("zigzag")
