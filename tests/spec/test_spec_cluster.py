"""Cluster files, presets, device mappings and a workload's cluster section."""

from pathlib import Path

import pytest

from simcluster.errors import SpecError
from simcluster.spec import ClusterSpec, list_presets, load_cluster
from simcluster.spec.cluster import PRESETS_DIR, deep_merge, preset_path
from simcluster.topology.devices import DEVICES


def test_load_cluster_file(cluster_file):
    spec = load_cluster(cluster_file)
    assert isinstance(spec, ClusterSpec)
    assert spec.name == "tiny"
    assert spec.device is DEVICES.get("a100-80gb")
    assert (spec.gpus_per_node, spec.nodes, spec.num_gpus) == (8, 2, 16)
    assert spec.intra_node.bandwidth == 300e9
    assert spec.intra_node.latency == 2e-6
    assert spec.inter_node.nic_bandwidth == 25e9
    assert spec.inter_node.latency == 5e-6
    assert spec.inter_node.oversubscription == 1.0
    assert spec.inter_node.switch_radix == 64
    assert spec.price_per_gpu_hour is None
    assert spec.source.endswith("tiny.yaml")


def test_name_defaults_to_stem_and_numbers_are_si(write):
    spec = load_cluster(write("plain.yaml", """\
        device: h100
        gpus_per_node: 4
        intra_node: {bandwidth: 450000000000.0, latency: 0.000002}
        """))
    assert spec.name == "plain"
    assert spec.nodes == 1
    assert spec.intra_node.fabric == "nvswitch"
    assert spec.intra_node.bandwidth == 450e9
    assert spec.inter_node.fabric == "fat-tree"


def test_preset_by_name():
    assert "dgx-a100-80gb" in list_presets()
    spec = load_cluster("dgx-a100-80gb")
    assert spec.name == "dgx-a100-80gb"
    assert spec.device.name == "a100-80gb"
    assert spec.inter_node.nics_per_node == 8
    assert PRESETS_DIR == Path(__file__).resolve().parents[2] / "topologies"


def test_unknown_preset_lists_known():
    with pytest.raises(SpecError) as exc:
        load_cluster("dgx-z9000")
    (problem,) = exc.value.problems
    assert "unknown preset 'dgx-z9000'; known: " in problem.reason
    assert "dgx-a100-80gb" in problem.reason
    with pytest.raises(ValueError, match="unknown preset"):
        preset_path("../topologies/dgx-a100-80gb")


def test_missing_cluster_file(tmp_path):
    with pytest.raises(SpecError, match="file not found"):
        load_cluster(tmp_path / "none.yaml")


def test_device_mapping(write):
    spec = load_cluster(write("c.yaml", """\
        device: {name: mygpu, peak_flops: "400 TFLOP/s", memory: "96 GiB", memory_bandwidth: "3 TB/s"}
        gpus_per_node: 1
        """))
    d = spec.device
    assert (d.name, d.peak_flops, d.memory_bytes, d.memory_bandwidth) == ("mygpu", 400e12, 96 * 2**30, 3e12)
    assert d.peak_flops_fp32 == 400e12 / 16
    assert spec.resolved_dict()["device"]["memory_bytes"] == 96 * 2**30


def test_device_mapping_errors_point_inside(write):
    path = write("c.yaml", """\
        device:
          peak_flops: "400 GB/s"
          memory: "96 GiB"
          color: red
        gpus_per_node: 1
        """)
    with pytest.raises(SpecError) as exc:
        load_cluster(path)
    lines = [str(p) for p in exc.value.problems]
    assert f"{path}:2: device.peak_flops: expected a compute rate like '312 TFLOP/s', got '400 GB/s', which is a bandwidth" in lines
    assert f"{path}:1: device.memory_bandwidth: required key is missing" in lines
    assert any(s.startswith(f"{path}:4: device.color: unknown key; known keys: memory, memory_bandwidth, name") for s in lines)


def test_unknown_device_lists_known(write):
    path = write("c.yaml", "device: b200\ngpus_per_node: 8\nintra_node: {bandwidth: 300e9}\n")
    with pytest.raises(SpecError) as exc:
        load_cluster(path)
    (problem,) = exc.value.problems
    assert (problem.line, problem.key) == (1, "device")
    assert problem.reason.startswith("unknown device 'b200'; known: a100-40gb, a100-80gb")


def test_unknown_fabric_lists_known(write):
    path = write("c.yaml", "device: h100\ngpus_per_node: 8\nintra_node: {fabric: warp, bandwidth: 1}\n")
    with pytest.raises(SpecError, match=r":3: intra_node.fabric: unknown fabric 'warp'; known: .*nvswitch"):
        load_cluster(path)


def test_bad_unit_and_unknown_key(write):
    path = write("c.yaml", """\
        device: h100
        gpus_per_node: 8
        intra_node:
          bandwidth: fast
          latncy: 2 us
        """)
    with pytest.raises(SpecError) as exc:
        load_cluster(path)
    lines = [str(p) for p in exc.value.problems]
    assert f"{path}:4: intra_node.bandwidth: expected a bandwidth like '300 GB/s', got 'fast'" in lines
    assert f"{path}:5: intra_node.latncy: unknown key; known keys: bandwidth, fabric, latency" in lines


