"""``--set KEY=VALUE`` parsing and application."""

import pytest

from simcluster.spec.overrides import apply_overrides, parse_override


def test_parse_override_types():
    assert parse_override("parallelism.tensor=4").value == 4
    assert parse_override("training.recompute=full").value == "full"
    assert parse_override("parallelism.tensor = 4").key == "parallelism.tensor"
    assert parse_override("cluster.intra_node.bandwidth=600 GB/s").value == "600 GB/s"
    assert parse_override("parallelism.tensor=1,2,4").value == "1,2,4"
    assert parse_override("name=a=b").value == "a=b"


@pytest.mark.parametrize("text", ["parallelism.tensor", "=4", "a..b=1", "a b=1"])
def test_malformed(text):
    with pytest.raises(ValueError):
        parse_override(text)


def test_apply_creates_sections_and_records_keys():
    data = {"parallelism": {"tensor": 2}}
    keys, problems = apply_overrides(data, ["parallelism.tensor=4", "training.micro_batch=2"])
    assert problems == []
    assert keys == ["parallelism.tensor", "training.micro_batch"]
    assert data == {"parallelism": {"tensor": 4}, "training": {"micro_batch": 2}}


def test_apply_reports_malformed_and_scalar_parent():
    data = {"model": {"layers": 4}}
    keys, problems = apply_overrides(data, ["oops", "model.layers.x=3", "model.layers=[1"])
    assert keys == []
    assert [str(p) for p in problems] == [
        "--set: oops: expected KEY=VALUE, got 'oops'",
        "--set: model.layers.x: model.layers is a value, not a section with keys",
        "--set: model.layers: cannot read value '[1': expected ',' or ']', but got '<stream end>'",
    ]
    assert data == {"model": {"layers": 4}}


def test_nodes_and_devices_replace_each_other():
    data = {"cluster": {"preset": "x", "nodes": 4}}
    apply_overrides(data, ["cluster.devices=64"])
    assert data["cluster"] == {"preset": "x", "devices": 64}
    apply_overrides(data, ["cluster.nodes=2"])
    assert data["cluster"] == {"preset": "x", "nodes": 2}
