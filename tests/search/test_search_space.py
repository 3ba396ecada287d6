"""The search space: every layout the search considers is one load_workload accepts, and none is missed."""

from __future__ import annotations

import itertools

import pytest

from simcluster.errors import SpecError
from simcluster.search.layout import Layout, layout_from_values, layout_of
from simcluster.search.space import _Candidate, default_values, enumerate_layouts, make_space
from simcluster.spec import load_workload

LIMITS = {"parallelism.tensor": [1, 2, 4], "parallelism.pipeline": [1, 2, 3], "training.micro_batch": [1, 2, 3],
          "parallelism.virtual_stages": [1, 2], "training.recompute": ["none"], "parallelism.zero_stage": [0]}


def _redundant(lay: Layout) -> bool:
    """Layouts the space leaves out because they simulate exactly like another one (or, one stage under another
    schedule's name, as no stack runs them: a single stage takes 1F1B's name only)."""
    return ((lay.sequence_parallel and lay.tensor == 1) or (lay.virtual_stages > 1 and lay.pipeline == 1)
            or (lay.pipeline == 1 and lay.schedule != "1f1b"))


def test_enumeration_equals_what_load_workload_accepts(toy):
    spec = load_workload(toy)
    space = make_space(spec, 8, 1, LIMITS)
    got = set(enumerate_layouts(spec, space))
    values = default_values(spec, 8)
    values.update({k.split(".")[1]: v for k, v in LIMITS.items()})
    expected = set()
    for combo in itertools.product(*(values[f] for f in Layout._fields)):
        lay = Layout(*combo)
        if lay.gpus > 8 or _redundant(lay):
            continue
        try:
            load_workload(toy, lay.overrides())
        except SpecError:
            continue
        expected.add(lay)
    assert got == expected
    assert len(got) > 100


def test_checks_do_not_read_recompute_or_zero(toy):
    """The space checks (tensor .. sequence parallel) once and adds every recompute and ZeRO stage."""
    spec = load_workload(toy)
    cand = _Candidate(spec)
    for t, p, d, mb, v, sched in itertools.product([1, 2, 3], [1, 2, 5], [1, 2, 3], [1, 2], [1, 2],
                                                   ["1f1b", "interleaved"]):
        verdicts = {cand.ok(Layout(t, p, d, 1, mb, v, sched, False, rc, z))
                    for rc in ("none", "selective", "full") for z in range(4)}
        assert len(verdicts) == 1


def test_gpu_bounds_and_defaults(toy):
    spec = load_workload(toy)
    space = make_space(spec, 8, 5, {})
    assert space.values["tensor"] == [1, 2, 4, 8]  # divisors of 8 heads, within one node
    assert space.values["context"] == [1]  # 512 tokens: no context parallelism by default
    layouts = list(enumerate_layouts(spec, space))
    assert layouts and all(5 <= lay.gpus <= 8 for lay in layouts)
    assert all(not lay.zero_stage or lay.data * lay.context > 1 for lay in layouts)
    assert len(set(layouts)) == len(layouts)


def test_limits_replace_candidates(toy):
    spec = load_workload(toy)
    space = make_space(spec, 8, 1, {"parallelism.tensor": [2], "parallelism.schedule": ["1f1b"],
                                    "training.recompute": ["full"]})
    layouts = list(enumerate_layouts(spec, space))
    assert layouts
    assert {(lay.tensor, lay.schedule, lay.recompute) for lay in layouts} == {(2, "1f1b", "full")}


def test_layout_round_trip(toy):
    spec = load_workload(toy)
    lay = layout_of(spec)
    assert lay == Layout(2, 2, 2, 1, 2, 1, "1f1b", False, "none", 0)
    assert layout_from_values(lay.values()) == lay
    assert lay.label() == "t2 p2 d2 mb2 1f1b rc=none" and lay.gpus == 8


