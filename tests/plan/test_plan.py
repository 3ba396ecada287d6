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
