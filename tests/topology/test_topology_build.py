import random

import pytest

from simcluster.registry import UnknownName
from simcluster.topology import FABRICS, build_topology
from simcluster.topology.efficiency import RAW, default_efficiency
from simcluster.topology.torus import torus_shape

CASES = {
    "nvswitch/fat-tree": dict(nodes=6, intra="nvswitch", inter="fat-tree", radix=8),
    "nvswitch/fat-tree-oversub-shared-nic": dict(nodes=6, nics=2, oversubscription=3.0, radix=8),
    "nvswitch/single-leaf": dict(nodes=3, radix=64),
    "nvlink-mesh/fat-tree": dict(nodes=5, intra="nvlink-mesh", nics=4, radix=8),
    "nvlink-mesh-6/fat-tree": dict(nodes=3, gpus_per_node=6, intra="nvlink-mesh", nics=2),
    "pcie/fat-tree": dict(nodes=4, gpus_per_node=4, intra="pcie", nics=1, radix=4),
    "nvswitch/rail": dict(nodes=9, inter="rail-optimized", radix=8),
    "torus-2d": dict(nodes=16, gpus_per_node=4, intra="torus", inter="torus", torus=[8, 8], link_bw=82e9),
    "torus-3d": dict(nodes=16, gpus_per_node=4, intra="torus", inter="torus", torus=[4, 4, 4], link_bw=50e9),
    "torus-small": dict(nodes=3, gpus_per_node=4, intra="torus", inter="torus", torus=[16, 16, 16]),
    "single-node": dict(nodes=1, inter="none"),
}


