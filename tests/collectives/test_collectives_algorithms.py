"""Rings over NCCL-style channels, the double binary tree, torus collectives, auto, link efficiency."""

from __future__ import annotations

import math

import pytest

from simcluster.collectives import ALGORITHMS, plan_collective
from simcluster.collectives.rings import rings
from simcluster.collectives.select import candidates, choose
from simcluster.collectives.tree import double_binary_tree, depth
from simcluster.topology import build_topology
from simcluster.topology.efficiency import RAW, default_efficiency

S = 1e9


def uncontended_time(transfers, topo) -> float:
    bw = topo.link_bandwidth
    return sum(t.latency + t.nbytes * max(w / bw[l] for l, w in zip(t.links, t.weights)) for t in transfers)


def test_registry_has_tree_and_torus():
    for name in ("auto", "ring", "tree", "hierarchical", "direct", "torus"):
        assert name in ALGORITHMS


@pytest.mark.parametrize("k", list(range(1, 70)) + [127, 128, 1000])
def test_double_binary_tree_shape(k):
    t1, t2 = double_binary_tree(k)
    for parents in (t1, t2):
        assert sum(p < 0 for p in parents) == 1
        children = [0] * k
        for p in parents:
            if p >= 0:
                children[p] += 1
        assert max(children) <= 2
        assert depth(parents) <= max(1, math.ceil(math.log2(k)) + 1)
    if k > 2:  # Sanders et al.: a rank is interior in at most one of the two trees
        inner1 = {p for p in t1 if p >= 0}
        inner2 = {p for p in t2 if p >= 0}
        # (k odd, NCCL's shifted second tree: but for rank 0, tree 1's root, which has a single child)
        assert inner1 & inner2 <= ({0} if k % 2 else set())
        assert t1.count(0) == 1


EDR, HDR, NDR = 100e9 / 8, 200e9 / 8, 400e9 / 8  # InfiniBand line rates per direction, bytes/s


def test_efficiency_per_link_class_and_generation(make_cluster):
    # raw x factor = what NCCL's maintainers quote as reachable (sources in simcluster/topology/efficiency.py):
    # NVLink3 ~230 of 300 GB/s, NVLink4 ~370 of 450 (ring); per NIC EDR ~12, HDR ~24, NDR 46-48 GB/s
    assert 300e9 * default_efficiency("a100-80gb", HDR)["nvlink"] == pytest.approx(230e9, rel=0.01)
    assert 450e9 * default_efficiency("h100", NDR)["nvlink"] == pytest.approx(370e9, rel=0.01)
    assert EDR * default_efficiency("v100", EDR)["nic"] == pytest.approx(12e9, rel=0.01)
    assert HDR * default_efficiency("a100-80gb", HDR)["nic"] == pytest.approx(24e9, rel=0.01)
    assert 46e9 <= NDR * default_efficiency("h100", NDR)["nic"] <= 48e9
    # the NVLink factor follows the generation (the GPU), the NIC factor the InfiniBand generation
    assert default_efficiency("a100-40gb", HDR) == default_efficiency("a100-80gb", HDR)  # both NVLink3
    assert default_efficiency("h200", NDR) == default_efficiency("h100", NDR)  # both NVLink4
    assert default_efficiency("h100", 300e9 / 8)["nic"] == default_efficiency("h100", HDR)["nic"]  # between: HDR's
    for device in ("v100", "a100-80gb", "h100", "some-new-gpu"):
        for rate in (None, EDR, HDR, NDR, 800e9 / 8):
            e = default_efficiency(device, rate)
            assert e["pcie"] == e["spine"] == e["nic"]  # one factor per NIC path: oversubscription stays exact
            assert all(0 < f <= 1 for f in e.values())
    # the topology's link bandwidth is raw x the factor of the link's class
    topo = build_topology(make_cluster(device="h100", intra_bw=450e9, nic_bw=NDR))
    by_class = {c: {round(b / rb, 6) for b, rb, cc in zip(topo.link_bandwidth, topo.link_raw_bandwidth,
                                                           topo.link_class) if cc == c}
                for c in topo.link_classes()}
    factors = default_efficiency("h100", NDR)
    assert by_class == {c: {round(factors[c], 6)} for c in ("nvlink", "pcie", "nic")}
    raw = build_topology(make_cluster(), efficiency=RAW)
    assert raw.link_bandwidth == raw.link_raw_bandwidth


