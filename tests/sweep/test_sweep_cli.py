"""``python -m simcluster sweep`` and ``run --set key=a,b,c`` through the CLI."""

from __future__ import annotations

import contextlib
import io
import sys

import pandas as pd
import pytest

from sweep_helpers import EXAMPLES, TOY, write_sweep
from simcluster.cli import main


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def test_the_small_example_sweep(tmp_path):
    rc, out, err = cli("sweep", EXAMPLES / "toy-layouts.yaml", "--out", tmp_path / "s", "--jobs", "2")
    assert rc == 0, err
    assert "27 points: 26 ran" in out and "1 invalid" in out and "best by tokens/s" in out
    assert err == ""  # no progress bar when stderr is not a terminal
    table = pd.read_csv(tmp_path / "s" / "results.csv")
    assert len(table) == 27 and table["point"].tolist() == list(range(27))
    for name in ("throughput.png", "heatmap.png", "report.html", "best.yaml"):
        assert (tmp_path / "s" / name).is_file()
    rc, out, _ = cli("sweep", EXAMPLES / "toy-layouts.yaml", "--out", tmp_path / "s")
    assert rc == 0 and "0 simulated, 27 taken from the store" in out


def test_bad_sweep_file_exit_2_with_line(tmp_path):
    path = write_sweep(tmp_path, "base: {base}\ngrid:\n  parallelism.tensr: [1, 2]\n")
    rc, _, err = cli("sweep", path, "--out", tmp_path / "o")
    assert rc == 2 and err.startswith(f"{path}:3: grid.parallelism.tensr: unknown workload key")
    assert "Traceback" not in err
    rc, _, err = cli("validate", path)
    assert rc == 2 and ":3: grid.parallelism.tensr" in err


def test_dask_missing_is_a_clear_exit_2(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    rc, _, err = cli("sweep", EXAMPLES / "toy-layouts.yaml", "--out", tmp_path / "o", "--executor", "dask")
    assert rc == 2 and "pip install -e '.[dask]'" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_scheduler_needs_dask(tmp_path):
    rc, _, err = cli("sweep", EXAMPLES / "toy-layouts.yaml", "--executor", "local", "--scheduler", "tcp://127.0.0.1:1")
    assert rc == 2 and "--scheduler needs --executor dask" in err


def test_run_with_a_comma_list_is_a_quick_sweep(tmp_path):
    rc, out, err = cli("run", TOY, "--out", tmp_path / "q", "--set", "parallelism.tensor=1,2",
                       "--set", "training.micro_batch=1,2", "--set", "parallelism.data=null")
    assert rc == 0, err
    assert "sweep toy-8gpu-sweep: 4 points: 4 ran" in out
    table = pd.read_csv(tmp_path / "q" / "results.csv")
    assert table[["parallelism.tensor", "training.micro_batch"]].values.tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]


@pytest.mark.parametrize("value", ["[1,3]", "'1,3'"])
def test_a_list_value_is_not_a_sweep(tmp_path, value):
    from simcluster.sweep.quick import is_quick_sweep

    assert not is_quick_sweep([f"parallelism.stage_layers={value}"])
    assert is_quick_sweep(["parallelism.tensor=1,2"])
