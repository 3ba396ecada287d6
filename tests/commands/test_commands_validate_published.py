"""``validate-published``: Narayanan et al. 2021 Table 1 (corpus group ``table1``) against the simulator.

The full suite (ten rows, ~40 s on two cores) is the documented command
``python -m simcluster validate-published``; here the seven cheap rows (up to 145.6B on
1,536 GPUs, ~2 s together: data, tensor, pipeline and interleaved layouts) run through the
CLI, and every row's workload file is checked against the table.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simcluster.cli import main
from simcluster.spec import load_workload, validate_file
from simcluster.validation.narayanan2021 import ROWS

CHEAP = ("1.7b", "3.6b", "7.5b", "18.4b", "39.1b", "76.1b", "145.6b")


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def test_the_suite_is_package_data():
    assert len(ROWS) == 10 and all(row.path.is_file() for row in ROWS)
    assert "simcluster/data/validation/narayanan2021/" in ROWS[0].path.as_posix()
    assert [row.key for row in ROWS if row.scripted] == ["39.1b", "1008b"]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.key)
def test_workload_files_match_table1(row):
    assert validate_file(str(row.path)) == []
    spec = load_workload(row.path)
    m, tr, par = spec.model, spec.training, spec.parallelism
    assert (spec.num_gpus, par.tensor, par.pipeline, tr.global_batch) == (row.gpus, row.tensor, row.pipeline,
                                                                         row.batch)
    assert par.data == row.gpus // (row.tensor * row.pipeline) and par.context == 1
    assert (m.seq_len, m.vocab, tr.precision, tr.recompute, tr.flash_attention) == (2048, 51200, "fp16", "full",
                                                                                  False)
    assert spec.cluster.name == "dgx-a100-80gb" and spec.cluster.nodes * 8 == row.gpus
    # interleaved wherever there is a pipeline (the paper's §5.1); whole layers per chunk
    assert (par.schedule == "interleaved") == (row.pipeline > 1)
    assert m.layers % (par.pipeline * par.virtual_stages) == 0
    assert spec.num_microbatches % par.pipeline == 0
    if row.scripted:  # run_table_1.sh's non-interleaved variant is a valid layout too
        scripted = load_workload(row.path, overrides=list(row.scripted))
        assert (scripted.parallelism.schedule, scripted.parallelism.virtual_stages) == ("1f1b", 1)


def test_cheap_rows_within_ten_percent(tmp_path):
    rc, out, err = cli("validate-published", "--only", ",".join(CHEAP), "--json", str(tmp_path / "v.json"))
    assert rc == 0, out + err
    result = json.loads((tmp_path / "v.json").read_text())
    assert [r["row"] for r in result["rows"]] == list(CHEAP)
    for r in result["rows"]:
        assert abs(r["error"]) <= 0.10, r
        # the simulated hardware FLOPs are Narayanan's eq. 3 exactly
        assert r["predicted_tflops"] == pytest.approx(r["eq3_tflops"], rel=1e-9)
        assert sum(r["shares"].values()) == pytest.approx(1.0, rel=1e-6)
        assert r["fits_in_memory"]
    assert result["passed"] and result["mape"] <= 0.05
    for text in ("| 1.7B | 32 | 1 | 1 | 32 | 1 | 512 | 16 | 137 |", "MAPE", "PASS", "Constants behind",
                 "720 H100 GEMMs"):
        assert text in out, text


def test_unknown_row_is_bad_input():
    rc, out, err = cli("validate-published", "--only", "1.7b,2t")
    assert rc == 2 and "unknown row 2t" in err and "Traceback" not in err


def test_runs_from_a_copy_of_the_package_without_benchmarks(tmp_path):
    """An installed copy has the package (and its package data) but no benchmarks/ folder."""
    root = Path(__file__).resolve().parents[2]
    site = tmp_path / "site"
    shutil.copytree(root / "simcluster", site / "simcluster", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(root / "topologies", site / "topologies")  # the presets, where spec/ looks for them
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = "import simcluster, sys; print(simcluster.__file__); sys.exit(0)"
    where = subprocess.run([sys.executable, "-c", probe], cwd=work, env=env, capture_output=True, text=True)
    assert where.stdout.strip() == str(site / "simcluster" / "__init__.py")
    run = subprocess.run([sys.executable, "-m", "simcluster", "validate-published", "--only", "1.7b"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "| 1.7B | 32 | 1 | 1 | 32 | 1 | 512 | 16 | 137 |" in run.stdout and "PASS" in run.stdout
    assert not (site / "benchmarks").exists()
    # the famous group runs the repository's workloads/, which an installed copy does not have
    famous = subprocess.run([sys.executable, "-m", "simcluster", "validate-published", "--group", "famous",
                             "--only", "llama3-8b"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert famous.returncode == 2 and "Traceback" not in famous.stderr, famous.stderr
    assert f"there is no {site / 'workloads'}" in famous.stderr and "--group table1" in famous.stderr
