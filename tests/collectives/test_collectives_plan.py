
import pytest

from simcluster.collectives import ALGORITHMS, OPS, plan_collective
from simcluster.registry import UnknownName
from simcluster.topology import build_topology

S = 1e9


def uncontended_time(t, topo) -> float:
    """Time of one transfer alone: latency + nbytes / min_l(bandwidth_l / weight_l)."""
    rate = min(topo.link_bandwidth[l] / w for l, w in zip(t.links, t.weights))
    return t.latency + t.nbytes / rate


def test_registry_names():
    for name in ("auto", "ring", "hierarchical", "direct"):
        assert name in ALGORITHMS
    assert OPS == ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all", "send")


def test_ring_all_reduce_one_nvswitch_node_closed_form(make_cluster):
    topo = build_topology(make_cluster(nodes=1, inter="none", intra_bw=300e9, intra_lat=2e-6))
    n = 8
    (t,) = plan_collective("all_reduce", range(n), S, topo, algorithm="ring")
    assert len(t.links) == 2 * n and set(t.weights) == {1.0}
    assert t.nbytes == pytest.approx(2 * (n - 1) / n * S)
    # NCCL's ring latency for Simple, the protocol of a 1 GB message (nccl src/graph/tuning.cc v2.8-v2.12):
    # baseLat 8.4 us + 2(n-1) NVLink steps x 3.4 us
    lat = 8.4e-6 + 2 * (n - 1) * 3.4e-6
    assert t.latency == pytest.approx(lat)
    B = 300e9 * topo.efficiency["nvlink"]  # calibrated link efficiency (simcluster.topology.efficiency)
    assert uncontended_time(t, topo) == pytest.approx(lat + 2 * (n - 1) / n * S / B)
    assert plan_collective("all_reduce", range(n), S, topo) == (t,)  # auto = ring inside a node


@pytest.mark.parametrize("op, factor, steps", [("all_gather", 7 / 8, 7), ("reduce_scatter", 7 / 8, 7), ("broadcast", 1.0, 7)])
def test_ring_other_ops(make_cluster, op, factor, steps):
    topo = build_topology(make_cluster(nodes=1, inter="none"))
    (t,) = plan_collective(op, range(8), S, topo, algorithm="ring")
    # NCCL ring/Simple: baseLat 8.4 us + steps x 3.4 us on NVLink (tuning.cc v2.8-v2.12)
    assert t.nbytes == pytest.approx(factor * S) and t.latency == pytest.approx(8.4e-6 + steps * 3.4e-6)
    assert set(t.weights) == {1.0}


def test_hierarchical_two_fat_tree_nodes(make_cluster):
    topo = build_topology(make_cluster(nodes=2, nic_bw=25e9, inter_lat=5e-6))
    phases = plan_collective("all_reduce", range(16), S, topo, algorithm="hierarchical")
    rs, ar, ag = phases
    for t in (rs, ag):
        assert {topo.link_class[l] for l in t.links} == {"nvlink"}
        assert t.nbytes == pytest.approx(7 / 8 * S) and t.latency == pytest.approx(7 * 2e-6)
        assert len(t.links) == 32 and set(t.weights) == {1.0}
    assert {topo.link_class[l] for l in ar.links} == {"pcie", "nic"}  # one leaf: no spine
    assert ar.nbytes == pytest.approx(2 * 1 / 2 * S / 8) and ar.latency == pytest.approx(2 * 5e-6)
    assert set(ar.weights) == {1.0}
    total = sum(uncontended_time(t, topo) for t in phases)
    nv, nic = 300e9 * topo.efficiency["nvlink"], 25e9 * topo.efficiency["nic"]
    assert total == pytest.approx(2 * 7 * 2e-6 + 2 * 7 / 8 * S / nv + 2 * 5e-6 + S / 8 / nic)
    rs2 = plan_collective("reduce_scatter", range(16), S, topo, algorithm="hierarchical")
    ag2 = plan_collective("all_gather", range(16), S, topo, algorithm="hierarchical")
    assert [t.nbytes for t in rs2] == pytest.approx([7 / 8 * S, S / 16])
    assert [t.nbytes for t in ag2] == pytest.approx([S / 16, 7 / 8 * S])


def test_auto_ring_when_one_member_per_node(make_cluster):
    topo = build_topology(make_cluster(nodes=4))
    (t,) = plan_collective("all_reduce", [0, 8, 16, 24], S, topo)
    # NCCL ring/Simple, every step across the network: 8.4 us + 2(k-1) x 9.6 us (tuning.cc v2.8-v2.12)
    assert t.nbytes == pytest.approx(1.5 * S) and t.latency == pytest.approx(8.4e-6 + 6 * 9.6e-6)
    # uneven split across nodes: flat ring
    assert len(plan_collective("all_reduce", [0, 1, 2, 8], S, topo)) == 1
    assert len(plan_collective("all_reduce", [0, 1, 2, 8], S, topo, algorithm="hierarchical")) == 1


