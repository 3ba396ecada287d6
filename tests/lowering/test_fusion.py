"""Fused units equal unfused ones: row by row, on random layouts of every schedule.

A fused unit is one engine task whose parts restore the per-layer rows (lowering/lower.py); it
may only be used where nothing observable changes. The reference is the same layout lowered
with ``LoweringOptions(fuse=False)``.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from simcluster.errors import SpecError
from simcluster.lowering.lower import LoweringOptions
from simcluster.run import simulate_workload
from simcluster.spec import load_workload

SCHEDULES = ("gpipe", "1f1b", "interleaved", "zero-bubble")
LAYOUTS = 200  # across all four schedules (issue 19: >= 200)
KEY = ["rank", "stream", "task", "start_s", "end_s"]


def _layout(rng: random.Random, schedule: str) -> list[str]:
    p = rng.choice([2, 4])
    t = rng.choice([1, 2, 4])
    d = rng.choice([1, 2])
    v = rng.choice([2, 3]) if schedule == "interleaved" else 1
    mb = rng.choice([1, 2])
    m = rng.choice([1, 2, 3]) * p
    sp = rng.random() < 0.5 and t > 1
    return [f"parallelism.schedule={schedule}", f"parallelism.pipeline={p}", f"parallelism.tensor={t}",
            f"parallelism.data={d}", f"parallelism.virtual_stages={v}", f"training.micro_batch={mb}",
            f"training.global_batch={m * mb * d}", f"model.layers={p * v * rng.choice([1, 2])}",
            "model.hidden=256", "model.heads=8", "model.seq_len=128", "model.vocab=1024",
            f"parallelism.sequence_parallel={'true' if sp else 'false'}",
            f"training.recompute={rng.choice(['none', 'selective', 'full'])}",
            f"cluster.nodes={rng.choice([1, 2, 4])}"]


def _rows(spec, fuse: bool):
    tl = simulate_workload(spec, LoweringOptions(fuse=fuse)).result.timeline
    return tl[tl["rank"] >= 0][KEY].sort_values(KEY).reset_index(drop=True)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_fused_rows_equal_unfused_rows(schedule):
    rng = random.Random(f"fusion-{schedule}")
    done = 0
    while done < LAYOUTS // len(SCHEDULES):
        try:
            spec = load_workload("workloads/toy-8gpu.yaml", _layout(rng, schedule))
        except SpecError:
            continue
        a, b = _rows(spec, True), _rows(spec, False)
        assert len(a) == len(b), spec.parallelism
        assert (a["task"] == b["task"]).all() and (a["stream"] == b["stream"]).all(), spec.parallelism
        assert np.allclose(a[["start_s", "end_s"]], b[["start_s", "end_s"]], rtol=1e-9, atol=1e-15), spec.parallelism
        done += 1


def test_the_timeline_check_sees_rows_that_overlap():
    import pandas as pd

    from simcluster.metrics.invariants import InvariantError, check_timeline

    rows = pd.DataFrame({"rank": [0, 0, 0], "stream": ["tp", "tp", "compute"], "task": ["a", "b", "c"],
                         "start_s": [0.0, 0.5, 0.2], "end_s": [1.0, 1.5, 0.3]})
    with pytest.raises(InvariantError, match="'a' and 'b' overlap on gpu0/tp"):
        check_timeline(rows)
    check_timeline(rows.assign(start_s=[0.0, 1.0, 0.2]))  # touching is fine


def test_a_wait_is_charged_alike_in_fused_and_unfused_units():
    """A unit waiting at once for the previous unit's trailing tensor-parallel part and for a pipeline receive (their
    ends a few ulps apart, by different sums) has its wait charged to the receive either way: the engine records a
    communication blocker for a tie (``released_by``), so the breakdown's bubble and exposed PP/TP seconds agree
    (crosscheck ``--check fusion`` seed 3302 found them 9 µs apart: the explicit chain charged the pipeline, the fused
    unit the tensor-parallel part)."""
    sets = ["parallelism.schedule=interleaved", "parallelism.pipeline=2", "parallelism.tensor=8", "parallelism.data=4",
            "parallelism.virtual_stages=2", "training.micro_batch=1", "training.global_batch=16", "model.layers=4",
            "model.hidden=512", "model.heads=8", "model.kv_heads=2", "model.seq_len=256", "model.vocab=4096",
            "model.mlp=swiglu", "model.tied_embeddings=true", "training.framework=pytorch", "training.precision=fp8",
            "training.fp8_recipe=blockwise", "training.flash_attention=true", "training.recompute=full",
            "parallelism.sequence_parallel=true", "cluster.preset=dgx-h100", "cluster.nodes=9", "model.rotary_pct=0.25"]
    spec = load_workload("workloads/toy-8gpu.yaml", sets)
    a = simulate_workload(spec, LoweringOptions(fuse=True))
    b = simulate_workload(spec, LoweringOptions(fuse=False))
    for x, y in zip(a.details["breakdown"], b.details["breakdown"]):
        for key in ("bubble", "exposed_pp_comm", "exposed_tp_comm"):
            assert x[key] == pytest.approx(y[key], rel=1e-9, abs=1e-15), (x["stage"], key)
    assert any(s["exposed_pp_comm"] > 0 for s in a.details["breakdown"])
