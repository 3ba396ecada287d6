"""Command-line conventions (issue 16): the ``simcluster`` console script, ``--version``,
``-q/--quiet``, ``-v/--verbose``, ``--json`` on run / collective / search with the JSON alone on
stdout, ``--set`` on search (``--fix`` kept), ``-o`` for ``--out``, install hints that match the README."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simcluster import __version__
from simcluster.cli import main

ROOT = Path(__file__).resolve().parent.parent
TOY = str(ROOT / "workloads" / "toy-8gpu.yaml")
SCRIPT = Path(sys.executable).parent / "simcluster"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simcluster", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


@pytest.mark.skipif(not SCRIPT.exists(), reason="the console script appears after pip install -e .")
def test_console_script_version():
    done = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"simcluster {__version__}"


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"simcluster {__version__}"


def test_run_json_is_the_summary_alone_on_stdout(tmp_path):
    done = subprocess.run(f"{sys.executable} -m simcluster run {TOY} --json --out {tmp_path / 'run'} | "
                          f"{sys.executable} -c 'import json,sys; d = json.load(sys.stdin); print(d[\"mfu\"])'",
                          shell=True, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert float(done.stdout) == pytest.approx(summary["mfu"])
    assert "wrote" in done.stderr  # the human text went to stderr


def test_quiet_prints_nothing_and_verbose_more(tmp_path, capsys):
    assert main(["run", TOY, "-q", "--out", str(tmp_path / "q")]) == 0
    assert capsys.readouterr().out == ""
    assert main(["-v", "run", TOY, "--out", str(tmp_path / "v")]) == 0
    assert "simulated ranks" in capsys.readouterr().out
    assert main(["-q", "run", TOY, "--out", str(tmp_path / "q"), "--set", "model.layers=x"]) == 2
    assert "model.layers" in capsys.readouterr().err  # problems still reach stderr


def test_collective_json(capsys):
    assert main(["collective", "--min", "1MiB", "--max", "4MiB", "--gpus", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["op"] == "all_reduce" and [r["size"] for r in out["rows"]] == [2**20, 2**21, 2**22]
    assert all(r["busbw"] > 0 for r in out["rows"])


def test_search_json_and_set(tmp_path, capsys):
    rc = main(["search", TOY, "--out", str(tmp_path / "s"), "--set", "parallelism.pipeline=1,2", "--top", "2",
               "--max-simulations", "2", "--jobs", "1", "--no-report", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ranking"] and {r["parallelism.pipeline"] for r in out["ranking"] if r["role"] == "candidate"} <= {1, 2}


def test_search_fix_is_an_alias_of_set(tmp_path, capsys):
    rc = main(["search", TOY, "--out", str(tmp_path / "s"), "--fix", "parallelism.tensor", "--jobs", "1"])
    assert rc == 2 and "--fix" in capsys.readouterr().err


def test_install_hints_match_the_readme():
    from simcluster.sweep.executors import EXTRA

    readme = (ROOT / "README.md").read_text()
    assert "pip install -e '.[dask]'" in EXTRA and "'.[dask]'" in readme
    assert "pip install --no-deps mlc-chakra protobuf" in readme
    source = (ROOT / "simcluster" / "commands" / "export_chakra.py").read_text()
    assert "pip install --no-deps mlc-chakra protobuf" in source


def test_sweep_set_fixes_a_key_for_every_point(tmp_path, capsys):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"name: s\nbase: {TOY}\ngrid:\n  training.micro_batch: [1, 2]\n")
    rc = main(["sweep", str(sweep), "--out", str(tmp_path / "out"), "--set", "model.layers=2", "--jobs", "1",
               "--no-report"])
    assert rc == 0
    import pandas as pd

    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(table["status"]) == ["ok", "ok"]
    from simcluster.run import simulate_workload
    from simcluster.spec import load_workload

    two = simulate_workload(load_workload(TOY, ["model.layers=2", "training.micro_batch=1"])).summary
    assert table["model_flops_per_iteration"].iloc[0] == pytest.approx(two["model_flops_per_iteration"])
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "bad"), "--set", "model.layers"]) == 2


def test_validate_published_json_on_stdout_even_quiet(capsys):
    assert main(["-q", "validate-published", "--only", "1.7b", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"mape", "passed", "rows"} <= set(out) and out["rows"][0]["published"] == 137


@pytest.mark.parametrize("command", [["run", TOY], ["sweep", "s.yaml"], ["search", TOY], ["import-megatron", "a.txt"]])
def test_o_is_out(command):
    """Every command that writes somewhere takes -o for --out (the contract spells --out; -o is the usual short
    form, which argparse refused with exit 2)."""
    from simcluster.cli import _parser

    assert _parser().parse_args([*command, "-o", "x"]).out == "x" == _parser().parse_args([*command, "--out", "x"]).out
