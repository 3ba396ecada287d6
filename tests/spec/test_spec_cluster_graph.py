"""Cluster files with an explicit graph: what loads, and one line (file, line, key, reason) per problem."""

from __future__ import annotations

import json

import pytest

from simcluster.errors import SpecError
from simcluster.spec import ClusterSpec, load_cluster, load_workload
from simcluster.spec.validate import validate_file

GRAPH = """\
name: lab
device: h100
gpus_per_node: 2
graph:
  switches: [sw0, sw1]
  links:
    - {between: [gpu0, sw0], bandwidth: "100 GB/s", latency: "1 us", class: nvlink}
    - {between: [gpu1, sw0], bandwidth: "100 GB/s", latency: "1 us", class: nvlink}
    - {between: [gpu2, sw1], bandwidth: "100 GB/s", latency: "1 us"}
    - {between: [gpu3, sw1], bandwidth: "100 GB/s", latency: "1 us"}
    - between: [sw0, sw1]
      bandwidth: "200 Gb/s"
      latency: "3 us"
      directed: true
    - {between: [sw1, sw0], bandwidth: 25e9, directed: true}
"""


def problems(write, text, name="g.yaml"):
    path = write(name, text)
    with pytest.raises(SpecError) as exc:
        load_cluster(path)
    return path, [str(p) for p in exc.value.problems]


def test_a_graph_loads_in_si_with_nodes_from_its_gpus(write):
    spec = load_cluster(write("g.yaml", GRAPH))
    assert (spec.nodes, spec.num_gpus) == (2, 4)  # nodes not written: the graph's 4 GPUs / 2 per node
    first, _, _, _, up, down = spec.graph.links
    assert (first.bandwidth, first.latency, first.link_class, first.directed) == (100e9, 1e-6, "nvlink", False)
    assert (up.bandwidth, up.latency, up.directed, up.link_class) == (25e9, 3e-6, True, "link")
    assert down.latency == 0.0
    assert spec.heterogeneous  # an explicit graph is not assumed symmetric: full fidelity
    out = json.loads(json.dumps(spec.resolved_dict()))
    assert out["graph"]["links"][0]["class"] == "nvlink" and out["num_gpus"] == 4
    assert "graph" not in load_cluster("dgx-h100").resolved_dict()  # unchanged without a graph
    again = ClusterSpec.model_validate(spec.model_dump())
    assert again == spec and again.graph.links[0].link_class == "nvlink"
    assert validate_file(write("g.yaml", GRAPH)) == []


def test_nodes_may_use_fewer_gpus_than_the_graph_but_not_more(write):
    assert load_cluster(write("g.yaml", GRAPH.replace("gpus_per_node: 2\n", "gpus_per_node: 2\nnodes: 1\n"))).num_gpus == 2
    path, lines = problems(write, GRAPH.replace("gpus_per_node: 2\n", "gpus_per_node: 2\nnodes: 3\n"))
    assert lines == [f"{path}:4: nodes: 3 nodes × 2 GPUs = 6 GPUs, but the graph's links connect 4 GPUs (gpu0 .. gpu3)"]
    path, lines = problems(write, GRAPH.replace("gpus_per_node: 2", "gpus_per_node: 3"))
    assert lines == [f"{path}:3: gpus_per_node: the graph's links connect 4 GPUs (gpu0 .. gpu3), not whole nodes "
                     "of 3; give nodes to use fewer"]


