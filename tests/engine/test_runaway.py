"""Degenerate rates and latencies end the simulation at once (RunawayError) or finish; never spin."""

from types import SimpleNamespace

import pytest

from simcluster.collectives.transfer import Transfer
from simcluster.engine import RunawayError, SimulationError, simulate
from simcluster.engine import network
from simcluster.lowering.task import TaskGraph


def _topo(bws):
    return SimpleNamespace(link_bandwidth=bws, link_names=[f"l{i}" for i in range(len(bws))],
                           link_class=["x"] * len(bws))


def _sends(*transfers, after=0.0):
    tg = TaskGraph()
    deps = ()
    if after:
        deps = (tg.add(kind="compute", name="c", ranks=(0,), stream="compute", duration=after).id,)
    for i, tr in enumerate(transfers):
        tg.add(kind="send", name=f"s{i}", ranks=(i,), stream="pp-fwd", transfers=(tr,), deps=deps)
    return tg


def test_a_vanishing_bandwidth_raises_instead_of_running_forever():
    with pytest.raises(RunawayError, match=r"1e-300 B/s.*l0"):
        simulate(_sends(Transfer((0,), (1.0,), 1e9, 0.0)), _topo([1e-300]))


def test_a_zero_bandwidth_raises():
    with pytest.raises(RunawayError, match="no bandwidth"):
        simulate(_sends(Transfer((0,), (1.0,), 1e9, 0.0)), _topo([0.0]))


@pytest.mark.parametrize("latency", [float("inf"), float("nan")])
def test_an_infinite_or_undefined_latency_raises(latency):
    with pytest.raises(RunawayError, match="latency"):
        simulate(_sends(Transfer((0,), (1.0,), 1e9, latency)), _topo([1e9]))


@pytest.mark.parametrize("duration", [float("inf"), float("nan")])
def test_an_infinite_or_undefined_duration_raises(duration):
    tg = TaskGraph()
    tg.add(kind="compute", name="forever", ranks=(0,), stream="compute", duration=duration)
    with pytest.raises(RunawayError, match="forever"):
        simulate(tg, _topo([1e9]))


def test_tiny_transfers_late_in_a_long_run_finish():
    # at t = 10 s a few bytes take less than one rounding step of the clock: the old engine
    # woke up at the same instant for ever; these end at once
    trs = [Transfer((0,), (1.0,), 3.0 + i, 0.0) for i in range(5)]
    res = simulate(_sends(*trs, after=10.0), _topo([300e9]))
    assert all(10.0 <= e <= 10.0 + 1e-9 for e in res.end[1:])


def test_runaway_is_an_engine_error():
    assert issubclass(RunawayError, SimulationError) and issubclass(RunawayError, RuntimeError)


def test_wakeups_that_end_nothing_stop_after_a_bound(monkeypatch):
    # a broken schedule (a wake-up at the same instant again and again) is caught
    def stuck(self, now):
        self.wakeups += 1
        self.agenda.at(0.0, self._wakeup, self.wakeups)
        self._wake, self._wake_at = self.wakeups, now

    monkeypatch.setattr(network.Network, "_schedule", stuck)
    with pytest.raises(RunawayError, match="stalls"):
        simulate(_sends(Transfer((0,), (1.0,), 1e9, 0.0)), _topo([1e9]))
