"""Explicit graphs (cluster key ``graph``): links as given, least-latency routes, collectives, the example file."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace as NS

import networkx as nx
import pytest

from simcluster.cli import main
from simcluster.collectives import plan_collective
from simcluster.collectives.select import choose
from simcluster.engine import simulate
from simcluster.lowering.task import TaskGraph
from simcluster.metrics import check_invariants
from simcluster.spec import ClusterSpec, list_presets, load_cluster
from simcluster.spec.cluster import preset_path
from simcluster.topology import build_topology
from simcluster.topology.efficiency import NVLINK_BY_DEVICE
from simcluster.spec.graph import graph_problems

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "topologies" / "examples" / "two-nodes-explicit.yaml"


def link(a, b, bw=100e9, lat=1e-6, **more):
    return {"between": [a, b], "bandwidth": bw, "latency": lat, **more}


def cluster(links, switches=(), gpus_per_node=4, nodes=None, device="h100"):
    """A duck-typed cluster (as build_topology reads it) around a graph of plain mappings.

    ``inter_node`` as a ClusterSpec's default (a graph has no NICs of its own: no line rate)."""
    graph = NS(switches=list(switches), links=list(links))
    m = 1 + max(int(v[3:]) for l in links for v in l["between"] if v.startswith("gpu"))
    return NS(name="g", device=device, gpus_per_node=gpus_per_node, nodes=nodes or m // gpus_per_node, graph=graph,
              inter_node=NS(nic_bandwidth=0.0))


def ring_of(n, bw=100e9, lat=1e-6):
    return [link(f"gpu{i}", f"gpu{(i + 1) % n}", bw, lat) for i in range(n)]


def path_names(topo, route):
    src, dst = topo.link_endpoints
    return [src[route[0]]] + [dst[l] for l in route]


def random_graph(seed: int, gpus: int = 8, switches: int = 6, extra: int = 14):
    """A connected random graph: a spanning tree plus extra links, latencies in whole ns (ties happen)."""
    rng = random.Random(seed)
    names = [f"gpu{i}" for i in range(gpus)] + [f"s{j}" for j in range(switches)]
    rng.shuffle(names)
    pairs = {tuple(sorted((names[i], names[rng.randrange(i)]))) for i in range(1, len(names))}
    while len(pairs) < len(names) - 1 + extra:
        a, b = rng.sample(names, 2)
        pairs.add(tuple(sorted((a, b))))
    links = [link(a, b, 10e9 * rng.randint(1, 4), rng.choice([1, 2, 3]) * 1e-9) for a, b in sorted(pairs)]
    return cluster(links, [f"s{j}" for j in range(switches)], gpus_per_node=2)


@pytest.mark.parametrize("seed", range(4))
def test_routes_are_paths_and_shortest_by_latency_then_hops(seed):
    spec = random_graph(seed)
    topo = build_topology(spec)
    g = topo.graph
    assert g.number_of_edges() == topo.num_links == 2 * len(spec.graph.links)
    # lexicographic (latency, hops) as one integer weight: latency in ns x 1000 + 1 per link
    w = {(a, b): round(d["latency"] * 1e9) * 1000 + 1 for a, b, d in g.edges(data=True)}
    nx.set_edge_attributes(g, w, "w")
    dist = dict(nx.all_pairs_dijkstra_path_length(g, weight="w"))
    src, dst = topo.link_endpoints
    for a in range(topo.num_gpus):
        for b in range(topo.num_gpus):
            r = topo.route(a, b)
            if a == b:
                assert r == ()
                continue
            assert src[r[0]] == f"gpu{a}" and dst[r[-1]] == f"gpu{b}"
            assert all(dst[x] == src[y] for x, y in zip(r, r[1:]))
            names = path_names(topo, r)
            assert len(set(names)) == len(names)  # a simple path
            assert sum(w[src[l], dst[l]] for l in r) == dist[f"gpu{a}"][f"gpu{b}"]
            assert topo.route_latency(a, b) == pytest.approx(sum(topo.link_latency[l] for l in r))
            assert topo.route(a, b) is r  # cached


def test_ties_are_broken_by_vertex_names_and_routes_are_deterministic():
    links = [link("gpu0", "b"), link("b", "gpu1"), link("gpu0", "a"), link("a", "gpu1"),
             link("gpu0", "c", lat=0.5e-6), link("c", "d", lat=0.5e-6), link("d", "gpu1")]  # same latency, 3 links
    topo = build_topology(cluster(links, ["b", "a", "c", "d"], gpus_per_node=2))
    assert path_names(topo, topo.route(0, 1)) == ["gpu0", "a", "gpu1"]
    assert path_names(topo, topo.route(1, 0)) == ["gpu1", "a", "gpu0"]
    again = build_topology(cluster(list(reversed(links)), ["d", "c", "b", "a"], gpus_per_node=2))
    assert path_names(again, again.route(0, 1)) == ["gpu0", "a", "gpu1"]
    # lower latency wins over fewer links
    links[-1] = link("d", "gpu1", lat=0.1e-6)
    topo = build_topology(cluster(links, ["b", "a", "c", "d"], gpus_per_node=2))
    assert path_names(topo, topo.route(0, 1)) == ["gpu0", "c", "d", "gpu1"]