def test_direct_all_to_all_and_send(make_cluster):
    topo = build_topology(make_cluster(nodes=1, inter="none"))
    (t,) = plan_collective("all_to_all", range(4), S, topo)
    assert t.nbytes == pytest.approx(S / 4) and set(t.weights) == {3.0}  # each up/down link carries 3 peers
    (s,) = plan_collective("send", (0, 5), S, topo)
    assert s.links == tuple(sorted(topo.route(0, 5))) and s.nbytes == S and s.latency == pytest.approx(2e-6)
    assert plan_collective("send", (3, 3), S, topo) == ()
    assert plan_collective("all_reduce", [3], S, topo) == ()
    with pytest.raises(ValueError, match="does not implement all_to_all"):
        plan_collective("all_to_all", range(4), S, topo, algorithm="ring")
    with pytest.raises(ValueError, match="unknown collective"):
        plan_collective("allreduce", range(4), S, topo)
    with pytest.raises(UnknownName, match="known: "):
        plan_collective("all_reduce", range(4), S, topo, algorithm="bogus")


def test_mirrors_load_shared_nic_and_spine_links(make_cluster):
    # 8 nodes, 2 NICs per node shared by 4 GPUs each, radix 8 with o = 3 (2 up, 6 down ports per leaf)
    topo = build_topology(make_cluster(nodes=8, nics=2, oversubscription=3.0, radix=8))
    group = [n * 8 for n in range(8)]  # local rank 0 of every node: a ring over nodes
    (alone,) = plan_collective("all_reduce", group, S, topo)
    (mirrored,) = plan_collective("all_reduce", group, S, topo, mirror_offsets=range(1, 8))
    assert alone.links == mirrored.links and set(alone.weights) == {1.0}
    by_class = {}
    for l, w in zip(mirrored.links, mirrored.weights):
        by_class.setdefault(topo.link_class[l], set()).add(w)
    assert by_class["pcie"] == {1.0}  # each GPU's own PCIe link
    assert max(by_class["nic"]) == 4.0  # 4 GPUs share a NIC
    assert max(by_class["spine"]) > 1.0
    assert uncontended_time(mirrored, topo) > uncontended_time(alone, topo)


def test_mirrors_in_separate_nvswitch_nodes_do_not_interact(make_cluster):
    topo = build_topology(make_cluster(nodes=4, oversubscription=3.0, radix=8))
    (t,) = plan_collective("all_reduce", range(8), S, topo, mirror_offsets=(8, 16, 24))
    assert set(t.weights) == {1.0}
    with pytest.raises(ValueError, match="outside the cluster"):
        plan_collective("all_reduce", range(8), S, topo, mirror_offsets=(32,))


def test_plans_are_cached_and_scaled(make_cluster):
    topo = build_topology(make_cluster(nodes=2))
    a = plan_collective("all_reduce", range(16), 1.0, topo)
    b = plan_collective("all_reduce", range(16), 3.0, topo)
    assert [x.nbytes * 3 for x in a] == pytest.approx([x.nbytes for x in b])
    assert [x.links for x in a] == [x.links for x in b] and [x.latency for x in a] == [x.latency for x in b]


def test_torus_ring(make_cluster):
    topo = build_topology(make_cluster(nodes=4, gpus_per_node=4, intra="torus", inter="torus", torus=[4, 4], link_bw=50e9, inter_lat=1e-6))
    ring = [0, 1, 2, 3]  # one x-ring of the torus: every hop one link
    (t,) = plan_collective("all_reduce", ring, S, topo, algorithm="ring")
    assert set(t.weights) == {1.0} and len(t.links) == 4
    assert uncontended_time(t, topo) == pytest.approx(6 * 1e-6 + 1.5 * S / 50e9)  # torus links: efficiency 1


def test_plans_are_cached_on_a_1024_node_fat_tree(make_cluster):
    # (how fast planning is belongs to benchmarks/speed.py, not to a timed test)
    topo = build_topology(make_cluster(nodes=1024, oversubscription=2.0))
    dp = [n * 8 for n in range(0, 1024, 8)]  # 128 members, one per node
    first = plan_collective("all_reduce", dp, S, topo, mirror_offsets=range(1, 8))
    hier = list(range(8 * 16))  # 16 nodes x 8 GPUs
    plan_collective("all_reduce", hier, S, topo, mirror_offsets=[128 * k for k in range(1, 8)])
    keys = len(topo.plan_cache)
    again = plan_collective("all_reduce", dp, S, topo, mirror_offsets=range(1, 8))
    assert again == first and len(topo.plan_cache) == keys
