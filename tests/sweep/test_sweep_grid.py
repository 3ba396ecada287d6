"""Grid expansion (product order, zip groups, filters) and the filter language."""

from __future__ import annotations

import pytest

from sweep_helpers import small_sweep
from simcluster.errors import SpecError
from simcluster.spec.filters import FilterError, compile_filter
from simcluster.sweep.grid import axes, expand, product_size

GRID_ZIP = """\
name: gz
base: {base}
grid:
  parallelism.tensor: [1, 2]
  training.micro_batch: [1, 2, 4]
zip:
  - parallelism.pipeline: [1, 2]
    parallelism.virtual_stages: [1, 2]
    parallelism.schedule: [1f1b, interleaved]
"""


def test_product_in_file_order_last_key_fastest(tmp_path):
    sweep = small_sweep(tmp_path)
    points = expand(sweep)
    assert len(points) == product_size(sweep) == 12
    assert [tuple(p.values()) for p in points[:4]] == [(1, 1), (1, 2), (1, 4), (2, 1)]
    assert all(list(p) == ["parallelism.tensor", "training.micro_batch"] for p in points)


def test_zip_groups_vary_together(tmp_path):
    sweep = small_sweep(tmp_path, GRID_ZIP)
    assert [a.keys for a in axes(sweep)] == [("parallelism.tensor",), ("training.micro_batch",),
                                             ("parallelism.pipeline", "parallelism.virtual_stages", "parallelism.schedule")]
    points = expand(sweep)
    assert len(points) == 2 * 3 * 2
    assert {(p["parallelism.pipeline"], p["parallelism.virtual_stages"], p["parallelism.schedule"]) for p in points} == {
        (1, 1, "1f1b"), (2, 2, "interleaved")}
    assert points[0] == {"parallelism.tensor": 1, "training.micro_batch": 1, "parallelism.pipeline": 1,
                         "parallelism.virtual_stages": 1, "parallelism.schedule": "1f1b"}
    assert points[1]["parallelism.pipeline"] == 2  # the zip group is the last axis: it varies fastest


def test_filters_drop_points_and_read_base_values_and_defaults(tmp_path):
    text = GRID_ZIP + """\
filters:
  - parallelism.tensor * parallelism.pipeline <= 2      # swept keys
  - training.micro_batch * model.layers != 16           # model.layers = 4 comes from the base file
  - parallelism.context == 1 and parallelism.zero_stage in [0, 1]   # schema defaults
"""
    points = expand(small_sweep(tmp_path, text))
    assert points and all(p["parallelism.tensor"] * p["parallelism.pipeline"] <= 2 for p in points)
    assert all(p["training.micro_batch"] != 4 for p in points)
    # kept layouts (t, p): (1, 1), (1, 2), (2, 1), each with micro batch 1 and 2
    assert len(points) == 6


def test_a_filter_that_cannot_be_evaluated_is_bad_input(tmp_path):
    text = GRID_ZIP + "filters:\n  - parallelism.schedule > 3\n"
    with pytest.raises(SpecError) as err:
        expand(small_sweep(tmp_path, text))
    (problem,) = err.value.problems
    assert (problem.line, problem.key) == (11, "filters.0") and "cannot evaluate" in problem.reason


@pytest.mark.parametrize("text, value", [
    ("a.b + 2 * c > 7", True), ("a.b % 2 == 1 or false", True), ("not a.b in (1, 2)", True),
    ("min(a.b, c) // 2 == 1", True), ("abs(-c) if a.b > 1 else 0", 3), ("1 < a.b <= c", True), ("1 < a.b < c", False),
    ("s == 'full' and s != null", True), ("a.b / 2 == 1.5", True),
])
def test_filter_language(text, value):
    env = {"a.b": 3, "c": 3, "s": "full"}
    flt = compile_filter(text)
    assert flt(env.__getitem__) is bool(value)
    assert set(flt.names) <= set(env)


@pytest.mark.parametrize("text", ["lambda: 1", "[x for x in y]", "a.b ** 2", "open('x')", "a[0]", "f'{a}'",
                                  "a.__class__.__bases__", "(a := 1)", "", "max(a, key=b)"])
def test_filter_language_rejects(text):
    if text == "a.__class__.__bases__":  # attribute chains are just dotted keys: nothing is looked up in Python
        flt = compile_filter(text)
        with pytest.raises(FilterError):
            flt({}.__getitem__)
        return
    with pytest.raises(ValueError):
        compile_filter(text)
