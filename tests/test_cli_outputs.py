"""Issue 19 at the command line: output folders checked before simulating, completion markers,
``report`` refusing what a run did not finish, names that are not paths, ``run --strict``
(exit 3) and every warning in the terminal and in summary.json, bounded searches."""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path

import pandas as pd
import pytest

from simcluster.cli import main
from simcluster.runfolder import MARKER

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "workloads" / "toy-8gpu.yaml"
SMALL_DEVICE = "cluster.device={peak_flops: '312 TFLOP/s', memory: '1 GiB', memory_bandwidth: '2 TB/s'}"


def _cli(*argv: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "toy"
    rc, _, err = _cli("run", TOY, "--out", out)
    assert rc == 0, err
    return out


def test_a_run_folder_is_complete(toy_run):
    marker = json.loads((toy_run / MARKER).read_text())
    assert marker["complete"] is True and "summary.json" in marker["files"]
    assert not [p for p in toy_run.parent.iterdir() if ".partial-" in p.name]
    assert _cli("report", toy_run)[0] == 0


@pytest.mark.parametrize("out, words", [("README.md", "is a file"), ("README.md/x", "lies under"),
                                        ("/proc/simcluster/x", "cannot write")])
def test_unwritable_out_fails_before_simulating(out, words):
    start = time.perf_counter()
    rc, _, err = _cli("run", TOY, "--out", ROOT / out if not out.startswith("/") else out)
    assert rc == 2 and words in err and err.startswith("--out: ")
    assert time.perf_counter() - start < 10  # the simulation did not run (it takes seconds with the reports)


def test_report_refuses_unfinished_or_corrupt_folders(toy_run, tmp_path):
    import shutil

    def copy(name: str) -> Path:
        return Path(shutil.copytree(toy_run, tmp_path / name))

    no_marker = copy("no-marker")
    (no_marker / MARKER).unlink()
    rc, _, err = _cli("report", no_marker)
    assert rc == 2 and f"no {MARKER}" in err and "Traceback" not in err
    listed = copy("listed")
    (listed / "summary.json").write_text("[1, 2]")
    rc, _, err = _cli("report", listed)
    assert rc == 2 and "summary.json is not a JSON object" in err
    columns = copy("columns")
    for stale in columns.glob("timeline.*"):
        stale.unlink()
    pd.DataFrame({"a": [1], "b": [2]}).to_csv(columns / "timeline.csv", index=False)
    rc, _, err = _cli("report", columns)
    assert rc == 2 and "timeline.csv lacks the columns" in err
    rc, _, err = _cli("report", toy_run, "--window", "5:1")
    assert rc == 2 and err.startswith("--window: ")


def test_strict_exits_3_when_the_layout_does_not_fit(tmp_path):
    rc, out, err = _cli("run", TOY, "--set", SMALL_DEVICE, "--out", tmp_path / "big", "--strict")
    assert rc == 3, err
    summary = json.loads((tmp_path / "big" / "summary.json").read_text())
    assert summary["fits_in_memory"] is False
    assert any("not fit in memory" in w for w in summary["warnings"])
    for warning in summary["warnings"]:  # every warning also in the terminal
        assert f"warning: {warning}" in out
    assert "--strict" in err
    rc, _, _ = _cli("run", TOY, "--set", SMALL_DEVICE, "--out", tmp_path / "lenient")
    assert rc == 0


def test_summary_lists_warnings_even_when_there_are_none(toy_run):
    summary = json.loads((toy_run / "summary.json").read_text())
    assert isinstance(summary["warnings"], list)


def test_names_are_not_paths(tmp_path):
    rc, _, err = _cli("run", TOY, "--set", "name=../../escape")
    assert rc == 2 and "name:" in err and "file name" in err
    assert not (ROOT.parent / "escape").exists()
    rc, _, err = _cli("export-chakra", TOY, tmp_path / "traces", "--prefix", "../x")
    assert rc == 2 and err.startswith("--prefix: ")


def test_search_bounds_the_gpus():
    start = time.perf_counter()
    rc, _, err = _cli("search", TOY, "--gpus", "1000000")
    assert rc == 2 and "--gpus" in err and "at most" in err
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("overrides", [
    ["cluster.intra_node.latency=1"],
    ["cluster.intra_node.bandwidth=1.0e+6"],
    ["cluster.stragglers={0: 1000}"],
    ["cluster.device={peak_flops: 1.0e+9, memory: '80 GiB', memory_bandwidth: 1.0e+6}"],
    ["cluster.nodes=2", "parallelism.data=4", "cluster.inter_node.oversubscription=1000",
     "cluster.inter_node.nic_bandwidth=1.0e+6", "cluster.inter_node.latency=1"],
])
def test_extreme_but_valid_values_finish(tmp_path, overrides):
    """Values at the ends of their ranges: the run finishes (or is refused) within 30 s."""
    start = time.perf_counter()
    rc, _, err = _cli("run", TOY, *[a for o in overrides for a in ("--set", o)], "--out", tmp_path / "x")
    assert rc in (0, 2), err
    assert time.perf_counter() - start < 30
