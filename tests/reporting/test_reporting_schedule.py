"""schedule.png: one labelled box per microbatch pass, as the pipeline papers draw them."""

from __future__ import annotations

from pathlib import Path

import pytest

from simcluster.reporting.schedule import draw_schedule, passes
from simcluster.reporting.theory import theoretical_bubble
from simcluster.run import simulate_workload
from simcluster.spec import load_workload

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "workloads" / "toy-8gpu.yaml"
BASE = ["parallelism.pipeline=4", "parallelism.tensor=1", "parallelism.data=2", "training.global_batch=16",
        "training.micro_batch=1", "model.vocab=8000"]  # small head: stages balanced
CASES = {
    "1f1b": BASE,
    "gpipe": BASE + ["parallelism.schedule=gpipe"],
    "interleaved": BASE + ["model.layers=8", "parallelism.schedule=interleaved", "parallelism.virtual_stages=2"],
    "zero-bubble": BASE + ["parallelism.schedule=zero-bubble"],
    "recompute": BASE + ["training.recompute=full"],
}
_cache: dict[str, tuple] = {}


def _run(name: str) -> tuple:
    if name not in _cache:
        spec = load_workload(TOY, overrides=CASES[name])
        out = simulate_workload(spec)
        _cache[name] = (out.result.timeline, out.summary, spec.resolved_dict(), out.details)
    return _cache[name]


@pytest.mark.parametrize("name", list(CASES))
def test_one_box_per_pass(name):
    tl, summary, config, _ = _run(name)
    units = passes(tl)
    m = summary["microbatches"]
    v = int(config["parallelism"].get("virtual_stages") or 1)
    for rank, u in units.groupby("rank"):
        f, b, w = (u[u["kind"] == k] for k in ("F", "B", "W"))
        assert len(f) == m * v and len(b) == m * v, (name, rank)
        assert sorted(set(f["microbatch"])) == list(range(m))
        assert len(w) == (m * v if name == "zero-bubble" else 0), (name, rank)
        assert sorted(set(u["chunk"])) == list(range(v))
        assert (u["end_s"] > u["start_s"]).all()
        assert (u["recompute_end_s"] > u["start_s"]).any() == (name == "recompute")
        assert (u["recompute_end_s"] <= u["end_s"]).all()


def test_every_microbatch_is_numbered(tmp_path):
    """1F1B on 4 stages: in the whole-iteration panel each stage's F and B boxes carry every number."""
    tl, summary, config, details = _run("1f1b")
    labels = draw_schedule(tmp_path / "s.png", tl, summary, config, details)
    m = summary["microbatches"]
    ranks = sorted({r for p, r, _, _ in labels if p == 0})
    assert len(ranks) == 4
    for r in ranks:
        for kind in ("F", "B"):
            got = sorted(mb for p, rr, k, mb in labels if p == 0 and rr == r and k == kind)
            assert got == list(range(m)), (r, kind, got)
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("name", ["gpipe", "interleaved", "zero-bubble"])
def test_other_schedules_draw(tmp_path, name):
    labels = draw_schedule(tmp_path / "s.png", *_run(name))
    assert labels and {k for _, _, k, _ in labels} >= {"F", "B"}


def test_theoretical_bubble():
    par = {"pipeline": 8, "virtual_stages": 1, "schedule": "1f1b"}
    assert theoretical_bubble({"parallelism": par}, {"microbatches": 96})[0] == pytest.approx(7 / 103)
    par = dict(par, schedule="interleaved", virtual_stages=2)
    assert theoretical_bubble({"parallelism": par}, {"microbatches": 96})[0] == pytest.approx(7 / 199)
    assert theoretical_bubble({"parallelism": {"pipeline": 1}}, {"microbatches": 4})[0] == 0.0
    value, why = theoretical_bubble({"parallelism": {"pipeline": 4, "schedule": "dualpipe"}}, {"microbatches": 8})
    assert value is None and "dualpipe" in why
    # microbatches from the config when the summary does not say
    cfg = {"parallelism": {"pipeline": 4, "data": 2}, "training": {"global_batch": 16, "micro_batch": 1}}
    assert theoretical_bubble(cfg, {})[0] == pytest.approx(3 / 11)
