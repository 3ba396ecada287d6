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


def test_mixed_devices_run_every_rank_at_its_own_speed(tmp_path):
    layout = ("parallelism.tensor=8", "parallelism.pipeline=2", "parallelism.data=1", "cluster.nodes=2")
    same = simulate_workload(make_spec(tmp_path, *layout))
    mixed = simulate_workload(make_spec(tmp_path, *layout, "cluster.node_devices={1: v100}"))
    assert mixed.tasks.meta["fidelity"] == "full"
    tl = mixed.result.timeline
    busy = lambda r: float(tl.query(f"rank == {r} and stream == 'compute'").eval("end_s - start_s").sum())
    assert busy(8) > 2 * busy(0) * 0.9  # a V100 stage computes its (equal) share far slower than an A100
    assert mixed.summary["iteration_time_s"] > 1.5 * same.summary["iteration_time_s"]
    assert mixed.summary["memory_capacity_bytes"] == 32 * 2**30  # the smaller device decides what fits
    # MFU is against the mean peak of the GPUs used: 8 A100 (312) and 8 V100 (125 TFLOP/s)
    assert mixed.summary["mfu"] == pytest.approx(
        mixed.summary["model_tflops_per_gpu"] * 1e12 / ((312e12 + 125e12) / 2), rel=1e-12)


def test_node_devices_must_name_existing_nodes_and_devices(tmp_path):
    with pytest.raises(SpecError, match="node_devices"):
        make_spec(tmp_path, *LAYOUT, "cluster.node_devices={3: v100}")
    with pytest.raises(SpecError, match="unknown device"):
        make_spec(tmp_path, *LAYOUT, "cluster.node_devices={0: tpu-v9}")