def test_multi_node_ring_channels_stay_on_rails(make_cluster):
    topo = build_topology(make_cluster(nodes=3, inter="rail-optimized"))
    rs = rings(range(24), topo)
    assert len(rs) == 8 and all(r.share == pytest.approx(1 / 8) for r in rs)
    nic_up_use: dict[int, int] = {}
    for r in rs:
        members = {a for a, _ in r.hops}
        assert members == set(range(24))
        assert all(b == r.hops[(i + 1) % len(r.hops)][0] for i, (_, b) in enumerate(r.hops))  # a closed path
        for a, b in r.hops:
            if a // 8 != b // 8:
                assert topo.nic_of(a) % 8 == topo.nic_of(b) % 8  # same rail
                assert "spine" not in {topo.link_class[l] for l in topo.route(a, b)}
                nic_up_use[topo.nic_of(a)] = nic_up_use.get(topo.nic_of(a), 0) + 1
    assert sorted(nic_up_use.values()) == [1] * 24  # every NIC sends for exactly one channel
    (t,) = plan_collective("all_reduce", range(24), S, topo, algorithm="ring")
    nic = 25e9 * topo.efficiency["nic"]
    assert uncontended_time([t], topo) == pytest.approx(t.latency + 2 * 23 / 24 * S / (8 * nic))


def test_a_measured_nic_efficiency_gives_the_measured_busbw(make_cluster):
    # Jean Zay's A100 nodes (BLOOM): NCCL 2.10.3 over 4 x Omni-Path 100 Gb/s without GPUDirect RDMA, whose ring
    # crossed each node through one NIC per direction at 40.5 Gb/s busbw (workloads/bloom-176b.yaml). A ring
    # that leaves every node through one NIC then runs at that figure; the switches keep their calibrated factor.
    topo = build_topology(make_cluster(nodes=4, nics=4, nic_bw=EDR, nic_eff=0.405))
    default = default_efficiency("a100-80gb", EDR)
    assert topo.efficiency == {**default, "nic": 0.405}
    ranks = [0, 8, 16, 24]  # GPU 0 of each node: one NIC each
    (t,) = plan_collective("all_reduce", ranks, S, topo, algorithm="ring")
    busbw = S / (uncontended_time([t], topo) - t.latency) * 2 * 3 / 4
    assert busbw * 8 == pytest.approx(40.5e9, rel=1e-9)
    # without the key, the InfiniBand generation's factor: the same ring at 0.96 of the line rate
    plain = build_topology(make_cluster(nodes=4, nics=4, nic_bw=EDR))
    (t0,) = plan_collective("all_reduce", ranks, S, plain, algorithm="ring")
    assert (uncontended_time([t], topo) - t.latency) / (uncontended_time([t0], plain) - t0.latency) == \
        pytest.approx(0.96 / 0.405)


def test_the_shipped_measured_nic_is_the_documented_one():
    # docs/constants.md lists MEASURED_NICS; the workload file carries the same figure
    from pathlib import Path

    from simcluster.spec import load_workload
    from simcluster.topology.efficiency import MEASURED_NICS

    rate, share, _ = MEASURED_NICS["Jean Zay A100 (workloads/bloom-176b.yaml)"]
    spec = load_workload(str(Path(__file__).resolve().parents[2] / "workloads" / "bloom-176b.yaml"))
    assert (spec.cluster.inter_node.nic_bandwidth, spec.cluster.inter_node.nic_efficiency) == (rate, share)


def test_dgx1_rings_use_every_nvlink_both_ways(make_cluster):
    topo = build_topology(make_cluster(nodes=1, intra="nvlink-mesh", inter="none", intra_bw=150e9, device="v100"))
    rs = rings(range(8), topo)
    assert len(rs) == 4  # the double-link cycle and the single-link cycle, each both ways
    assert sum(r.share for r in rs) == pytest.approx(1.0)
    assert all(len(topo.route(a, b)) == 1 for r in rs for a, b in r.hops)
    (t,) = plan_collective("all_reduce", range(8), S, topo)
    assert len(t.links) == topo.num_links  # all 32 directed NVLinks
    busbw = S / uncontended_time([t], topo) * 2 * 7 / 8
    assert busbw == pytest.approx(150e9 * topo.efficiency["nvlink"], rel=0.01)


