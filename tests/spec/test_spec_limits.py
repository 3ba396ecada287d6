"""Issue 19: every numeric key has a stated range; fabric combinations and sizes the builder
cannot make are found by validation; names are names, not paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from simcluster.errors import SpecError
from simcluster.spec import load_workload, validate_file
from simcluster.spec.fields import MAX_DEVICES, Range, as_file_name, name_problem
from simcluster.spec.limits import INTER_FABRICS, INTRA_FABRICS, MAX_MICROBATCHES
from simcluster.spec.reference import reference_rows

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "workloads" / "toy-8gpu.yaml"


def _problems(*overrides: str) -> list[str]:
    with pytest.raises(SpecError) as exc:
        load_workload(TOY, overrides=list(overrides))
    return [str(p) for p in exc.value.problems]


@pytest.mark.parametrize("override, key, words", [
    ("cluster.intra_node.latency=10", "cluster.intra_node.latency", "0 to 1 s"),
    ("cluster.intra_node.bandwidth=1e16", "cluster.intra_node.bandwidth", "100 TB/s"),
    ("cluster.intra_node.bandwidth=1.0e-300", "cluster.intra_node.bandwidth", "1 MB/s"),
    ("cluster.inter_node.nic_bandwidth='1 PB/s'", "cluster.inter_node.nic_bandwidth", "100 TB/s"),
    ("cluster.inter_node.latency='2 s'", "cluster.inter_node.latency", "0 to 1 s"),
    ("cluster.inter_node.oversubscription=0.5", "cluster.inter_node.oversubscription", "greater than or equal to 1"),
    ("cluster.inter_node.nic_efficiency=1.5", "cluster.inter_node.nic_efficiency", "less than or equal to 1"),
    ("cluster.inter_node.nic_efficiency=0", "cluster.inter_node.nic_efficiency", "greater than 0"),
    ("cluster.inter_node.nics_per_node=1000000", "cluster.inter_node.nics_per_node", "1024"),
    ("cluster.inter_node.switch_radix=10000000", "cluster.inter_node.switch_radix", "65536"),
    ("cluster.nodes=9223372036854775807", "cluster.nodes", "1000000"),
    ("cluster.stragglers={0: 1.0e+300}", "cluster.stragglers.0", "1000"),
    ("cluster.degraded_links={'gpu0->nvsw0': 1.0e-9}", "cluster.degraded_links.gpu0->nvsw0", "0.001"),
    ("cluster.device={peak_flops: 1.0e-300, memory: '80 GiB', memory_bandwidth: '2 TB/s'}",
     "cluster.device.peak_flops", "1 GFLOP/s"),
    ("model.layers=1000000", "model.layers", "100000"),
    ("model.hidden=1000000000000000000", "model.hidden", "1000000"),
    ("model.seq_len=1000000000000000000", "model.seq_len", "100000000"),
    ("model.vocab=1000000000000000000", "model.vocab", "100000000"),
    ("training.global_batch=1000000000", "training.global_batch", "100000000"),
    ("parallelism.grad_bucket_bytes=1", "parallelism.grad_bucket_bytes", "1 kB"),
])
def test_absurd_values_are_out_of_range(override, key, words):
    problems = _problems(override)
    assert any(f"{key}:" in p and words in p for p in problems), problems


def test_every_numeric_key_states_its_range():
    """Counts, sizes, rates and factors of the workload and cluster say their bounds in the reference."""
    rows = {r.key: r.type for r in reference_rows()}
    for key in ("model.layers", "model.hidden", "model.heads", "model.seq_len", "model.vocab", "training.global_batch",
                "parallelism.tensor", "nodes", "gpus_per_node", "inter_node.nics_per_node", "stragglers",
                "inter_node.oversubscription"):
        assert "≤" in rows[key], (key, rows[key])
    for key in ("intra_node.bandwidth", "inter_node.nic_bandwidth", "intra_node.latency", "device.peak_flops",
                "device.memory", "graph.links[].bandwidth", "graph.links[].latency"):
        assert " to " in rows[key], (key, rows[key])
    assert "0 (not given)" in rows["intra_node.bandwidth"]


def test_range_checks_nan_and_zero():
    r = Range(1e6, 1e14, "bandwidth", zero="not given")
    assert r.check(0) == 0 and r.check(1e9) == 1e9
    for bad in (float("nan"), float("inf"), 1.0, 1e15):
        with pytest.raises(ValueError, match="1 MB/s to 100 TB/s"):
            r.check(bad)


@pytest.mark.parametrize("overrides, key", [
    (["cluster.intra_node.fabric=none"], "cluster.intra_node.fabric"),
    (["cluster.intra_node.fabric=torus"], "cluster.intra_node.fabric"),
    (["cluster.intra_node.fabric=fat-tree"], "cluster.intra_node.fabric"),
    (["cluster.inter_node.fabric=nvswitch", "cluster.nodes=2"], "cluster.inter_node.fabric"),
    (["cluster.inter_node.fabric=none", "cluster.nodes=2"], "cluster.inter_node.fabric"),
    (["cluster.inter_node.fabric=torus", "cluster.inter_node.torus=[2, 2, 2]"], "cluster.inter_node.fabric"),
    (["cluster.intra_node.fabric=nvlink-mesh", "cluster.gpus_per_node=64", "parallelism.data=16"],
     "cluster.intra_node.fabric"),
])
def test_fabric_combinations_the_builder_cannot_make(overrides, key):
    problems = _problems(*overrides)
    assert any(f"{key}:" in p for p in problems), problems


def test_fabric_scopes_match_the_topology_builders():
    from simcluster.topology import fabrics

    assert set(INTRA_FABRICS) == set(fabrics.INTRA_FABRICS)
    assert set(INTER_FABRICS) == set(fabrics.INTER_FABRICS)


def test_clusters_too_large_to_build():
    (problem,) = [p for p in _problems("cluster.nodes=100000") if "devices" in p]
    assert "cluster.nodes:" in problem and f"{MAX_DEVICES:,}" in problem
    problems = _problems("cluster.nodes=20000", "cluster.gpus_per_node=1", "cluster.inter_node.nics_per_node=1024",
                         "parallelism.tensor=1", "parallelism.pipeline=1")
    assert any("cluster.inter_node.nics_per_node:" in p and "NICs" in p for p in problems), problems


def test_too_many_microbatches():
    problems = _problems("training.global_batch=20000000", "training.micro_batch=1")
    assert any("training.global_batch:" in p and f"{MAX_MICROBATCHES:,}" in p for p in problems), problems


@pytest.mark.parametrize("name", ["../../x", "/abs/path", "..", ".", "", "a" * 101, "a\0b", "a/b", "a b"])
def test_names_are_names_not_paths(name):
    assert name_problem(name)
    problems = _problems(f"name={name!r}" if name else "name=''")
    assert any("name:" in p and "file name" in p for p in problems), problems


def test_default_name_from_an_odd_file_name(tmp_path):
    odd = tmp_path / "my run (v2).yaml"
    odd.write_text(TOY.read_text().replace("name: toy-8gpu\n", ""))
    assert load_workload(odd).name == "my-run-v2"
    assert as_file_name("..") == "run" and as_file_name("a/../b") == "a-..-b"


def test_sweep_name_must_be_a_file_name(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"name: ../escape\nbase: {TOY}\ngrid:\n  parallelism.tensor: [1, 2]\n")
    (problem,) = validate_file(sweep)
    assert problem.key == "name" and problem.line == 1 and "file name" in problem.reason


def test_sweep_grid_too_large(tmp_path):
    sweep = tmp_path / "s.yaml"
    values = ", ".join(str(i) for i in range(1, 1001))
    sweep.write_text(f"base: {TOY}\ngrid:\n  model.layers: [{values}]\n  model.hidden: [{values}]\n")
    (problem,) = validate_file(sweep)
    assert problem.key == "grid" and "1,000,000 points" in problem.reason


@pytest.mark.parametrize("text, words", [
    ("a: 1\nfilters: ['x']\nbase: B\ngrid: {model.layers: [1]}\n", None),
])
def test_filters_are_bounded(tmp_path, text, words):
    from simcluster.spec.filters import compile_filter

    with pytest.raises(ValueError, match="nested too deeply|characters"):
        compile_filter("not " * 3000 + "true")
    flt = compile_filter("'x' * parallelism.tensor > 'a'")
    from simcluster.spec.filters import FilterError

    with pytest.raises(FilterError, match="only numbers"):
        flt(lambda key: 10**9)