def test_directed_links_and_routes_through_gpus():
    # a one-way ring: gpu0 -> gpu1 -> gpu2 -> gpu0
    links = [link(f"gpu{i}", f"gpu{(i + 1) % 3}", directed=True) for i in range(3)]
    topo = build_topology(cluster(links, gpus_per_node=1))
    assert topo.num_links == 3
    assert path_names(topo, topo.route(0, 2)) == ["gpu0", "gpu1", "gpu2"]  # the long way round, through gpu1
    assert path_names(topo, topo.route(2, 0)) == ["gpu2", "gpu0"]


def test_nodes_classes_and_efficiency():
    links = [link(f"gpu{i}", "sw0" if i < 2 else "sw1", **{"class": "nvlink"}) for i in range(4)]
    links += [link("sw0", "sw1", 50e9, 2e-6, **{"class": "optical"}), link("gpu0", "gpu3", 10e9, 1e-3)]
    topo = build_topology(cluster(links, ["sw0", "sw1"], gpus_per_node=2))
    assert (topo.num_nodes, topo.num_gpus) == (2, 4)
    assert [topo.node_of(g) for g in range(4)] == [0, 0, 1, 1]
    assert topo.nic_of(0) is None and not topo.is_torus
    assert topo.intra_fabric == topo.inter_fabric == "explicit"
    assert topo.link_classes() == ["nvlink", "link", "optical"]
    by_name = dict(zip(topo.link_names, topo.link_bandwidth))
    assert by_name["gpu0->sw0"] == pytest.approx(100e9 * NVLINK_BY_DEVICE["h100"])  # a known class: calibrated
    assert by_name["sw0->sw1"] == 50e9 and by_name["gpu3->gpu0"] == 10e9  # others at the full figure
    assert path_names(topo, topo.route(0, 3)) == ["gpu0", "sw0", "sw1", "gpu3"]  # 4 us beats the 1 ms direct link


def test_a_cluster_may_use_fewer_gpus_than_the_graph():
    topo = build_topology(cluster(ring_of(6), gpus_per_node=2, nodes=1))
    assert topo.num_gpus == 2
    assert path_names(topo, topo.route(1, 0)) == ["gpu1", "gpu0"]
    with pytest.raises(ValueError, match="gpu 2 out of range"):
        topo.route(0, 2)
    spec = cluster(ring_of(6), gpus_per_node=2, nodes=4)
    with pytest.raises(ValueError, match=r"4 nodes x 2 GPUs = 8 GPUs, but the graph's links connect 6"):
        build_topology(spec)


def test_bad_graphs_raise_on_build():
    with pytest.raises(ValueError, match="unknown vertex 'sw9'"):
        build_topology(cluster([link("gpu0", "sw9"), link("gpu1", "gpu0")], gpus_per_node=2))
    with pytest.raises(ValueError, match="no path from gpu1 to gpu0"):
        build_topology(cluster([link("gpu0", "gpu1", directed=True)], gpus_per_node=2))


def test_graph_problems_are_keyed_and_in_file_order():
    graph = {"switches": ["sw", "sw", "idle"], "links": [
        link("gpu0", "sw"), link("gpu3", "sw"), link("sw", "gpu0", directed=True), link("gpu3", "gpu3"),
        link("gpu0", "gpu03")]}
    assert graph_problems(graph) == [
        ("graph.switches.1", "switch 'sw' is listed twice"),
        ("graph.switches.2", "switch 'idle' has no links"),
        ("graph.links.2.between", "duplicates graph.links.0: both give sw->gpu0 (give parallel links as one, "
                                  "their bandwidths summed; `directed: true` for one direction)"),
        ("graph.links.3.between", "links gpu3 to itself"),
        ("graph.links.4.between", "unknown vertex 'gpu03': neither a GPU (gpu0 .. gpu3) nor a switch; "
                                  "a GPU name has no leading zeros, e.g. gpu3"),
        ("graph.links", "gpu1, gpu2 have no links; GPUs are gpu0 .. gpu3 in rank order and each needs a link"),
    ]


def _time(topo, op, group, nbytes, algorithm):
    tg = TaskGraph()
    tr = plan_collective(op, group, nbytes, topo, algorithm=algorithm)
    tg.add(kind="collective", name=op, ranks=(group[0],), stream="dp", transfers=tr, nbytes=nbytes)
    res = simulate(tg, topo)
    check_invariants(tg, res.start, res.end, res.released_by)
    return res.end[0]