def test_tree_plan_latency_and_bytes(make_cluster):
    topo = build_topology(make_cluster(nodes=16, radix=128))  # one leaf
    big = 1e11  # large enough for NCCL's Simple protocol
    (t,) = plan_collective("all_reduce", range(128), big, topo, algorithm="tree")
    t1, t2 = double_binary_tree(16)
    assert depth(t1) == 4 and depth(t2) == 4
    # NCCL's tree latency (src/graph/tuning.cc v2.8-v2.12), tree/Simple: baseLat 0 +
    # 2 x ((g-1) NVLink steps + log2(k) network steps) x 28 us
    assert t.latency == pytest.approx(2 * (7 + 4) * 28e-6)
    # half the buffer per tree, at NCCL's tree bandwidth factor 0.92 (tuning.cc: busBw * .92)
    assert t.nbytes == pytest.approx(big / 2 / 0.92)
    # one member per node: a tree over the members themselves, no intra-node steps
    (t,) = plan_collective("all_reduce", [8 * n for n in range(16)], big, topo, algorithm="tree")
    assert t.latency == pytest.approx(2 * 4 * 28e-6)
    # a small message runs LL: baseLat 4.4 us, NVLink step 0.52 us x 1.8 across nodes, network step 5 us
    (t,) = plan_collective("all_reduce", range(128), 1e3, topo, algorithm="tree")
    assert t.latency == pytest.approx(4.4e-6 + 2 * (7 * 0.52e-6 * 1.8 + 4 * 5.0e-6))
    assert t.nbytes == pytest.approx(1e3 / 2 / 0.92 * 3.8)
    # inside a node the tree is the ring (NCCL uses trees across nodes only)
    assert plan_collective("all_reduce", range(8), S, topo, algorithm="tree") == \
        plan_collective("all_reduce", range(8), S, topo, algorithm="ring")
    with pytest.raises(ValueError, match="does not implement all_gather"):
        plan_collective("all_gather", range(16), S, topo, algorithm="tree")


def test_torus_algorithm_dimension_by_dimension(make_cluster):
    topo = build_topology(make_cluster(nodes=4, gpus_per_node=4, intra="torus", inter="torus", torus=[4, 4],
                                       link_bw=50e9, inter_lat=1e-6))
    phases = plan_collective("all_reduce", range(16), S, topo, algorithm="torus")
    assert len(phases) == 4  # reduce-scatter x, y; all-gather y, x
    assert [p.nbytes for p in phases] == pytest.approx([3 / 4 * S, 3 / 16 * S, 3 / 16 * S, 3 / 4 * S])
    assert all(set(p.weights) == {0.5} and len(p.links) == 32 for p in phases)  # both ways round every ring
    bw = 50e9
    expected = 2 * (3 * 1e-6 + 3 / 4 * S / (2 * bw)) + 2 * (3 * 1e-6 + 3 / 16 * S / (2 * bw))
    assert uncontended_time(phases, topo) == pytest.approx(expected)
    assert [len(plan_collective(op, range(16), S, topo, algorithm="torus")) for op in ("all_gather", "reduce_scatter")] == [2, 2]
    # strided members (every other chip along x): still a box, hops of two links
    strided = [c for c in range(16) if c % 2 == 0]
    assert len(plan_collective("all_reduce", strided, S, topo, algorithm="torus")) == 4
    # not a box: the ring
    assert plan_collective("all_reduce", [0, 1, 5], S, topo, algorithm="torus") == \
        plan_collective("all_reduce", [0, 1, 5], S, topo, algorithm="ring")


def test_auto_candidates_and_size_choice(make_cluster):
    one = build_topology(make_cluster(nodes=1, inter="none"))
    assert candidates("all_reduce", range(8), one) == ["ring"]
    many = build_topology(make_cluster(nodes=16, radix=128))
    # NCCL's algorithms (tuning.cc: only all-reduce has more than the ring); no 2D ring
    assert candidates("all_reduce", range(128), many) == ["ring", "tree"]
    assert candidates("all_gather", range(128), many) == ["ring"]
    assert candidates("reduce_scatter", range(128), many) == ["ring"]
    assert candidates("all_to_all", range(128), many) == ["direct"]
    assert candidates("broadcast", range(128), many) == ["ring"]
    small, large = choose("all_reduce", range(128), 8e3, many), choose("all_reduce", range(128), 8e9, many)
    assert (small, large) == ("tree", "ring")
    for size, name in ((8e3, small), (8e9, large)):
        assert plan_collective("all_reduce", range(128), size, many) == \
            plan_collective("all_reduce", range(128), size, many, algorithm=name)
    # the registered `auto` is the large-message choice
    assert ALGORITHMS.get("auto")("all_reduce", range(128), many) == ALGORITHMS.get("ring")("all_reduce", range(128), many)


def test_auto_plan_cache_stays_effective(make_cluster):
    topo = build_topology(make_cluster(nodes=64, radix=64))
    group, mirrors = [8 * n for n in range(64)], tuple(range(1, 8))
    plan_collective("all_reduce", group, 1e3, topo, mirror_offsets=mirrors)
    n_keys = len(topo.plan_cache)
    for i in range(1000):
        plan_collective("all_reduce", group, 1e3 * 1.01**i, topo, mirror_offsets=mirrors)
    assert len(topo.plan_cache) == n_keys  # no new plans for new sizes
