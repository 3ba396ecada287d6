"""Running sweeps on the local executor: rows, statuses, resume, dead workers, failures."""

from __future__ import annotations

import functools

import pandas as pd
import pytest

from sweep_helpers import always_die, comparable, die_once, raise_at_tensor_4, small_sweep
from simcluster.sweep import LocalExecutor, run_sweep
from simcluster.sweep.export import CONTRACT_SUMMARY_KEYS
from simcluster.sweep.store import Store


def test_every_point_is_a_row_in_sweep_order(small_run):
    sweep, outcome = small_run
    table = outcome.table
    assert list(table["point"]) == list(range(12))
    assert list(table.columns[:3]) == ["point", "parallelism.tensor", "training.micro_batch"]
    assert set(CONTRACT_SUMMARY_KEYS) <= set(table.columns)
    assert list(table.columns[-4:]) == ["status", "message", "wall_s", "config_hash"]
    assert list(table["parallelism.tensor"]) == [1] * 3 + [2] * 3 + [4] * 3 + [8] * 3
    ok = table[table["status"] == "ok"]
    assert len(ok) == 9 and (ok["tokens_per_s"] > 0).all() and (ok["num_gpus"] == 8).all()
    assert outcome.simulated == 9 and outcome.from_store == 0


def test_invalid_points_are_rows_with_the_reason(small_run):
    _, outcome = small_run
    bad = outcome.table[outcome.table["status"] == "invalid"]
    assert list(bad["parallelism.tensor"]) == [8, 8, 8]
    assert all("16" in m and "GPUs" in m for m in bad["message"]), list(bad["message"])
    assert bad["tokens_per_s"].isna().all() and (bad["wall_s"] == 0).all()


def test_results_files(small_run):
    _, outcome = small_run
    out = outcome.out_dir
    for name in ("results.csv", "points.jsonl", "sweep.json", "report.html", "throughput.png", "heatmap.png",
                 "best.yaml"):
        assert (out / name).is_file(), name
    csv = pd.read_csv(out / "results.csv")
    assert list(csv.columns) == list(outcome.table.columns) and len(csv) == 12
    best = outcome.best
    assert best is not None and best["tokens_per_s"] == outcome.table["tokens_per_s"].max()
    assert "Ranking" in (out / "report.html").read_text()


def test_rerun_skips_finished_points(small_run, tmp_path):
    sweep, first = small_run
    lines = (first.out_dir / "points.jsonl").read_text().splitlines()
    again = run_sweep(sweep, first.out_dir, LocalExecutor(jobs=2), progress=False, reports=False)
    assert again.simulated == 0 and again.from_store == 12
    assert (first.out_dir / "points.jsonl").read_text().splitlines() == lines
    pd.testing.assert_frame_equal(comparable(again.table), comparable(first.table))
    assert (again.table["wall_s"] == first.table["wall_s"]).all()  # the stored figures, not new ones


def test_points_with_one_configuration_are_simulated_once(tmp_path):
    text = """\
name: dup
base: {base}
grid:
  parallelism.data: [null, 2]     # the toy has 8 GPUs, tensor 2 × pipeline 2: data defaults to 2
  training.micro_batch: [1, 2]
"""
    outcome = run_sweep(small_sweep(tmp_path, text), tmp_path / "out", LocalExecutor(jobs=2), progress=False,
                        reports=False)
    assert outcome.simulated == 2 and len(outcome.table) == 4
    t = outcome.table
    assert list(t["config_hash"][:2]) == list(t["config_hash"][2:])
    assert list(t["tokens_per_s"][:2]) == list(t["tokens_per_s"][2:])


def test_a_failing_simulation_is_an_error_row(tmp_path):
    executor = LocalExecutor(jobs=2, fn=raise_at_tensor_4)
    outcome = run_sweep(small_sweep(tmp_path), tmp_path / "out", executor, progress=False, reports=False)
    t = outcome.table.set_index("point")
    assert list(t.loc[t["status"] == "error", "parallelism.tensor"]) == [4, 4, 4]
    assert set(t.loc[t["status"] == "error", "message"]) == {"RuntimeError: boom at tensor 4"}
    assert (t["status"] == "ok").sum() == 6


def test_simulate_point_catches_failures(tmp_path, monkeypatch):
    import simcluster.run
    from simcluster.sweep.worker import simulate_point

    def broken(spec):
        raise ZeroDivisionError("the engine divided by zero")

    monkeypatch.setattr(simcluster.run, "simulate_workload", broken)
    spec = small_sweep(tmp_path).workload({"parallelism.tensor": 1, "training.micro_batch": 1})
    rec = simulate_point(spec)
    assert rec["status"] == "error" and rec["message"] == "ZeroDivisionError: the engine divided by zero"


def test_a_dead_worker_is_replaced_and_its_point_retried(tmp_path):
    executor = LocalExecutor(jobs=2, fn=functools.partial(die_once, str(tmp_path / "died")))
    outcome = run_sweep(small_sweep(tmp_path), tmp_path / "out", executor, progress=False, reports=False)
    assert (tmp_path / "died").exists() and executor.restarts == 1
    assert (outcome.table["status"] == "ok").sum() == 9
    keys = [line for line in (tmp_path / "out" / "points.jsonl").read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 12  # every point recorded once


def test_a_point_that_always_kills_its_worker_becomes_an_error(tmp_path):
    executor = LocalExecutor(jobs=2, fn=always_die)
    outcome = run_sweep(small_sweep(tmp_path), tmp_path / "out", executor, progress=False, reports=False)
    t = outcome.table
    (message,) = t.loc[t["status"] == "error", "message"]
    assert "worker process died 3 times" in message
    assert (t["status"] == "ok").sum() == 8
    assert len(Store(tmp_path / "out" / "points.jsonl").load()) == 12


def test_parquet_beside_the_csv_when_pyarrow_is_installed(small_run):
    pytest.importorskip("pyarrow", reason="pyarrow is not installed: pip install 'simcluster[parquet]'")
    _, outcome = small_run
    parquet = pd.read_parquet(outcome.out_dir / "results.parquet")
    csv = pd.read_csv(outcome.out_dir / "results.csv")
    assert list(parquet.columns) == list(csv.columns) and len(parquet) == len(csv) == 12
    assert parquet["tokens_per_s"].equals(csv["tokens_per_s"])