@pytest.mark.parametrize("search, error", [
    ({"space": {"parallelism.tensr": [1]}}, "search.space: unknown key 'parallelism.tensr'"),
    ({"space": {"parallelism.tensor": ["two"]}}, "search.space: parallelism.tensor: input should be a valid integer"),
    ({"space": {"parallelism.schedule": ["fast"]}}, "unknown schedule 'fast'"),
    ({"objective": "speed"}, "search.objective: expected 'throughput' or 'cost'"),
    ({"gpus": 0}, "search.gpus:"),
])
def test_search_section_is_validated(toy, search, error):
    import yaml

    data = yaml.safe_load(toy.read_text())
    data["search"] = search
    toy.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError) as exc:
        load_workload(toy)
    assert error in str(exc.value)


def test_search_section_is_not_part_of_the_simulated_workload(toy):
    plain = load_workload(toy)
    toy.write_text(toy.read_text() + "search:\n  gpus: 8\n  space: {parallelism.tensor: [2, 4]}\n")
    spec = load_workload(toy)
    assert spec.search.space == {"parallelism.tensor": [2, 4]} and spec.search.gpus == 8
    assert spec.resolved_dict() == plain.resolved_dict() | {"name": spec.name}


def test_a_layout_as_overrides_loads_back_to_itself(toy):
    """Layout.overrides() (what the benchmarks and the tests simulate a candidate with) reads back to the layout,
    booleans and the unset expert-tensor degree (null) included."""
    from simcluster.search.layout import layout_of
    spec = load_workload(toy)
    layouts = list(enumerate_layouts(spec, make_space(spec, 8, 1, {})))
    assert any(lay.expert_tensor is None for lay in layouts) and any(lay.sequence_parallel for lay in layouts)
    for lay in layouts[::max(1, len(layouts) // 40)]:
        assert layout_of(load_workload(toy, lay.overrides())) == lay


def test_layout_overrides_set_the_keys_a_layout_decides(toy):
    """A workload that sets userbuffers, the overlapped weight gather and a selective policy: Layout.overrides()
    alone fails to load at ZeRO 0 (``overlap_param_gather`` without a ZeRO-1/2 step), layout_overrides() loads
    every layout, to itself, with those keys as the search's own sweep sets them."""
    from simcluster.search.memory import layout_overrides
    toy.write_text(toy.read_text().replace("  data: 2\n", "  data: 2\n  zero_stage: 1\n  overlap_param_gather: true\n"
                                           "  tp_comm_overlap: true\n  sequence_parallel: true\n"))
    spec = load_workload(toy)
    layouts = list(enumerate_layouts(spec, make_space(spec, 8, 1, {})))
    assert any(lay.zero_stage == 0 for lay in layouts)
    with pytest.raises(SpecError):
        load_workload(toy, next(lay for lay in layouts if lay.zero_stage == 0).overrides())
    for lay in layouts[::max(1, len(layouts) // 60)]:
        loaded = load_workload(toy, layout_overrides(spec, lay))
        assert layout_of(loaded) == lay
        assert loaded.parallelism.overlap_param_gather == (lay.zero_stage in (1, 2))
        assert loaded.parallelism.tp_comm_overlap == (lay.tensor > 1 and lay.sequence_parallel)


def test_one_stage_is_tried_under_one_schedule(toy):
    """Without a pipeline the schedules are one layout: the space keeps 1F1B's name (else the first allowed), not
    the same layout three times over (which spent the search's simulations on duplicates)."""
    spec = load_workload(toy)
    space = make_space(spec, 8, 1, {"parallelism.pipeline": [1]})
    layouts = list(enumerate_layouts(spec, space))
    assert layouts and {lay.schedule for lay in layouts} == {"1f1b"}
    only_gpipe = make_space(spec, 8, 1, {"parallelism.pipeline": [1], "parallelism.schedule": ["gpipe", "zero-bubble"]})
    assert {lay.schedule for lay in enumerate_layouts(spec, only_gpipe)} == {"gpipe"}
