"""A sweep over ``parallelism.schedule`` gets a page comparing the schedules side by side."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from simcluster.plan import build_plan
from simcluster.reporting.schedule_compare import ideal_passes
from simcluster.reporting.theory import theoretical_bubble
from simcluster.spec import load_workload
from simcluster.spec.sweep import load_sweep
from simcluster.sweep.executors import LocalExecutor
from simcluster.sweep.runner import run_sweep

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "workloads" / "toy-8gpu.yaml"
SWEEP = """\
name: schedules
base: {base}
set:
  parallelism.pipeline: 4
  parallelism.tensor: 1
  parallelism.data: 2
  model.layers: 8
  training.global_batch: 16
  training.micro_batch: 1
grid:
  parallelism.schedule: [1f1b, gpipe, interleaved, zero-bubble]
  parallelism.virtual_stages: [1, 2]
"""


def test_schedules_page(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(textwrap.dedent(SWEEP).replace("{base}", str(TOY)))
    outcome = run_sweep(load_sweep(path), tmp_path / "out", LocalExecutor(jobs=1), progress=False)
    table = outcome.table
    assert set(table.loc[table["status"] == "ok", "parallelism.schedule"]) == {"1f1b", "gpipe", "interleaved",
                                                                                "zero-bubble"}
    png = tmp_path / "out" / "schedules.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    html = (tmp_path / "out" / "report.html").read_text()
    assert 'alt="schedules"' in html


@pytest.mark.parametrize("schedule, v", [("gpipe", 1), ("1f1b", 1), ("interleaved", 2)])
def test_ideal_timing_has_the_closed_form_bubble(schedule, v):
    """With equal stages and free communication the drawn schedule's bubble is the closed form."""
    spec = load_workload(TOY, overrides=["parallelism.pipeline=4", "parallelism.tensor=1", "parallelism.data=1",
                                         "model.layers=8", "training.global_batch=8", "training.micro_batch=1",
                                         f"parallelism.schedule={schedule}", f"parallelism.virtual_stages={v}"])
    plan = build_plan(spec, embedding_and_head=False)
    units = ideal_passes(plan)
    span = units["end_s"].max()
    busy = units.groupby("stage").apply(lambda g: (g["end_s"] - g["start_s"]).sum(), include_groups=False)
    bubble = float((1 - busy / span).mean())
    theory, _ = theoretical_bubble({"parallelism": {"pipeline": 4, "virtual_stages": v, "schedule": schedule}},
                                   {"microbatches": plan.m})
    assert bubble == pytest.approx(theory, abs=1e-9)