def test_registry_keeps_stub_names(make_cluster):
    for name in ("nvswitch", "nvlink-mesh", "pcie", "fat-tree", "rail-optimized", "torus", "none"):
        assert name in FABRICS
    with pytest.raises(UnknownName, match="known: "):
        build_topology(make_cluster(intra="nvlink9"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_routes_are_paths_in_the_graph(make_cluster, case):
    topo = build_topology(make_cluster(**CASES[case]))
    g = topo.graph
    src, dst = topo.link_endpoints
    assert len(topo.link_names) == len(topo.link_bandwidth) == len(topo.link_latency) == len(topo.link_class)
    assert g.number_of_edges() == topo.num_links  # no parallel directed links
    rng = random.Random(0)
    pairs = [(rng.randrange(topo.num_gpus), rng.randrange(topo.num_gpus)) for _ in range(300)]
    for a, b in pairs:
        r = topo.route(a, b)
        if a == b:
            assert r == ()
            continue
        assert src[r[0]] == f"gpu{a}" and dst[r[-1]] == f"gpu{b}"
        for x, y in zip(r, r[1:]):
            assert dst[x] == src[y]
        for l in r:
            assert g.edges[src[l], dst[l]]["link"] == l
        assert len(set(r)) == len(r)
        assert topo.route(a, b) is r  # cached
        assert topo.route_latency(a, b) == pytest.approx(sum(topo.link_latency[l] for l in r))


def test_nvswitch_intra_node_stays_in_node(make_cluster):
    topo = build_topology(make_cluster(nodes=2))
    r = topo.route(0, 5)
    assert [topo.link_names[l] for l in r] == ["gpu0->nvsw0", "nvsw0->gpu5"]
    assert all(topo.link_raw_bandwidth[l] == 300e9 for l in r)
    assert topo.route_latency(0, 5) == pytest.approx(2e-6)
    assert topo.node_of(13) == 1


def test_fat_tree_route_shape_and_latency(make_cluster):
    topo = build_topology(make_cluster(nodes=8, radix=8))  # 64 NICs, 4 down / 4 up per leaf
    names = [topo.link_names[l] for l in topo.route(1, 63)]
    assert names[0] == "gpu1->nic0.1" and names[1] == "nic0.1->leaf0"
    assert names[2].startswith("leaf0->spine") and names[3].endswith("->leaf15")
    assert names[4:] == ["leaf15->nic7.7", "nic7.7->gpu63"]
    assert topo.route_latency(1, 63) == pytest.approx(5e-6)
    # same leaf: no spine
    assert len(topo.route(0, 9)) == 6 and len(topo.route(0, 2)) == 2


def test_single_leaf_when_everything_fits(make_cluster):
    topo = build_topology(make_cluster(nodes=4, radix=64))
    assert "spine" not in topo.link_classes()
    assert len(topo.route(0, 31)) == 4


def test_shared_nics_and_oversubscription(make_cluster):
    topo = build_topology(make_cluster(nodes=6, nics=2, oversubscription=3.0, radix=8, nic_bw=10e9))
    # GPUs 0-3 share NIC 0.0, 4-7 NIC 0.1
    assert topo.route(0, 8)[1] == topo.route(3, 8)[1]
    assert topo.route(0, 8)[1] != topo.route(4, 8)[1]
    # radix 8, o = 3: 2 up, 6 down (3 nodes of 2 NICs); a leaf's uplink capacity is 6 * 10 GB/s / 3,
    # one link to the spine layer (adaptive routing spreads a flow over all spines)
    spine = [b for b, c, n in zip(topo.link_raw_bandwidth, topo.link_class, topo.link_names) if c == "spine" and n.startswith("leaf0->")]
    assert len(spine) == 1 and sum(spine) == pytest.approx(6 * 10e9 / 3)


def _leaf_of_nics(topo):
    src, dst = topo.link_endpoints
    return {a: int(b[4:]) for a, b, c in zip(src, dst, topo.link_class) if c == "nic" and a.startswith("nic")}


@pytest.mark.parametrize("o, radix, per_leaf", [(1, 40, 2), (2, 40, 3), (1, 36, 2), (1, 64, 4)])
def test_fat_tree_leaves_hold_whole_nodes(make_cluster, o, radix, per_leaf):
    # 8 NICs per node: a 40-port leaf (20 down) takes 2 whole nodes, not 2.5; o = 2: 27 down -> 3 nodes
    topo = build_topology(make_cluster(nodes=13, oversubscription=o, radix=radix, nic_bw=25e9))
    leaf = _leaf_of_nics(topo)
    assert leaf == {f"nic{n}.{j}": n // per_leaf for n in range(13) for j in range(8)}
    # one link each way between every leaf and the spine layer: the leaf's NICs over o
    ups = [b for b, c, n in zip(topo.link_raw_bandwidth, topo.link_class, topo.link_names)
           if c == "spine" and n.endswith("->spine")]
    assert len(ups) == -(-13 // per_leaf) and ups == pytest.approx([per_leaf * 8 * 25e9 / o] * len(ups))


def test_node_wider_than_a_leaf_spans_leaves_of_its_own(make_cluster):
    topo = build_topology(make_cluster(nodes=3, radix=10, nics=8))  # 5 down, 5 up: 2 leaves per node
    assert _leaf_of_nics(topo) == {f"nic{n}.{j}": 2 * n + j // 5 for n in range(3) for j in range(8)}


def test_routes_are_deterministic(make_cluster):
    a, b = (build_topology(make_cluster(nodes=13, radix=40)) for _ in range(2))
    pairs = [(g, (g * 37 + 11) % 104) for g in range(104)]
    assert [a.route(*p) for p in pairs] == [b.route(*p) for p in pairs]
    assert [a.link_names[l] for l in a.route(0, 103)] == [
        "gpu0->nic0.0", "nic0.0->leaf0", "leaf0->spine", "spine->leaf6", "leaf6->nic12.7", "nic12.7->gpu103"]


def test_rail_optimized_same_rail_stays_on_rail_leaf(make_cluster):
    topo = build_topology(make_cluster(nodes=4, inter="rail-optimized"))
    names = [topo.link_names[l] for l in topo.route(3, 3 + 8 * 3)]
    assert names[1] == "nic0.3->leaf3" and names[2] == "leaf3->nic3.3"
    assert any(topo.link_class[l] == "spine" for l in topo.route(3, 8 + 4))  # cross-rail


def test_dgx1_hybrid_cube_mesh(make_cluster):
    topo = build_topology(make_cluster(nodes=1, intra="nvlink-mesh", inter="none", intra_bw=150e9))
    assert topo.num_links == 2 * 16
    (l03,) = topo.route(0, 3)
    (l01,) = topo.route(0, 1)
    assert topo.link_raw_bandwidth[l03] == pytest.approx(50e9) and topo.link_raw_bandwidth[l01] == pytest.approx(25e9)
    assert len(topo.route(0, 5)) == 2  # via one intermediate GPU
    for g in range(8):  # six NVLinks per GPU
        assert sum(b for b, n in zip(topo.link_raw_bandwidth, topo.link_names) if n.startswith(f"gpu{g}->")) == pytest.approx(150e9)


def test_torus_dimension_order_and_wraparound(make_cluster):
    topo = build_topology(make_cluster(nodes=16, gpus_per_node=4, intra="torus", inter="torus", torus=[8, 8], link_bw=82e9))
    assert topo.shape == (8, 8) and topo.num_links == 64 * 4
    assert len(topo.route(0, 7)) == 1  # wraparound
    assert len(topo.route(0, 4)) == 4
    assert len(topo.route(0, 8 * 4 + 4)) == 8
    names = [topo.link_names[l] for l in topo.route(0, 9)]
    assert names == ["gpu0->gpu1", "gpu1->gpu9"]  # x first, then y
    assert topo.route_latency(0, 9) == pytest.approx(2 * 5e-6)


def test_torus_shapes(make_cluster):
    assert torus_shape(1024, [32, 32]) == (32, 32)
    assert torus_shape(256, [32, 32]) == (16, 16)
    assert torus_shape(512, [16, 16, 16]) == (8, 8, 8)
    assert torus_shape(256, [16, 16, 16]) == (4, 8, 8)
    assert torus_shape(4, [16, 16, 16]) == (1, 2, 2)
    with pytest.raises(ValueError, match="do not fit"):
        torus_shape(8192, [16, 16, 16])


def test_bad_combinations(make_cluster):
    with pytest.raises(ValueError, match="'none' cannot connect"):
        build_topology(make_cluster(nodes=2, inter="none"))
    with pytest.raises(ValueError, match="torus"):
        build_topology(make_cluster(nodes=2, intra="nvswitch", inter="torus", torus=[4, 4]))
    topo = build_topology(make_cluster(nodes=1, inter="none"))
    with pytest.raises(ValueError, match="out of range"):
        topo.route(0, 8)


def test_efficiency_hook(make_cluster):
    # calibrated by default, per NVLink and InfiniBand generation (simcluster.topology.efficiency, whose
    # factors test_collectives_algorithms and test_collectives_nccl check); RAW gives datasheet figures
    default = build_topology(make_cluster())  # A100 80 GB, HDR NICs
    assert default.efficiency == default_efficiency("a100-80gb", 200e9 / 8)
    assert all(0 < f < 1 for c, f in default.efficiency.items() if c != "torus")
    raw = build_topology(make_cluster(), efficiency=RAW)
    assert all(raw.efficiency[c] == 1.0 for c in raw.link_classes()) and raw.link_bandwidth == raw.link_raw_bandwidth
    topo = build_topology(make_cluster(), efficiency={"nic": 0.5})
    for b, rb, c in zip(topo.link_bandwidth, topo.link_raw_bandwidth, topo.link_class):
        assert b == pytest.approx(rb * (0.5 if c == "nic" else default.efficiency[c]))


def test_build_2048_node_fat_tree(make_cluster):
    topo = build_topology(make_cluster(nodes=2048, nic_bw=25e9))
    assert topo.num_gpus == 16384
    r = topo.route(0, 16383)
    assert len(r) == 6
    for g in range(0, 16384, 7):
        dst = (g * 31 + 8) % 16384
        if dst != g:
            route = topo.route(g, dst)
            assert route and topo.link_names[route[0]].startswith(f"gpu{g}->")
