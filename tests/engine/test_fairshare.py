"""The incremental network against a plain re-computation of every rate on every change.

The reference below is the textbook algorithm with nothing left out: at every start or
end, progressive filling over every link of every active flow (Bertsekas & Gallager §6.5.2),
then each flow runs at its rate until the next change. The engine re-rates only connected
flows, leaves out slack links and links its neighbours cover, and keeps one wake-up; the
finish times must agree to rounding.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from simcluster.collectives.transfer import Transfer
from simcluster.engine import simulate
from simcluster.engine.fairshare import fill
from simcluster.engine.redundant import covered_links
from simcluster.lowering.task import TaskGraph


def reference_rates(routes, bw):
    """Max-min fair rates of ``routes`` ([(links, weights)]) scanning every link per level."""
    rate = [0.0] * len(routes)
    frozen = [False] * len(routes)
    cap = {l: bw[l] for links, _ in routes for l in links}
    while not all(frozen):
        share = {}
        for l in cap:
            ws = sum(w for (links, weights), fz in zip(routes, frozen) if not fz
                     for m, w in zip(links, weights) if m == l)
            if ws > 0:
                share[l] = cap[l] / ws
        best = min(share.values())
        for i, (links, weights) in enumerate(routes):
            if not frozen[i] and any(share.get(l) == best for l in links):
                frozen[i], rate[i] = True, best
                for l, w in zip(links, weights):
                    cap[l] -= w * best
    return rate


def reference_finish(starts, routes, nbytes, bw):
    """Finish times of flows starting at ``starts``, every rate recomputed at every change."""
    t, left, active, end = 0.0, list(nbytes), set(), [0.0] * len(starts)
    pending = sorted(range(len(starts)), key=lambda i: starts[i])
    while pending or active:
        idx = sorted(active)
        rates = dict(zip(idx, reference_rates([routes[i] for i in idx], bw))) if idx else {}
        nxt_start = starts[pending[0]] if pending else float("inf")
        nxt_end = min((t + left[i] / rates[i] for i in idx), default=float("inf"))
        nxt = min(nxt_start, nxt_end)
        for i in idx:
            left[i] -= rates[i] * (nxt - t)
        t = nxt
        for i in idx:
            if left[i] <= 1e-9 * nbytes[i] + 1e-6:
                active.discard(i)
                end[i] = t
        while pending and starts[pending[0]] <= t:
            active.add(pending.pop(0))
    return end


class _Flow:
    __slots__ = ("links", "weights", "shared", "bounds")

    def __init__(self, links, weights):
        self.links, self.weights, self.shared, self.bounds = links, weights, {}, None


def _flows_on(flows, n):
    on = [{} for _ in range(n)]
    for f in flows:
        for l, w in zip(f.links, f.weights):
            on[l][f] = w
    for f in flows:
        f.shared = {l: None for l in f.links if len(on[l]) > 1}
    return on


@pytest.mark.parametrize("seed", range(30))
def test_fill_equals_the_plain_algorithm(seed):
    rng = random.Random(seed)
    n = rng.randint(2, 12)
    bw = [rng.choice([10.0, 25.0, 40.0, 100.0]) for _ in range(n)]
    flows = []
    for _ in range(rng.randint(1, 15)):
        links = tuple(rng.sample(range(n), rng.randint(1, min(4, n))))
        flows.append(_Flow(links, tuple(float(rng.randint(1, 3)) for _ in links)))
    got = fill(flows, _flows_on(flows, n), bw)
    want = reference_rates([(f.links, f.weights) for f in flows], bw)
    assert [got[f] for f in flows] == pytest.approx(want, rel=1e-12)


def _fat_tree(nodes, nic_bw, leaf_nodes):
    """gpu<i> -> nic<i> -> leaf<j> -> spine: one GPU per NIC, ``leaf_nodes`` per leaf, each leaf's
    up- and downlink exactly its NICs' capacity (covered), plus a slow PCIe link per GPU."""
    src, dst, bw, cls = [], [], [], []

    def add(a, b, c, k):
        src.append(a), dst.append(b), bw.append(c), cls.append(k)
        return len(src) - 1

    up, down = {}, {}
    for i in range(nodes):
        leaf = f"leaf{i // leaf_nodes}"
        up[i] = (add(f"gpu{i}", f"nic{i}", nic_bw * 1.5, "pcie"), add(f"nic{i}", leaf, nic_bw, "nic"))
        down[i] = (add(leaf, f"nic{i}", nic_bw, "nic"), add(f"nic{i}", f"gpu{i}", nic_bw * 1.5, "pcie"))
    leaves = (nodes + leaf_nodes - 1) // leaf_nodes
    spine = {j: (add(f"leaf{j}", "spine", leaf_nodes * nic_bw, "spine"),
                 add("spine", f"leaf{j}", leaf_nodes * nic_bw, "spine")) for j in range(leaves)}

    def route(a, b):
        la, lb = a // leaf_nodes, b // leaf_nodes
        mid = () if la == lb else (spine[la][0], spine[lb][1])
        return up[a] + mid + down[b]

    topo = SimpleNamespace(link_bandwidth=bw, link_names=[f"{a}->{b}" for a, b in zip(src, dst)],
                           link_class=cls, link_endpoints=(src, dst))
    return topo, route


@pytest.mark.parametrize("seed", range(12))
def test_finish_times_equal_a_full_recomputation_at_every_change(seed):
    rng = random.Random(seed)
    nodes = rng.choice([4, 6, 8])
    topo, route = _fat_tree(nodes, 10.0, rng.choice([2, 4]))
    starts, routes, nbytes = [], [], []
    tg = TaskGraph()
    for i in range(rng.randint(5, 25)):
        a, b = rng.sample(range(nodes), 2)
        links = route(a, b)
        weights = tuple(float(rng.choice([1, 1, 2])) for _ in links)
        start, size = rng.choice([0.0, 0.5, 1.0, 1.7, 2.5]), rng.uniform(1.0, 30.0)
        starts.append(start), routes.append((links, weights)), nbytes.append(size)
        c = tg.add(kind="compute", name=f"wait{i}", ranks=(i,), stream="compute", duration=start)
        tg.add(kind="send", name=f"send{i}", ranks=(i,), stream="pp-fwd", deps=(c.id,),
               transfers=(Transfer(links, weights, size, 0.0),))
    res = simulate(tg, topo)
    got = [res.end[2 * i + 1] for i in range(len(starts))]
    assert got == pytest.approx(reference_finish(starts, routes, nbytes, topo.link_bandwidth), rel=1e-9)


def test_a_non_blocking_leaf_uplink_is_covered_by_its_nics():
    topo, route = _fat_tree(8, 10.0, 4)
    trs = [Transfer(route(a, b), (1.0,) * len(route(a, b)), 1.0, 0.0) for a in range(8) for b in range(8) if a != b]
    covered = covered_links(trs, topo.link_bandwidth, *topo.link_endpoints)
    spine = [l for l, c in enumerate(topo.link_class) if c == "spine"]
    assert all(covered[l] for l in spine)
    # a chosen link's cover is kept: no NIC link is dropped on the strength of a dropped uplink
    assert not any(covered[l] for l, c in enumerate(topo.link_class) if c == "nic")
