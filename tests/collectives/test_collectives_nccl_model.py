"""NCCL's algorithm set, latency model and protocol choice (simcluster.collectives.nccl).

Closed forms from NCCL v2.8-v2.12 src/graph/tuning.cc (ncclTopoTuneModel): ring latency =
baseLat + intra-node steps x hwLat[NVLINK] + inter-node steps x hwLat[NET], per protocol.
"""

from __future__ import annotations

import pytest

from simcluster.collectives import plan_collective
from simcluster.collectives.nccl import bandwidth_factor, latency
from simcluster.collectives.select import candidates, choose
from simcluster.topology import build_topology

US = 1e-6


def test_auto_never_picks_hierarchical_on_a_fat_tree(make_cluster):
    topo = build_topology(make_cluster(nodes=16, radix=128))
    for op in ("all_reduce", "all_gather", "reduce_scatter"):
        assert "hierarchical" not in candidates(op, range(128), topo)
        for size in (1e3, 1e5, 1e7, 1e9, 1e11):
            assert choose(op, range(128), size, topo) in ("ring", "tree")
    # still runs when named
    assert len(plan_collective("all_gather", range(128), 1e9, topo, algorithm="hierarchical")) == 2


@pytest.mark.parametrize("n, k", [(16, 2), (64, 8), (128, 16)])
def test_ring_all_gather_latency_is_nccls_model(make_cluster, n, k):
    topo = build_topology(make_cluster(nodes=k, radix=128))
    (t,) = plan_collective("all_gather", range(n), 1e11, topo, algorithm="ring")  # large: Simple
    # baseLat ring/Simple 8.4 us; (n-1)-(k-1) NVLink steps x 3.4 us; k-1 network steps x 9.6 us
    assert t.latency == pytest.approx(8.4 * US + (n - k) * 3.4 * US + (k - 1) * 9.6 * US)
    assert plan_collective("all_gather", range(n), 1e11, topo) == (t,)  # auto runs the ring


def test_protocol_by_size_inside_a_node(make_cluster):
    topo = build_topology(make_cluster(nodes=1, inter="none"))
    lats = {}
    for size in (1e3, 1e7, 1e10):
        (t,) = plan_collective("all_gather", range(8), size, topo)
        lats[size] = t.latency
    assert lats[1e3] == pytest.approx(3.6 * US + 7 * 0.47 * US)  # LL
    assert lats[1e7] == pytest.approx(10.0 * US + 7 * 1.9 * US)  # LL128
    assert lats[1e10] == pytest.approx(8.4 * US + 7 * 3.4 * US)  # Simple
    # LL moves a third of the bus bandwidth on one node for all-gather (tuning.cc: busBw * 1/3)
    (t,) = plan_collective("all_gather", range(8), 1e3, topo)
    assert t.nbytes == pytest.approx(7 / 8 * 1e3 * 3)


def test_protocol_factors_and_ll_across_nodes():
    assert bandwidth_factor("ring", "LL", "all_gather", 2) == pytest.approx(1 / 4)
    assert bandwidth_factor("ring", "LL128", "all_reduce", 2) == pytest.approx(0.92)
    assert bandwidth_factor("tree", "LL128", "all_reduce", 1) == pytest.approx(7 / 9)
    # LL's intra-node step x 1.8 across nodes (tuning.cc)
    assert latency("ring", "LL", "all_reduce", 16, 2, "nvswitch") == \
        pytest.approx(3.6 * US + 28 * 0.47 * 1.8 * US + 2 * 2.7 * US)


def test_pcie_nodes_have_no_ll128(make_cluster):
    topo = build_topology(make_cluster(nodes=1, inter="none", intra="pcie"))
    lats = [plan_collective("all_reduce", range(8), s, topo)[0].latency for s in (1e3, 1e5, 1e6, 1e7, 1e10)]
    ll, simple = (latency("ring", p, "all_reduce", 8, 1, "pcie") for p in ("LL", "Simple"))
    assert lats[0] == pytest.approx(ll) and lats[-1] == pytest.approx(simple)  # PCI steps: 1.0 / 5.7 us
    assert all(x == pytest.approx(ll) or x == pytest.approx(simple) for x in lats)


def test_torus_keeps_its_own_latencies(make_cluster):
    topo = build_topology(make_cluster(nodes=4, gpus_per_node=4, intra="torus", inter="torus", torus=[4, 4],
                                       link_bw=50e9, inter_lat=1e-6))
    small = plan_collective("all_gather", range(16), 1e3, topo, algorithm="ring")
    large = plan_collective("all_gather", range(16), 1e10, topo, algorithm="ring")
    assert [t.latency for t in small] == [t.latency for t in large]  # no protocol switch
