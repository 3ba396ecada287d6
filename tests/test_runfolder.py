"""Issue 19: output folders checked before simulating; run folders written whole or not at all;
``report`` refuses what a run did not finish."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from simcluster.errors import SpecError
from simcluster.runfolder import MARKER, check_out_dir, check_run_folder, incomplete_reason, inside, staged


def _reason(fn, *args) -> str:
    with pytest.raises(SpecError) as exc:
        fn(*args)
    (problem,) = exc.value.problems
    return problem.reason


def test_out_dir_that_is_a_file_or_under_one(tmp_path):
    f = tmp_path / "README.md"
    f.write_text("x")
    assert "is a file" in _reason(check_out_dir, f)
    assert "lies under" in _reason(check_out_dir, f / "x" / "y")
    assert not (tmp_path / "README.md" / "x").exists()


def test_out_dir_too_long_or_unwritable(tmp_path):
    assert "too long" in _reason(check_out_dir, tmp_path / ("a" * 5000))
    assert "NUL" in _reason(check_out_dir, f"{tmp_path}/a\0b")
    assert "cannot write" in _reason(check_out_dir, "/proc/simcluster-test/run")


def test_out_dir_ok_creates_only_its_parents(tmp_path):
    out = tmp_path / "a" / "b" / "run"
    assert check_out_dir(out) == out
    assert out.parent.is_dir() and not out.exists()
    assert not list(out.parent.iterdir())  # the probe file is gone


def test_staged_publishes_whole_folder_with_marker(tmp_path):
    out = tmp_path / "run"
    with staged(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".run.partial-")
        (tmp / "summary.json").write_text("{}")
        (tmp / "traces").mkdir()
        (tmp / "traces" / "rank0.json").write_text("[]")
        assert not out.exists()
    assert incomplete_reason(out) is None
    marker = json.loads((out / MARKER).read_text())
    assert marker["files"] == ["summary.json", "traces/rank0.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError, RuntimeError])
def test_staged_leaves_nothing_when_interrupted(tmp_path, error):
    out = tmp_path / "run"
    with pytest.raises(error):
        with staged(out) as tmp:
            (tmp / "summary.json").write_text("{}")
            raise error()
    assert list(tmp_path.iterdir()) == []


def test_staged_into_a_previous_run_removes_its_stale_files(tmp_path):
    out = tmp_path / "run"
    with staged(out) as tmp:
        (tmp / "timeline.csv").write_text("a\n")
        (tmp / "summary.json").write_text("{}")
    (out / "notes.txt").write_text("mine")  # a user's file: kept
    with staged(out) as tmp:
        (tmp / "timeline.parquet").write_text("p")
        (tmp / "summary.json").write_text('{"x": 1}')
        assert (out / MARKER).exists()  # the old run stays whole until the new one is
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "notes.txt", "summary.json", "timeline.parquet"]
    assert json.loads((out / "summary.json").read_text()) == {"x": 1}


def test_interrupted_rerun_leaves_an_incomplete_folder_never_a_stale_whole_one(tmp_path, monkeypatch):
    out = tmp_path / "run"
    with staged(out) as tmp:
        (tmp / "summary.json").write_text("{}")
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr("simcluster.runfolder.os.replace", flaky)
    with pytest.raises(KeyboardInterrupt):
        with staged(out) as tmp:
            (tmp / "a.json").write_text("{}")
            (tmp / "summary.json").write_text("{}")
    assert incomplete_reason(out) is not None
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_inside_refuses_paths_that_leave_the_folder(tmp_path):
    assert inside(tmp_path, "x.0.et", "--prefix") == tmp_path / "x.0.et"
    for name in ("../x", "/etc/passwd", ".", "a/../../b"):
        with pytest.raises(SpecError):
            inside(tmp_path, name, "--prefix")


def _finished_run(folder, summary="{}", columns=("resource", "stream", "kind", "start_s", "end_s")):
    with staged(folder) as tmp:
        (tmp / "summary.json").write_text(summary)
        pd.DataFrame({c: [0] for c in columns}).to_csv(tmp / "timeline.csv", index=False)


def test_check_run_folder(tmp_path):
    _finished_run(tmp_path / "ok")
    check_run_folder(tmp_path / "ok")
    _finished_run(tmp_path / "list", summary="[1, 2]")
    assert "not a JSON object" in _reason(check_run_folder, tmp_path / "list")
    _finished_run(tmp_path / "garbage", summary="{not json")
    assert "not readable JSON" in _reason(check_run_folder, tmp_path / "garbage")
    _finished_run(tmp_path / "cols", columns=("a", "b"))
    assert "lacks the columns" in _reason(check_run_folder, tmp_path / "cols")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "summary.json").write_text("{}")
    assert f"no {MARKER}" in _reason(check_run_folder, partial)
