"""Sweep files: loading, every problem with file, line and key; quick sweeps from ``--set``."""

from __future__ import annotations

import pytest

from sweep_helpers import EXAMPLES, TOY, small_sweep, write_sweep
from simcluster.errors import SpecError
from simcluster.spec import load_workload, validate_file
from simcluster.spec.sweep import load_sweep, quick_sweep, split_list, yaml_value
from simcluster.sweep.grid import expand, product_size


def problems_of(tmp_path, text):
    with pytest.raises(SpecError) as err:
        load_sweep(write_sweep(tmp_path, text))
    return [(p.line, p.key, p.reason) for p in err.value.problems]


def test_example_sweeps_are_valid_and_large_enough():
    for path in sorted(EXAMPLES.glob("*.yaml")):
        assert validate_file(path) == [], path
    gpt3 = load_sweep(EXAMPLES / "gpt3-175b-layouts.yaml")
    assert gpt3.keys == ["parallelism.tensor", "parallelism.pipeline", "training.micro_batch",
                         "parallelism.virtual_stages", "parallelism.schedule"]
    assert len(expand(gpt3)) >= 100
    toy = load_sweep(EXAMPLES / "toy-layouts.yaml")
    assert product_size(toy) == 36 and len(expand(toy)) == 27  # the filter drops t × p > 8


def test_small_sweep_loads(tmp_path):
    sweep = small_sweep(tmp_path)
    assert sweep.name == "small" and sweep.base_file == TOY
    assert sweep.keys == ["parallelism.tensor", "training.micro_batch"]
    spec = sweep.workload({"parallelism.tensor": 4, "training.micro_batch": 2})
    assert (spec.parallelism.tensor, spec.parallelism.pipeline, spec.parallelism.data) == (4, 2, 1)


def test_unknown_keys_named_with_their_lines(tmp_path):
    found = problems_of(tmp_path, """\
        base: {base}
        grid:
          parallelism.tensr: [1, 2]
        colour: red
        """)
    assert found[0][:2] == (4, "colour") and found[0][2].startswith("unknown key; known keys: base, filters, grid")
    assert found[1][:2] == (3, "grid.parallelism.tensr") and "known keys of parallelism: context, data" in found[1][2]


def test_structure_problems(tmp_path):
    found = problems_of(tmp_path, """\
        base: {base}
        grid:
          parallelism.tensor: [1, 2]
          training.micro_batch: []
        zip:
          - parallelism.pipeline: [1, 2]
            parallelism.tensor: [1, 2, 4]
        """)
    reasons = {(line, key): reason for line, key, reason in found}
    assert reasons[(4, "grid.training.micro_batch")].startswith("list should have at least 1 item")
    assert "already given in grid" in reasons[(7, "zip.0.parallelism.tensor")]
    assert "equal lengths" in reasons[(6, "zip.0")]


def test_filter_problems(tmp_path):
    found = problems_of(tmp_path, """\
        base: {base}
        grid:
          parallelism.tensor: [1, 2]
        filters:
          - parallelism.tensor <
          - __import__("os").system("true")
          - nothing.here > 1
          - (1).real > 0
        """)
    reasons = {(line, key): reason for line, key, reason in found}
    assert reasons[(5, "filters.0")].startswith("not an expression")
    assert "only the functions min, max, abs" in reasons[(6, "filters.1")]
    assert "nothing.here is neither swept" in reasons[(7, "filters.2")]
    assert "only dotted workload keys" in reasons[(8, "filters.3")]


def test_base_must_be_an_existing_workload(tmp_path):
    assert problems_of(tmp_path, "base: nowhere.yaml\n")[0][:2] == (1, "base")
    (tmp_path / "c.yaml").write_text("name: c\ndevice: h100\ngpus_per_node: 8\n")
    (line, key, reason), = problems_of(tmp_path, "base: c.yaml\ngrid: {parallelism.tensor: [1]}\n")
    assert (line, key) == (1, "base") and "not a workload" in reason


def test_validate_recognises_sweep_files(tmp_path):
    good = write_sweep(tmp_path, "base: {base}\ngrid: {parallelism.tensor: [1, 2]}\n", name="good.yaml")
    assert validate_file(good) == []
    bad = write_sweep(tmp_path, "base: {base}\ngrid: {parallelism.tensor: 2}\n", name="bad.yaml")
    (problem,) = validate_file(bad)
    assert (problem.line, problem.key, problem.reason) == (2, "grid.parallelism.tensor", "expected a list, got 2")


@pytest.mark.parametrize("value", [4, 1e-05, "none", "yes", True, None, [4, 4], "25 MB", {"a": 1}])
def test_values_survive_the_trip_through_set(value):
    from simcluster.spec.overrides import parse_override

    assert parse_override(f"k={yaml_value(value)}").value == value


def test_split_list():
    assert split_list("1,2, 4") == ["1", "2", "4"]
    assert split_list("4") is None
    assert split_list("[4,4]") is None
    assert split_list("[4,4],[2,6]") == ["[4,4]", "[2,6]"]
    assert split_list("'a,b'") is None


def test_quick_sweep_from_set(tmp_path):
    sweep = quick_sweep(TOY, ["parallelism.tensor=1,2", "training.recompute=full", "training.micro_batch=1,2"])
    assert sweep.name == "toy-8gpu-sweep"
    assert sweep.spec.grid == {"parallelism.tensor": [1, 2], "training.micro_batch": [1, 2]}
    assert sweep.spec.set == {"training.recompute": "full"}
    assert len(expand(sweep)) == 4
    assert quick_sweep(TOY, ["parallelism.tensor=2"]) is None
    with pytest.raises(SpecError) as err:
        quick_sweep(TOY, ["parallelism.tensr=1,2"])
    (problem,) = err.value.problems
    assert (problem.file, problem.key) == ("--set", "parallelism.tensr")


def test_best_yaml_runs_as_the_point(tmp_path):
    sweep = small_sweep(tmp_path)
    point = {"parallelism.tensor": 2, "training.micro_batch": 4}
    path = tmp_path / "best.yaml"
    path.write_text(sweep.workload_yaml(point, "the best\nof all"))
    assert path.read_text().startswith("# the best\n# of all\n")
    assert load_workload(path).resolved_dict() | {"source": ""} == sweep.workload(point).resolved_dict() | {"source": ""}
