"""Memory in the analytical tier equals the simulator's, so pruning never drops a layout that fits."""

from __future__ import annotations

import itertools
import random

import pytest

from simcluster.plan.schedules import SCHEDULES, peak_in_flight
from simcluster.run import simulate_workload
from simcluster.search.estimate import Estimator
from simcluster.search.layout import Layout
from simcluster.plan.schedules import microbatches_in_flight as in_flight
from simcluster.search.memory import peak_stages, stage_layers
from simcluster.search.screen import screen
from simcluster.search.space import enumerate_layouts, make_space
from simcluster.spec import load_workload
from simcluster.topology.build import build_topology


def _spec(path, lay: Layout):
    return load_workload(path, lay.overrides())


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b", "interleaved", "zero-bubble"])
def test_in_flight_matches_the_schedules(schedule):
    rng = random.Random(1)
    for p, m, v in itertools.product(range(1, 7), range(1, 13), (1, 2, 3)):
        if (v > 1) != (schedule == "interleaved") or (schedule == "interleaved" and m % p):
            continue
        for s in range(p):
            if schedule == "zero-bubble":
                order = SCHEDULES.get(schedule)(p, m, v, s, times=(1.0, rng.uniform(0.5, 2), rng.uniform(0.2, 1)))
            else:
                order = SCHEDULES.get(schedule)(p, m, v, s)
            held = -(-peak_in_flight(order) // v)  # as the simulator's summary counts them
            assert in_flight(schedule, p, m, v, s) == held, (p, m, v, s)


def test_in_flight_never_grows_with_the_stage():
    """peak_stages relies on it: the first stage of each layer count holds the most."""
    for schedule in ("gpipe", "1f1b", "interleaved", "zero-bubble"):
        for p, m, v in itertools.product(range(1, 9), (1, 4, 8, 16), (1, 2, 4)):
            counts = [in_flight(schedule, p, m, v, s) for s in range(p)]
            assert counts == sorted(counts, reverse=True)


def test_peak_stages_cover_every_layer_count():
    for layers, p, v in [(70, 12, 1), (96, 7, 2), (126, 16, 1), (5, 4, 1), (8, 1, 1)]:
        counts = stage_layers(layers, p, v)
        chosen = peak_stages(layers, p, v)
        assert sum(counts) == layers
        assert {c for s, c, *_ in chosen if 0 < s < p - 1} == set(counts[1:-1])


def test_peak_memory_equals_the_simulators(toy):
    spec = load_workload(toy)
    est = Estimator(spec, build_topology(spec.cluster))
    layouts = list(enumerate_layouts(spec, make_space(spec, 8, 1, {})))
    for lay in random.Random(7).sample(layouts, 12):
        sim = simulate_workload(_spec(toy, lay)).summary
        assert est.estimate(lay).peak_memory_bytes == pytest.approx(sim["peak_memory_bytes"], rel=1e-12), lay.label()


def test_pruning_never_drops_a_layout_the_simulator_says_fits(tight):
    """Simulate the pruned layouts that missed the memory by the least and a random sample of the rest."""
    spec = load_workload(tight)
    est = Estimator(spec, build_topology(spec.cluster))
    space = make_space(spec, 8, 1, {})
    result = screen(spec, space, est, lambda T, gpus: 1 / T, keep=10)
    assert 0 < result.fitting < result.layouts  # the device is small enough to prune, big enough to fit some
    pruned = [lay for lay in enumerate_layouts(spec, space) if not est.estimate(lay).fits_in_memory]
    sample = [lay for lay, _ in result.near_misses] + random.Random(3).sample(pruned, 8)
    for lay in sample:
        assert not simulate_workload(_spec(tight, lay)).summary["fits_in_memory"], lay.label()
    for cand in result.best[:4]:  # and what it keeps does fit
        assert simulate_workload(_spec(tight, cand.layout)).summary["fits_in_memory"]


def test_a_layout_without_selective_recompute_drops_the_workloads_saves(tmp_path):
    """A workload's ``recompute_saves`` names what its selective recompute keeps: a layout the search tries with
    recompute none or full carries none (its YAML must validate), one with selective keeps them."""
    from helpers_spec import make_spec
    from simcluster.search.memory import layout_spec
    from simcluster.spec import validate_file
    import yaml
    spec = make_spec(tmp_path, "parallelism.tensor=1", "parallelism.pipeline=1", "parallelism.data=8",
                     "training.recompute=selective", "training.recompute_saves=[qkv, proj, fc2]")
    for rc, want in (("none", None), ("full", None), ("selective", ["qkv", "proj", "fc2"])):
        cand = layout_spec(spec, t=1, c=1, d=8, mb=1, sp=False, e=1, et=None, schedule="1f1b", p=1, v=1, rc=rc,
                           zero=0)
        assert cand.training.recompute_saves == want, rc
        f = tmp_path / f"{rc}.yaml"
        doc = cand.model_dump(mode="json", exclude={"source"})
        f.write_text(yaml.safe_dump(doc))
        assert validate_file(str(f)) == [], rc


def test_a_layout_without_sequence_parallel_tensor_groups_drops_tp_comm_overlap(tmp_path):
    """Userbuffers overlap the sequence-parallel tensor collectives: a layout the search tries with tensor 1 or
    without sequence parallelism carries tp_comm_overlap false (its YAML must validate), others keep it."""
    from helpers_spec import make_spec
    from simcluster.search.memory import layout_spec
    from simcluster.spec import validate_file
    import yaml
    spec = make_spec(tmp_path, "parallelism.tensor=4", "parallelism.pipeline=1", "parallelism.data=2",
                     "parallelism.sequence_parallel=true", "parallelism.tp_comm_overlap=true")
    for t, sp, want in ((1, False, False), (4, False, False), (4, True, True), (2, True, True)):
        cand = layout_spec(spec, t=t, c=1, d=8 // t, mb=1, sp=sp, e=1, et=None, schedule="1f1b", p=1, v=1,
                           rc="none", zero=0)
        assert cand.parallelism.tp_comm_overlap is want, (t, sp)
        f = tmp_path / f"{t}{sp}.yaml"
        f.write_text(yaml.safe_dump(cand.model_dump(mode="json", exclude={"source"})))
        assert validate_file(str(f)) == [], (t, sp)


def test_the_search_sweep_sets_what_each_layout_decides(tmp_path):
    """The simulated candidates come from a sweep over the workload file: each point sets tp_comm_overlap (false
    without sequence-parallel tensor groups) and recompute_saves (null without selective recompute) as its layout
    decides, so every point's workload validates (a t=1 candidate of a userbuffers workload once came back invalid)."""
    import yaml
    from simcluster.search.layout import Layout
    from simcluster.search.simulate import layout_sweep
    from simcluster.spec import load_workload
    base = {"name": "w", "model": {"layers": 2, "hidden": 1024, "heads": 16, "seq_len": 1024, "vocab": 32000},
            "training": {"global_batch": 8, "micro_batch": 1, "precision": "bf16", "recompute": "selective",
                         "recompute_saves": ["qkv", "proj"]},
            "parallelism": {"tensor": 4, "pipeline": 1, "data": 2, "sequence_parallel": True, "tp_comm_overlap": True},
            "cluster": {"preset": "dgx-h100", "nodes": 1}}
    f = tmp_path / "w.yaml"
    f.write_text(yaml.safe_dump(base))
    spec = load_workload(str(f))
    lays = [Layout(4, 1, 2, 1, 1, 1, "1f1b", True, "selective", 0, 1, None),
            Layout(1, 1, 8, 1, 1, 1, "1f1b", False, "none", 0, 1, None),
            Layout(4, 1, 2, 1, 1, 1, "1f1b", False, "full", 0, 1, None)]
    sweep = layout_sweep(f, "w-search", {}, lays, spec)
    group = sweep.spec.zip[0]
    assert group["parallelism.tp_comm_overlap"] == [True, False, False]
    assert group["training.recompute_saves"] == [["qkv", "proj"], None, None]
    for i in range(len(lays)):
        point = sweep.workload({key: values[i] for key, values in group.items()})
        assert point.parallelism.tensor == lays[i].tensor


def test_a_layout_without_a_pipeline_drops_the_deferred_output_wgrad(tmp_path):
    """Megatron-Core defers the output layer's weight gradient only with a pipeline: a candidate with pipeline 1
    carries defer_embedding_wgrad_compute false (its YAML validates); with a pipeline the screen's last stage
    sheds the deferred share of that GEMM, so the estimate is no slower than without the deferral."""
    from helpers_spec import make_spec
    from simcluster.search.estimate import Estimator
    from simcluster.search.layout import Layout
    from simcluster.search.memory import layout_spec
    from simcluster.spec import validate_file
    from simcluster.topology import build_topology
    import yaml
    args = ("parallelism.tensor=2", "parallelism.pipeline=4", "parallelism.data=1", "model.vocab=128000",
            "model.tied_embeddings=false")
    spec = make_spec(tmp_path, *args, "parallelism.defer_embedding_wgrad_compute=true")
    for p, want in ((1, False), (2, True), (4, True)):
        cand = layout_spec(spec, t=2, c=1, d=4 // p, mb=1, sp=False, e=1, et=None, schedule="1f1b", p=p, v=1,
                           rc="none", zero=0)
        assert cand.parallelism.defer_embedding_wgrad_compute is want, p
        f = tmp_path / f"p{p}.yaml"
        f.write_text(yaml.safe_dump(cand.model_dump(mode="json", exclude={"source"})))
        assert validate_file(str(f)) == [], p
    lay = Layout(2, 4, 1, 1, 1, 1, "1f1b", False, "none", 0, 1, None)
    off = make_spec(tmp_path, *args)
    t_on = Estimator(spec, build_topology(spec.cluster)).estimate(lay).iteration_time_s
    t_off = Estimator(off, build_topology(off.cluster)).estimate(lay).iteration_time_s
    assert t_on < t_off
