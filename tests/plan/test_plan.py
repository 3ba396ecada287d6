"""The plan: one source for the unit's collectives, parameter counts and microbatches in flight."""

from __future__ import annotations

from collections import Counter

import pytest

from simcluster.costs import params as P
from simcluster.lowering.lower import LoweringOptions
from simcluster.plan import build_plan
from simcluster.plan.schedules import SCHEDULES, microbatches_in_flight, peak_in_flight
from simcluster.run import lower_workload
from simcluster.spec import load_workload

TOY = "workloads/toy-8gpu.yaml"


def _spec(*sets: str):
    return load_workload(TOY, list(sets))


def _ops(steps, what: str) -> list[str]:
    return [s.op for _, s in steps if s.what == what]


def test_tensor_parallel_layer_has_megatrons_collectives():
    """Shoeybi et al. 2019 §3: two all-reduces per layer forward and two backward;
    Korthikanti et al. 2022 §4.2.2: with sequence parallelism each becomes an all-gather
    before the block and a reduce-scatter after it."""
    plan = build_plan(_spec("parallelism.tensor=2", "parallelism.pipeline=1", "parallelism.data=4"),
                      embedding_and_head=False)
    layers = len(plan.chunks[0])
    assert Counter(_ops(plan.unit_steps("F", 0), "tp")) == {"all_reduce": 2 * layers}
    assert Counter(_ops(plan.unit_steps("B", 0), "tp")) == {"all_reduce": 2 * layers}
    sp = build_plan(_spec("parallelism.tensor=2", "parallelism.pipeline=1", "parallelism.data=4",
                          "parallelism.sequence_parallel=true"), embedding_and_head=False)
    assert Counter(_ops(sp.unit_steps("F", 0), "tp")) == {"all_gather": 2 * layers, "reduce_scatter": 2 * layers}
    full = build_plan(_spec("parallelism.tensor=2", "parallelism.pipeline=1", "parallelism.data=4",
                            "training.recompute=full"), embedding_and_head=False)
    assert Counter(_ops(full.unit_steps("B", 0), "tp")) == {"all_reduce": 4 * layers}  # recompute's own


def test_lowering_runs_exactly_the_plans_steps():
    """Every tensor-parallel step of the plan is one task of the unfused lowering, and no more."""
    spec = _spec("parallelism.sequence_parallel=true", "training.recompute=selective")
    plan, _, tg = lower_workload(spec, LoweringOptions(fuse=False))
    expected = Counter()
    for s in range(plan.p):
        for kind, _, ck in plan.orders[s]:
            expected.update(_ops(plan.unit_steps(kind, ck * plan.p + s), "tp"))
    got = Counter(t.op for t in tg.tasks if t.stream == "tp")
    assert got == expected
    rc = [t for t in tg.tasks if t.phase == "recompute"]
    assert len(rc) == sum(1 for s in range(plan.p) for kind, _, _ in plan.orders[s] if kind == "B") \
        * len(plan.chunks[0])


def test_parameter_counts_have_one_source():
    """At t = p = 1 the plan's stages hold the model's 12h² + 13h per layer (costs.params),
    and memory and gradient synchronisation read the same count."""
    spec = _spec("parallelism.tensor=1", "parallelism.pipeline=1", "parallelism.data=8")
    plan = build_plan(spec)
    m = spec.model
    h = m.hidden
    assert plan.params.layer == 12 * h * h + 13 * h  # GPT layer with biases (Narayanan et al. 2021 §5.1)
    assert plan.stage_params(0) == pytest.approx(P.total_params(m), rel=1e-12)
    # bf16 weights: 2 bytes a parameter, nothing sharded at ZeRO 0
    assert plan.memory(0).weights == pytest.approx(2 * plan.stage_params(0), rel=1e-12)


def test_tied_embedding_copy_is_counted_on_the_last_stage():
    """Megatron keeps a copy of the tied word embedding on the last stage (Shoeybi et al. 2019 §3)."""
    plan = build_plan(_spec("parallelism.tensor=2", "parallelism.pipeline=2", "parallelism.data=2"))
    m = plan.spec.model
    assert plan.params.head == 2 * m.hidden + m.vocab * m.hidden / 2
    assert plan.params.word_embedding == m.vocab * m.hidden / 2