def test_unknown_top_key_lists_cluster_keys(write):
    with pytest.raises(SpecError) as exc:
        load_cluster(write("c.yaml", "device: h100\ngpus_per_node: 1\ngpus: 8\n"))
    (problem,) = exc.value.problems
    known = sorted(set(ClusterSpec.model_fields) - set(ClusterSpec.hidden_keys))
    assert problem.reason == "unknown key; known keys: " + ", ".join(known)
    assert {"device", "gpus_per_node", "nodes", "intra_node", "inter_node"} <= set(known)


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("gpus_per_node: 8\nnodes: 0\n", "nodes", "must be greater than 0, got 0"),
        ("gpus_per_node: eight\n", "gpus_per_node", "expected an integer, got 'eight'"),
        ("gpus_per_node: 8.0\n", "gpus_per_node", "expected an integer, got 8.0"),
        ("gpus_per_node: 8\nnodes: 2\ninter_node: {fabric: fat-tree}\n", "inter_node.nic_bandwidth", "needed (> 0) with 2 nodes"),
        ("gpus_per_node: 1\ninter_node: {fabric: torus}\n", "inter_node.torus", "needed for fabric torus, e.g. [16, 16, 16]"),
    ],
)
def test_cluster_value_problems(write, text, key, reason):
    text = "device: tpu-v4\n" + text + ("intra_node: {bandwidth: 1e9}\n" if "intra_node" not in text else "")
    with pytest.raises(SpecError) as exc:
        load_cluster(write("c.yaml", text))
    assert (key, reason) in [(p.key, p.reason) for p in exc.value.problems]


def test_intra_bandwidth_needed_with_several_gpus(write):
    with pytest.raises(SpecError, match="intra_node.bandwidth: needed"):
        load_cluster(write("c.yaml", "device: h100\ngpus_per_node: 8\n"))


def test_torus_cluster(write):
    spec = load_cluster(write("pod.yaml", """\
        device: tpu-v4
        gpus_per_node: 4
        nodes: 1024
        intra_node: {fabric: torus}
        inter_node: {fabric: torus, torus: [16, 16, 16], link_bandwidth: "45 GB/s", latency: "1 us"}
        price_per_gpu_hour: 3.22
        """))
    assert spec.inter_node.torus == [16, 16, 16]
    assert spec.inter_node.link_bandwidth == 45e9
    assert spec.num_gpus == 4096
    assert spec.price_per_gpu_hour == 3.22


def test_load_cluster_passes_spec_through():
    spec = load_cluster("dgx-a100-80gb")
    assert load_cluster(spec) is spec


def test_deep_merge():
    base = {"a": {"x": 1, "y": 2}, "b": 1}
    assert deep_merge(base, {"a": {"y": 3}, "c": 4}) == {"a": {"x": 1, "y": 3}, "b": 1, "c": 4}
    assert base == {"a": {"x": 1, "y": 2}, "b": 1}
    assert deep_merge({"d": "h100"}, {"d": {"name": "x"}}) == {"d": {"name": "x"}}


def test_resolved_dict_is_json(cluster_file):
    import json

    spec = load_cluster(cluster_file)
    out = json.loads(json.dumps(spec.resolved_dict()))
    assert out["num_gpus"] == 16
    assert out["device"]["peak_flops"] == 312e12
    assert out["inter_node"]["nic_bandwidth"] == 25e9


def test_model_dump_round_trip(cluster_file):
    spec = load_cluster(cluster_file)
    again = ClusterSpec.model_validate(spec.model_dump())
    assert again == spec
    assert again.device == spec.device


def test_programmatic_construction():
    spec = ClusterSpec(device="h100", gpus_per_node=8, intra_node={"bandwidth": "450 GB/s"})
    assert spec.num_gpus == 8 and spec.intra_node.bandwidth == 450e9 and spec.source == "<inline>"


def test_device_keys_merge_over_a_presets_named_device():
    """A preset names its device (``device: a100-80gb``); a workload's device keys merge over that device's
    catalogue figures (an H100 with 96 GB; a bracketed peak) instead of asking for every figure, and an unknown
    device key is still refused."""
    from simcluster.catalogue import DEVICES
    from simcluster.errors import SpecError
    from simcluster.spec import load_workload

    spec = load_workload("workloads/toy-8gpu.yaml", ["cluster.device.memory=96 GB",
                                                      "cluster.device.peak_flops_range=[300 TFLOP/s, 320 TFLOP/s]"])
    d, ref = spec.cluster.device, DEVICES.get("a100-80gb")
    assert (d.name, d.peak_flops, d.memory_bandwidth, d.vendor) == (ref.name, ref.peak_flops, ref.memory_bandwidth,
                                                                     ref.vendor)
    assert d.memory_bytes == 96e9 and d.peak_flops_range == (300e12, 320e12)
    assert load_workload("workloads/toy-8gpu.yaml").cluster.device == ref
    with pytest.raises(SpecError, match="cluster.device.foo: unknown key"):
        load_workload("workloads/toy-8gpu.yaml", ["cluster.device.foo=1"])
