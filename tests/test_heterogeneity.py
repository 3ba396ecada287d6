"""Stragglers and degraded links: rank symmetry no longer holds, every rank is simulated."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.cli import main
from simcluster.errors import SpecError
from simcluster.run import simulate_workload

LAYOUT = ("parallelism.tensor=2", "parallelism.pipeline=2", "parallelism.data=2")


def test_a_straggler_switches_to_full_fidelity_and_slows_the_iteration(tmp_path):
    base = simulate_workload(make_spec(tmp_path, *LAYOUT))
    slow = simulate_workload(make_spec(tmp_path, *LAYOUT, "cluster.stragglers={5: 1.5}"))
    assert base.tasks.meta["fidelity"] == "symmetric"
    assert slow.tasks.meta["fidelity"] == "full" and len(slow.tasks.ranks) == 8
    T0, T1 = base.summary["iteration_time_s"], slow.summary["iteration_time_s"]
    assert 1.2 * T0 < T1 < 1.5 * T0  # the whole pipeline waits for the slow GPU's stage
    # the straggler's compute is 1.5x its peers'
    tl = slow.result.timeline
    busy = lambda r: float((tl[(tl["rank"] == r) & (tl["stream"] == "compute")].eval("end_s - start_s")).sum())
    assert busy(5) == pytest.approx(1.5 * busy(4), rel=1e-6)


def test_a_degraded_link_slows_the_collectives_that_cross_it(tmp_path):
    layout = ("parallelism.tensor=8", "parallelism.pipeline=1", "parallelism.data=2", "cluster.nodes=2")
    base = simulate_workload(make_spec(tmp_path, *layout))
    names = [n for n in base.topo.link_names if n.startswith("gpu0->")]
    bad = simulate_workload(make_spec(tmp_path, *layout, f"cluster.degraded_links={{'{names[0]}': 0.25}}"))
    assert bad.tasks.meta["fidelity"] == "full"
    tp = lambda o: float(o.result.timeline.query("rank == 0 and stream == 'tp'").eval("end_s - start_s").sum())
    assert tp(bad) > 2 * tp(base)


def test_unknown_degraded_link_and_missing_straggler_are_input_errors(tmp_path, capsys):
    with pytest.raises(SpecError, match="cluster.degraded_links"):
        simulate_workload(make_spec(tmp_path, *LAYOUT, "cluster.degraded_links={'nope': 0.5}"))
    f = tmp_path / "w.yaml"
    assert main(["run", str(f), "--set", "cluster.stragglers={99: 2.0}", "--out", str(tmp_path / "o")]) == 2
    assert "stragglers" in capsys.readouterr().err