@pytest.mark.parametrize("algorithm", ["ring", "auto"])
@pytest.mark.parametrize("S", [1e6, 256e6])
def test_ring_all_reduce_on_an_explicit_ring_matches_closed_form(algorithm, S):
    n, alpha, B = 4, 3e-6, 40e9
    spec = ClusterSpec(device="h100", gpus_per_node=4, graph={"links": ring_of(n, f"{B / 1e9:g} GB/s", "3 us")})
    topo = build_topology(spec)
    assert spec.nodes == 1 and topo.num_links == 2 * n
    expected = 2 * (n - 1) * alpha + 2 * (n - 1) / n * S / B
    assert _time(topo, "all_reduce", tuple(range(n)), S, algorithm) == pytest.approx(expected, rel=1e-9)
    if algorithm == "auto":
        assert choose("all_reduce", tuple(range(n)), S, topo) == "ring"


def test_the_example_file_plans_every_collective():
    spec = load_cluster(EXAMPLE)
    topo = build_topology(spec)
    assert (topo.num_nodes, topo.gpus_per_node, topo.num_links) == (2, 4, 40)
    assert [topo.link_names[l] for l in topo.route(0, 1)] == ["gpu0->nvsw0", "nvsw0->gpu1"]
    assert [topo.link_names[l] for l in topo.route(3, 4)] == ["gpu3->nic0.1", "nic0.1->leaf", "leaf->nic1.0",
                                                             "nic1.0->gpu4"]
    assert topo.route_latency(3, 4) == pytest.approx(5e-6) and topo.route_latency(0, 1) == pytest.approx(2e-6)
    group = tuple(range(8))
    for op in ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all"):
        for algorithm in ("auto", "ring", "direct", "hierarchical") + (("tree",) if op == "all_reduce" else ()):
            if algorithm == "ring" and op == "all_to_all":
                continue
            assert _time(topo, op, group, 64e6, algorithm) > 0
    # auto runs NCCL's algorithms only (ring or tree; nccl src/graph/tuning.cc): never the 2D ring,
    # though hierarchical, using both NICs of a node where the single ring uses one, is faster here
    assert choose("all_reduce", group, 1e9, topo) in ("ring", "tree")
    assert _time(topo, "all_reduce", group, 1e9, "hierarchical") < _time(topo, "all_reduce", group, 1e9, "auto")


def test_examples_are_not_presets():
    assert "two-nodes-explicit" not in list_presets()
    assert all("/" not in p for p in list_presets())
    with pytest.raises(ValueError, match="unknown preset"):
        preset_path("examples/two-nodes-explicit")


def _cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def test_the_example_runs_end_to_end_through_the_cli(capsys, tmp_path):
    rc, out, err = _cli(capsys, "validate", EXAMPLE)
    assert rc == 0, err
    rc, out, err = _cli(capsys, "collective", "--cluster", EXAMPLE, "--gpus", "8", "--min", "1MiB",
                        "--max", "64MiB", "--step-factor", "8")
    assert rc == 0, err
    assert "all_reduce on 8 GPUs (2 nodes x 4) of two-nodes-explicit" in out
    rows = [l.split() for l in out.splitlines() if l.strip() and not l.startswith("#")]
    assert len(rows) == 3 and all(float(r[3]) > 0 for r in rows)
    rc, out, err = _cli(capsys, "collective", "--cluster", EXAMPLE, "--gpus", "4", "--min", "1GiB",
                        "--max", "1GiB", "--algorithm", "ring")
    assert rc == 0, err
    busbw = float(out.splitlines()[3].split()[5])
    # one node's NVSwitch, as dgx-h100: the ring's ~370 GB/s of NVLink4's 450 (NVIDIA/nccl-tests#212)
    assert busbw == pytest.approx(370, rel=0.02)

    workload = tmp_path / "w.yaml"
    workload.write_text(
        "name: explicit-toy\n"
        "model: {layers: 4, hidden: 1024, heads: 16, seq_len: 1024, vocab: 32000}\n"
        "training: {global_batch: 16, micro_batch: 2}\n"
        "parallelism: {tensor: 2, pipeline: 2, data: 2}\n"
        f"cluster: {{path: {EXAMPLE}}}\n")
    rc, out, err = _cli(capsys, "run", workload, "--out", tmp_path / "run")
    assert rc == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert summary["num_gpus"] == 8 and summary["iteration_time_s"] > 0
    assert config["cluster"]["graph"]["links"][0] == {
        "between": ["gpu0", "nvsw0"], "bandwidth": 450e9, "latency": 1e-6, "class": "nvlink", "directed": False}
    # the resolved cluster is a valid cluster again, and builds the same topology
    again = ClusterSpec.model_validate({k: v for k, v in config["cluster"].items() if k != "num_gpus"})
    assert build_topology(again).link_names == build_topology(load_cluster(EXAMPLE)).link_names