@pytest.mark.parametrize("old, new, expected", [
    ('[gpu2, sw1], bandwidth: "100 GB/s"', '[gpu2, sw2], bandwidth: "100 GB/s"',
     ":9: graph.links.2.between: unknown vertex 'sw2': neither a GPU (gpu0 .. gpu3) nor a switch; "
     "list it in graph.switches"),
    ("[gpu1, sw0]", "[gpu0, sw1]",
     ":6: graph.links: gpu1 has no links; GPUs are gpu0 .. gpu3 in rank order and each needs a link"),
    ('bandwidth: "200 Gb/s"', 'bandwidth: "200 Gb"',
     ":12: graph.links.4.bandwidth: expected a bandwidth like '300 GB/s', got '200 Gb', which is a size"),
    ('latency: "3 us"', 'latency: "3 uss"',
     ":13: graph.links.4.latency: expected a time like '2 us', got '3 uss' (unknown unit 'uss')"),
    ("      directed: true", "      directed: false",
     ":15: graph.links.5.between: duplicates graph.links.4: both give sw1->sw0 (give parallel links "
     "as one, their bandwidths summed; `directed: true` for one direction)"),
    ("bandwidth: 25e9,", "bandwidth: 25e9, clas: nic,",
     ":15: graph.links.5.clas: unknown key; known keys: bandwidth, between, class, directed, latency"),
    ("[gpu3, sw1]", "[gpu3]",
     ":10: graph.links.3.between: expected the two vertices a link joins, e.g. [gpu0, sw0], got ['gpu3']"),
    ("[gpu3, sw1]", "[gpu3, gpu3]", ":10: graph.links.3.between: links gpu3 to itself"),
    ("switches: [sw0, sw1]", "switches: [sw0, sw1, sw0]", ":5: graph.switches.2: switch 'sw0' is listed twice"),
    ("switches: [sw0, sw1]", "switches: [sw0, sw1, spare]", ":5: graph.switches.2: switch 'spare' has no links"),
    ("  links:\n", "  link:\n", ":6: graph.link: unknown key; known keys: links, switches"),
    ("gpus_per_node: 2\n", "gpus_per_node: 2\nintra_node: {bandwidth: 1e9}\n",
     ":4: intra_node: not used: the cluster's graph gives every link; remove it"),
])
def test_one_line_per_graph_problem(write, old, new, expected):
    assert old in GRAPH
    path, lines = problems(write, GRAPH.replace(old, new))
    assert f"{path}{expected}" in lines


def test_gpu_pairs_without_a_path(write):
    # sw1 -> sw0 only: gpu0 and gpu1 cannot reach gpu2 and gpu3
    path, lines = problems(write, GRAPH.replace("    - {between: [sw1, sw0], bandwidth: 25e9, directed: true}\n", "")
                           .replace("[sw0, sw1]\n      bandwidth", "[sw1, sw0]\n      bandwidth"))
    assert lines == [f"{path}:6: graph.links: no path from gpu0 to gpu2, gpu3: every GPU must reach every other",
                     f"{path}:6: graph.links: no path from gpu1 to gpu2, gpu3: every GPU must reach every other"]


def test_a_workload_names_the_graph_file_and_its_lines(write):
    write("lab.yaml", GRAPH.replace("[gpu3, sw1]", "[gpu3, sw9]"))
    base = ("name: w\nmodel: {layers: 2, hidden: 256, heads: 4, seq_len: 128, vocab: 1000}\n"
            "training: {global_batch: 8}\nparallelism: {tensor: 2}\n")
    w = write("w.yaml", base + "cluster: {path: lab.yaml}\n")
    with pytest.raises(SpecError) as exc:
        load_workload(w)
    (p,) = exc.value.problems
    assert (p.file.endswith("lab.yaml"), p.line, p.key) == (True, 10, "graph.links.3.between")
    write("lab.yaml", GRAPH)
    assert load_workload(w).cluster.num_gpus == 4
    with pytest.raises(SpecError, match=r"--set: cluster.nodes: 4 nodes × 2 GPUs = 8 GPUs, but the graph"):
        load_workload(w, overrides=["cluster.nodes=4"])
    w = write("w.yaml", base + "fidelity: symmetric\ncluster: {path: lab.yaml}\n")
    with pytest.raises(SpecError, match=r"w.yaml:5: fidelity: symmetric simulates one GPU per stage and cannot "
                                        r"simulate an explicit graph \(not assumed symmetric\); use full or auto"):
        load_workload(w)
