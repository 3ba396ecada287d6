"""The flow-level network: closed forms for shared and disjoint links."""

from types import SimpleNamespace

import pytest

from simcluster.collectives.transfer import Transfer
from simcluster.engine import simulate
from simcluster.lowering.task import TaskGraph


def _topo(bws):
    return SimpleNamespace(link_bandwidth=bws, link_names=[f"l{i}" for i in range(len(bws))],
                           link_class=["x"] * len(bws))


def _graph(transfers_by_rank):
    tg = TaskGraph()
    for r, trs in transfers_by_rank.items():
        for tr in trs:
            tg.add(kind="send", name=f"s{r}", ranks=(r,), stream="pp-fwd", transfers=(tr,), nbytes=tr.nbytes)
    return tg


def test_one_transfer_takes_latency_plus_bytes_over_bandwidth():
    res = simulate(_graph({0: [Transfer((0,), (1.0,), 1e9, 2e-6)]}), _topo([100e9]))
    assert res.end[0] == pytest.approx(2e-6 + 1e9 / 100e9, rel=1e-12)


def test_two_transfers_sharing_a_link_each_take_twice_as_long():
    tr = Transfer((0,), (1.0,), 1e9, 0.0)
    alone = simulate(_graph({0: [tr]}), _topo([100e9])).end[0]
    both = simulate(_graph({0: [tr], 1: [tr]}), _topo([100e9]))
    assert both.end[0] == pytest.approx(2 * alone, rel=1e-9)
    assert both.end[1] == pytest.approx(2 * alone, rel=1e-9)


def test_disjoint_links_do_not_slow_each_other():
    a = Transfer((0,), (1.0,), 1e9, 0.0)
    b = Transfer((1,), (1.0,), 1e9, 0.0)
    res = simulate(_graph({0: [a], 1: [b]}), _topo([100e9, 100e9]))
    assert res.end[0] == pytest.approx(0.01, rel=1e-12)
    assert res.end[1] == pytest.approx(0.01, rel=1e-12)


def test_weighted_link_counts_mirrored_flows():
    # weight 4 on a link = four identical flows through it: a quarter of the bandwidth each
    res = simulate(_graph({0: [Transfer((0,), (4.0,), 1e9, 0.0)]}), _topo([100e9]))
    assert res.end[0] == pytest.approx(0.04, rel=1e-12)


def test_max_min_fairness_gives_leftover_to_unconstrained_flow():
    # flow A on links 0 (10 GB/s) and 1 (100 GB/s); flow B on link 1 only.
    # A is held to 10 GB/s by link 0, so B gets the remaining 90 GB/s.
    a = Transfer((0, 1), (1.0, 1.0), 1e9, 0.0)
    b = Transfer((1,), (1.0,), 9e9, 0.0)
    res = simulate(_graph({0: [a], 1: [b]}), _topo([10e9, 100e9]))
    assert res.end[0] == pytest.approx(0.1, rel=1e-9)
    assert res.end[1] == pytest.approx(0.1, rel=1e-9)


def test_late_flow_slows_the_first_only_while_they_overlap():
    tg = TaskGraph()
    tg.add(kind="compute", name="c", ranks=(1,), stream="compute", duration=0.005)
    tg.add(kind="send", name="a", ranks=(0,), stream="pp-fwd", transfers=(Transfer((0,), (1.0,), 1e9, 0.0),))
    tg.add(kind="send", name="b", ranks=(1,), stream="pp-fwd", deps=(0,),
           transfers=(Transfer((0,), (1.0,), 1e9, 0.0),))
    res = simulate(tg, _topo([100e9]))
    # a: 0.5 GB alone in 5 ms, then the remaining 0.5 GB at half rate: 10 ms more
    assert res.end[1] == pytest.approx(0.015, rel=1e-9)
    assert res.end[2] == pytest.approx(0.020, rel=1e-9)
    assert res.link_bytes[0] == pytest.approx(2e9, rel=1e-9)


def test_a_long_chain_of_instant_tasks_runs_without_recursion():
    tg = TaskGraph()
    prev = ()
    for i in range(5000):
        t = tg.add(kind="collective", name=f"c{i}", ranks=(i % 2,), stream="tp", deps=prev)
        prev = (t.id,)
    res = simulate(tg, _topo([1e9]))
    assert res.end[-1] == 0.0 and len(res.timeline) == 5000


def test_collective_among_simulated_ranks_starts_when_the_last_arrives():
    tg = TaskGraph()
    tg.add(kind="compute", name="a", ranks=(0,), stream="compute", duration=1.0)
    tg.add(kind="compute", name="b", ranks=(1,), stream="compute", duration=3.0)
    tg.add(kind="collective", name="ar", ranks=(0, 1), stream="dp", deps=(0, 1),
           transfers=(Transfer((0,), (1.0,), 1e9, 0.0),))
    tg.add(kind="compute", name="c", ranks=(0,), stream="compute", deps=(2,), duration=1.0)
    res = simulate(tg, _topo([1e9]))
    assert res.start[2] == 3.0 and res.end[2] == pytest.approx(4.0) and res.end[3] == pytest.approx(5.0)


