"""Partial full recompute (``training.recompute_num_layers``): Megatron-Core's block method recomputes the first N
layers of each model chunk and keeps the rest's activations."""

from __future__ import annotations

from pathlib import Path

import pytest

from simcluster.costs.flops import hardware_flops_per_iteration, layer_forward_flops
from simcluster.costs.memory import activation_bytes_per_layer, stage_memory
from simcluster.costs.partial_recompute import partial, recomputed_in_chunk, recomputed_layers
from simcluster.errors import SpecError
from simcluster.plan import build_plan
from simcluster.run import simulate_workload
from simcluster.search.estimate import Estimator
from simcluster.search.layout import Layout
from simcluster.search.memory import MemoryModel, layout_spec
from simcluster.spec import load_workload
from simcluster.spec.megatron import megatron_workload
from simcluster.topology.build import build_topology

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "workloads" / "toy-8gpu.yaml"
#: 8 layers on 2 stages: chunks of 4 (1F1B) or of 2 (interleaved, 2 chunks a stage)
BASE = ["model.layers=8", "training.recompute=full"]


def _spec(*extra: str):
    return load_workload(TOY, overrides=[*BASE, *extra])


def test_each_chunk_recomputes_its_first_n_layers():
    tr = _spec("training.recompute_num_layers=3").training
    assert [recomputed_in_chunk(n, tr) for n in (0, 2, 3, 5)] == [0, 2, 3, 3]
    assert recomputed_layers([[0, 1, 2, 3, 4], [5, 6], [7, 8, 9, 10]], tr) == {0, 1, 2, 5, 6, 7, 8, 9}
    assert partial(tr)
    every = _spec().training
    assert not partial(every) and recomputed_in_chunk(5, every) == 5
    assert recomputed_in_chunk(5, load_workload(TOY).training) == 0  # recompute none


def test_it_needs_full_recompute():
    with pytest.raises(SpecError, match="recompute_num_layers.*needs recompute: full"):
        load_workload(TOY, overrides=["training.recompute=selective", "training.recompute_num_layers=2"])


@pytest.mark.parametrize("schedule", ["1f1b", "interleaved"])
def test_the_plan_recomputes_the_first_layers_of_every_chunk(schedule):
    extra = ["parallelism.schedule=interleaved", "parallelism.virtual_stages=2"] if schedule == "interleaved" else []
    plan = build_plan(_spec("training.recompute_num_layers=1", *extra))
    want = {chunk[0] for chunk in plan.chunks}
    assert plan.recomputed == want
    for layer in range(8):
        names = {st.name for st in plan.layer_unit_steps("B", layer)}
        assert any(n.startswith("rc.") for n in names) is (layer in want), layer
    assert [plan.recomputed_on(s) for s in range(plan.p)] == [len(want) // plan.p] * plan.p
    assert build_plan(_spec()).recomputed is None


def test_time_flops_and_memory_lie_between_none_and_full():
    """With N of a stage's 4 layers recomputed: the recompute time is N/4 of full's, the hardware FLOPs add N·p
    layer forwards, and the activations of the kept layers are whole (closed forms)."""
    runs = {n: simulate_workload(_spec(f"training.recompute_num_layers={n}") if n else _spec()) for n in (1, 2, 0)}
    none = simulate_workload(load_workload(TOY, overrides=["model.layers=8"]))
    full = runs[0].details["breakdown"][0]["recompute"]
    for n in (1, 2):
        assert runs[n].details["breakdown"][0]["recompute"] == pytest.approx(full * n / 4, rel=0.02)
    times = [none.summary["iteration_time_s"], runs[1].summary["iteration_time_s"],
             runs[2].summary["iteration_time_s"], runs[0].summary["iteration_time_s"]]
    assert times == sorted(times) and times[0] < times[-1]
    peaks = [r.summary["peak_memory_bytes"] for r in (none, runs[1], runs[2], runs[0])]
    assert peaks == sorted(peaks, reverse=True) and peaks[0] > peaks[-1]
    spec = _spec("training.recompute_num_layers=2")
    m, tr, par = spec.model, spec.training, spec.parallelism
    b = tr.global_batch
    assert hardware_flops_per_iteration(m, tr, recomputed_layers=4) == pytest.approx(
        hardware_flops_per_iteration(m, tr) - 4 * layer_forward_flops(m, b))
    kw = dict(layers_on_stage=4, has_embedding=False, has_logits=False, microbatches_in_flight=2)
    saved = activation_bytes_per_layer(m, tr, par)
    whole = activation_bytes_per_layer(m, tr, par, recompute="none")
    part, every = stage_memory(m, tr, par, recomputed_on_stage=1, **kw), stage_memory(m, tr, par, **kw)
    assert part.activations - every.activations == pytest.approx(3 * 2 * (whole - saved))


def test_the_screen_and_the_search_carry_it(tmp_path):
    """The analytical screen tracks the simulator with partial recompute, the memory model ranks it between none
    and full, and a layout the search tries without full recompute drops the key (its workload validates)."""
    spec = _spec("training.recompute_num_layers=1")
    est = Estimator(spec, build_topology(spec.cluster))
    sim = simulate_workload(spec).summary["iteration_time_s"]
    estimate = est.estimate(Layout(2, 2, 2, 1, 2, 1, "1f1b", False, "full", 0)).iteration_time_s
    assert estimate == pytest.approx(sim, rel=0.05)
    every_layer = Estimator(_spec(), build_topology(spec.cluster))
    assert est.estimate(Layout(2, 2, 2, 1, 2, 1, "1f1b", False, "none", 0)).iteration_time_s < estimate \
        < every_layer.estimate(Layout(2, 2, 2, 1, 2, 1, "1f1b", False, "full", 0)).iteration_time_s
    mem = MemoryModel(spec)
    peaks = {rc: mem.peak(2, 1, 2, 2, 1, 4, "1f1b", 2, False, rc, 0) for rc in ("none", "full")}
    every = MemoryModel(_spec()).peak(2, 1, 2, 2, 1, 4, "1f1b", 2, False, "full", 0)
    assert every < peaks["full"] < peaks["none"]
    for rc, want in (("none", None), ("selective", None), ("full", 1)):
        cand = layout_spec(spec, t=2, c=1, d=2, mb=2, sp=False, e=1, et=None, schedule="1f1b", p=2, v=1, rc=rc,
                           zero=0)
        assert cand.training.recompute_num_layers == want, rc


def test_import_megatron_maps_the_block_method(tmp_path):
    args = ("--num-layers 8 --hidden-size 1024 --num-attention-heads 16 --seq-length 1024 --global-batch-size 16 "
            "--micro-batch-size 2 --bf16 --recompute-granularity full --recompute-method {} --recompute-num-layers 3")
    block, _ = megatron_workload(args.format("block"), file="cmd.sh")
    uniform, _ = megatron_workload(args.format("uniform"), file="cmd.sh")
    assert block["training"]["recompute"] == "full" and block["training"]["recompute_num_layers"] == 3
    assert uniform["training"]["recompute"] == "full" and "recompute_num_layers" not in uniform["training"]
    bf16, _ = megatron_workload(args.format("block") + " --grad-reduce-in-bf16", file="cmd.sh")
    assert bf16["training"]["grad_reduce_in_bf16"] is True and "grad_reduce_in_bf16" not in block["training"]