@pytest.mark.parametrize("schedule,v", [("gpipe", 1), ("1f1b", 1), ("interleaved", 2), ("zero-bubble", 1)])
def test_in_flight_is_the_schedules_peak(schedule, v):
    for p, m in ((2, 4), (4, 8), (4, 16)):
        for s in range(p):
            order = SCHEDULES.get(schedule)(p, m, v, s)
            assert microbatches_in_flight(schedule, p, m, v, s) == -(-peak_in_flight(order) // v)


def test_parallel_block_has_one_reduction_per_layer_and_pass():
    """PaLM's parallel layers (Chowdhery et al. 2022 §2): y = x + Attn(LN(x)) + MLP(LN(x)), the two
    outputs summed before one tensor-parallel all-reduce (sequence parallel: one all-gather and one
    reduce-scatter); one LayerNorm fewer: 12h² + 11h parameters a layer."""
    spec = _spec("parallelism.tensor=2", "parallelism.pipeline=1", "parallelism.data=4", "model.parallel_block=true")
    plan = build_plan(spec, embedding_and_head=False)
    layers = len(plan.chunks[0])
    assert Counter(_ops(plan.unit_steps("F", 0), "tp")) == {"all_reduce": layers}
    assert Counter(_ops(plan.unit_steps("B", 0), "tp")) == {"all_reduce": layers}
    h = spec.model.hidden
    t1 = build_plan(_spec("parallelism.tensor=1", "parallelism.pipeline=1", "parallelism.data=8",
                          "model.parallel_block=true"))
    assert t1.params.layer == 12 * h * h + 11 * h


def test_parallel_block_is_about_as_much_faster_as_palm_reports():
    """PaLM §2: parallel layers give "roughly 15% faster training speed at large scales"; on the
    PaLM 540B layout the simulator gives 1.05–1.25× (the fused input GEMM and half the exposed
    model-parallel reductions)."""
    from simcluster.run import simulate_workload

    serial = simulate_workload(load_workload("workloads/palm-540b.yaml", ["model.parallel_block=false"]), check=False)
    parallel = simulate_workload(load_workload("workloads/palm-540b.yaml"), check=False)
    speedup = serial.summary["iteration_time_s"] / parallel.summary["iteration_time_s"]
    assert 1.05 < speedup < 1.25


def test_parallel_block_stores_one_layernorm_input_and_one_shared_gemm_input():
    """Korthikanti et al. 2022 Table 2 with tensor parallelism, s·b·h·(10 + 24/t): the 10 holds two
    LayerNorm inputs (4), the QKV and fc1 inputs (4) and two dropout masks (2); a parallel block
    has one LayerNorm whose output feeds both GEMMs: s·b·h·(6 + 24/t)."""
    from simcluster.costs.memory import activation_bytes_per_layer

    spec = _spec("parallelism.tensor=2", "parallelism.data=2", "model.parallel_block=true")
    s, b, h, t = 1024, 2, 1024, 2
    got = activation_bytes_per_layer(spec.model, spec.training, spec.parallelism)
    assert got == pytest.approx(s * b * h * (6 + 24 / t), rel=1e-12)


def test_distributed_checkpoints_split_memory_and_gather_before_recompute():
    """Megatron-LM --distribute-saved-activations: full recompute keeps 2·s·b·h bytes a layer
    (Korthikanti et al. 2022 Table 2) split over the t tensor ranks, and all-gathers it before
    the layer is recomputed."""
    from simcluster.costs.memory import activation_bytes_per_layer

    base = ["parallelism.tensor=2", "parallelism.data=2", "training.recompute=full"]
    kept = _spec(*base)
    split = _spec(*base, "training.distribute_saved_activations=true")
    m = activation_bytes_per_layer(split.model, split.training, split.parallelism)
    assert m == pytest.approx(activation_bytes_per_layer(kept.model, kept.training, kept.parallelism) / 2)
    plan = build_plan(split, embedding_and_head=False)
    layers = len(plan.chunks[0])
    gathers = [s for _, s in plan.unit_steps("B", 0) if s.what == "tp" and s.name == "rc.checkpoint"]
    assert len(gathers) == layers and all(s.op == "all_gather" for s in gathers)
