"""engine/buckets.py: flows filed by time, one heap entry per distinct time."""

from __future__ import annotations

from simcluster.engine.buckets import TimeBuckets


class _F:
    def __init__(self, name: str) -> None:
        self.name, self.ver = name, 1


def test_earliest_skips_times_whose_entries_all_went_stale() -> None:
    b = TimeBuckets()
    f, g = _F("f"), _F("g")
    b.push(1.0, f, 1)
    b.push(2.0, g, 1)
    assert b.earliest() == 1.0
    f.ver = 2  # f re-rated: its entry at 1.0 is stale
    b.forget(1.0)
    b.push(3.0, f, 2)
    assert b.earliest() == 2.0
    assert b.entries == 2 and len(b.times) == 2  # the time 1.0 was dropped


def test_one_heap_entry_per_distinct_time() -> None:
    b = TimeBuckets()
    fs = [_F(str(i)) for i in range(100)]
    for f in fs:
        b.push(5.0, f, 1)
    assert b.times == [5.0] and b.live[5.0] == 100 and b.entries == 100


def test_take_returns_the_current_entries_up_to_now_and_ends_them() -> None:
    b = TimeBuckets()
    f, g, h = _F("f"), _F("g"), _F("h")
    b.push(1.0, f, 1)
    b.push(1.0, g, 1)
    b.push(4.0, h, 1)
    g.ver = 2  # stale at 1.0
    out: list[_F] = []
    b.take(2.0, out)
    assert out == [f] and f.ver == -1 and g.ver == 2
    assert b.times == [4.0] and b.entries == 1
    b.forget(1.0)  # a time already taken out is ignored
    assert b.earliest() == 4.0


def test_compact_drops_stale_entries_only() -> None:
    b = TimeBuckets()
    f, g = _F("f"), _F("g")
    b.push(1.0, f, 1)
    b.push(2.0, g, 1)
    f.ver = 2
    b.push(1.5, f, 2)
    b.compact()
    assert sorted(b.items) == [1.5, 2.0] and b.entries == 2 and b.earliest() == 1.5