def test_twin_links_share_one_representative_and_its_figures():
    # links 0 and 1 carry the same two transfers with the same weights: one group, led by
    # the narrower link 0; link 2 carries another transfer too, so it stands alone
    from simcluster.engine.redundant import twin_links

    a = Transfer((0, 1, 2), (1.0, 1.0, 1.0), 1e9, 0.0)
    b = Transfer((0, 1), (1.0, 1.0), 1e9, 0.0)
    c = Transfer((2,), (1.0,), 1e9, 0.0)
    assert twin_links([a, b, c], [100e9, 200e9, 100e9, 1e9]) == [0, 0, 2, 3]
    res = simulate(_graph({0: [a], 1: [b], 2: [c]}), _topo([100e9, 200e9, 100e9, 1e9]))
    # a and b share link 0 (50 GB/s each); a and c share link 2, where c gets what a leaves (50)
    assert res.end == pytest.approx([0.02, 0.02, 0.02], rel=1e-9)
    assert res.link_bytes[1] == res.link_bytes[0] == pytest.approx(2e9, rel=1e-12)
    assert res.link_busy_s[1] == res.link_busy_s[0] == pytest.approx(0.02, rel=1e-9)


def test_recorded_twin_links_get_their_representatives_intervals_in_the_timeline():
    # links 0 and 1 are twins (led by 0), recorded both, or only the follower 1; link 2 is not
    # a twin: each recorded link's rows are its own busy intervals, start, end and bytes
    a = Transfer((0, 1, 2), (1.0, 1.0, 1.0), 1e9, 0.0)
    b = Transfer((0, 1), (1.0, 1.0), 1e9, 0.0)
    c = Transfer((2,), (1.0,), 1e9, 0.0)
    tg = _graph({0: [a], 1: [b], 2: [c]})
    tg.add(kind="send", name="late", ranks=(1,), stream="pp-fwd", transfers=(b,), nbytes=b.nbytes)  # after b
    topo = _topo([100e9, 200e9, 100e9, 1e9])
    for recorded in ({0, 1, 2}, {1}):
        tl = simulate(tg, topo, record_links=recorded).timeline
        rows = {name: g[["start_s", "end_s", "bytes"]].to_numpy().ravel().tolist()
                for name, g in tl[tl.kind == "link"].groupby("resource", observed=True)}
        assert sorted(rows) == sorted(f"link:l{l}" for l in recorded)
        assert rows["link:l1"] == pytest.approx([0.0, 0.02, 2e9, 0.02, 0.03, 1e9], rel=1e-9)
        if 0 in recorded:
            assert rows["link:l0"] == rows["link:l1"]
            assert rows["link:l2"] == pytest.approx([0.0, 0.02, 2e9], rel=1e-9)


def test_a_first_task_started_by_an_earlier_first_runs_once():
    # the send is first on its stream but waits for an instant task first on another: that
    # task's end starts it, and it must not start (and end at once) a second time
    tg = TaskGraph()
    c = tg.add(kind="compute", name="c", ranks=(0,), stream="compute", duration=0.0)
    s = tg.add(kind="send", name="s", ranks=(0,), stream="pp-fwd", deps=(c.id,),
               transfers=(Transfer((0,), (1.0,), 1e9, 0.0),))
    t = tg.add(kind="compute", name="t", ranks=(0,), stream="pp-fwd", duration=1.0)
    res = simulate(tg, _topo([100e9]))
    assert res.end[s.id] == pytest.approx(0.01, rel=1e-12)
    assert res.end[t.id] == pytest.approx(1.01, rel=1e-12)
    assert res.events == 3 + 1  # three tasks, one flow


def test_flows_finishing_within_the_tolerance_end_in_one_wakeup():
    # a second flow with 1e-4 more bytes (below tol = 1e-9·nbytes + 1e-6 bytes) ends with the
    # first; a third with 1 kB more ends at its own time, after being put back unfinished
    a = Transfer((0,), (1.0,), 1e9, 0.0)
    b = Transfer((1,), (1.0,), 1e9 + 1e-4, 0.0)
    c = Transfer((2,), (1.0,), 1e9 + 1e3, 0.0)
    res = simulate(_graph({0: [a], 1: [b], 2: [c]}), _topo([100e9] * 3))
    assert res.end[0] == res.end[1] == pytest.approx(0.01, rel=1e-12)
    assert res.end[2] == pytest.approx((1e9 + 1e3) / 100e9, rel=1e-12) and res.end[2] > res.end[0]
    assert res.stats["wakeups"] == 2
