"""write_run / redraw: every file written, deterministic bytes, round trips."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from simcluster.reporting import read_timeline, redraw, write_run
from simcluster.reporting.files import DRAWN_FILES, normalize_timeline, write_timeline

from reporting_synthetic import make_timeline

EXPECTED = ("summary.json", "config.json", "details.json", "gantt.png", "schedule.png", "utilization.png",
            "memory.png", "trace.json", "report.html")
RANK_TRACES = ("traces/rank0.json", "traces/rank1.json", "traces/rank2.json", "traces/rank3.json")


def _timeline_file(d):
    return d / "timeline.parquet" if (d / "timeline.parquet").exists() else d / "timeline.csv"


def test_every_file_is_written(tmp_path, run_inputs):
    write_run(tmp_path / "run", *run_inputs)
    for name in EXPECTED + RANK_TRACES:
        assert (tmp_path / "run" / name).stat().st_size > 0, name
    assert _timeline_file(tmp_path / "run").exists()
    png = (tmp_path / "run" / "gantt.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_outputs_are_deterministic(tmp_path, run_inputs):
    a, b = tmp_path / "a", tmp_path / "b"
    write_run(a, *run_inputs)
    write_run(b, *run_inputs)
    for name in ("summary.json", "config.json", "details.json", "trace.json") + RANK_TRACES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert _timeline_file(a).read_bytes() == _timeline_file(b).read_bytes()
    # the same matplotlib draws the same pixels and no timestamps: the whole folder repeats
    for name in ("gantt.png", "schedule.png", "utilization.png", "memory.png", "report.html"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_summary_json_is_sorted_and_indented(tmp_path, run_inputs):
    tl, summary, config, details = run_inputs
    write_run(tmp_path, tl, dict(summary, weird=np.float64("nan"), count=np.int64(3)), config, details)
    text = (tmp_path / "summary.json").read_text()
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert text.startswith("{\n  ")
    assert data["weird"] is None and data["count"] == 3
    assert data["iteration_time_s"] == summary["iteration_time_s"]  # full precision


def test_timeline_round_trips_exactly(tmp_path, run_inputs):
    tl = run_inputs[0].copy()
    # µs-scale values on a 30 s run need all their digits
    tl.loc[0, "start_s"] = 29.999999123456789
    tl.loc[0, "end_s"] = 30.000001987654321
    tl.loc[1, "task"] = 'name, with "quotes"'
    write_timeline(tmp_path, tl)
    back = read_timeline(tmp_path)
    pd.testing.assert_frame_equal(back, normalize_timeline(tl), check_exact=True)


def test_redraw_regenerates_drawn_files(tmp_path, run_inputs):
    write_run(tmp_path, *run_inputs)
    before = {n: (tmp_path / n).read_bytes() for n in ("trace.json", "gantt.png") + RANK_TRACES}
    for name in DRAWN_FILES + RANK_TRACES:
        (tmp_path / name).unlink()
    redraw(tmp_path)
    for name in DRAWN_FILES + RANK_TRACES:
        assert (tmp_path / name).stat().st_size > 0, name
    for name, data in before.items():
        assert (tmp_path / name).read_bytes() == data, name


def test_outputs_selection(tmp_path, run_inputs):
    """``outputs`` picks what is written (the JSON files always are); unknown names are refused."""
    written = write_run(tmp_path / "a", *run_inputs, outputs=["summary", "plots"])
    names = sorted(p.name for p in written)
    assert names == sorted(["summary.json", "config.json", "details.json", "gantt.png", "schedule.png",
                            "utilization.png", "memory.png"])
    assert not (tmp_path / "a" / "trace.json").exists() and not (tmp_path / "a" / "traces").exists()
    assert not list((tmp_path / "a").glob("timeline.*"))
    write_run(tmp_path / "b", *run_inputs, outputs=["timeline"], timeline_format="csv")
    assert (tmp_path / "b" / "timeline.csv").exists() and not (tmp_path / "b" / "gantt.png").exists()
    with pytest.raises(ValueError, match="unknown outputs"):
        write_run(tmp_path / "c", *run_inputs, outputs=["plots", "movies"])


def test_window_writes_beside_the_full_chart(tmp_path, run_inputs):
    """``redraw(window=...)`` writes gantt-<start>-<end>.png and touches nothing else."""
    write_run(tmp_path, *run_inputs)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    T = run_inputs[1]["iteration_time_s"]
    paths = redraw(tmp_path, window=(T / 4, T / 2))
    assert [p.name for p in paths] == [f"gantt-{T / 4:.6g}-{T / 2:.6g}.png"]
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert set(after) == set(before) | {paths[0].name}
    assert all(after[n] == before[n] for n in before)
    assert redraw(tmp_path, window=(0, float("inf")))[0].name == f"gantt-0-{T:.6g}.png"  # the end clipped
    with pytest.raises(ValueError, match="outside the iteration"):
        redraw(tmp_path, window=(2 * T, 3 * T))


def test_engine_timeline_is_not_copied():
    """A timeline already in the schema's form (categorical text, the engine's) is used as is."""
    tl = normalize_timeline(make_timeline())
    again = normalize_timeline(tl)
    for c in tl.columns:
        assert np.shares_memory(np.asarray(tl[c].array.codes if hasattr(tl[c].array, "codes") else tl[c].to_numpy()),
                                np.asarray(again[c].array.codes if hasattr(again[c].array, "codes")
                                           else again[c].to_numpy())), c


def test_redraw_without_a_run_fails_cleanly(tmp_path):
    with pytest.raises(FileNotFoundError):
        redraw(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError):
        redraw(tmp_path)


def test_missing_details_and_empty_timeline(tmp_path, run_inputs):
    tl, summary, config, _ = run_inputs
    write_run(tmp_path / "a", tl, summary, config, {})
    write_run(tmp_path / "b", tl.iloc[0:0], {"iteration_time_s": 1.0}, {}, {})
    for d in ("a", "b"):
        for name in EXPECTED:
            assert (tmp_path / d / name).exists(), (d, name)


def test_parquet_when_pyarrow(tmp_path, run_inputs, monkeypatch):
    pytest.importorskip("pyarrow")
    write_run(tmp_path / "a", *run_inputs)
    write_run(tmp_path / "b", *run_inputs)
    assert (tmp_path / "a" / "timeline.parquet").exists() and not (tmp_path / "a" / "timeline.csv").exists()
    assert (tmp_path / "a" / "timeline.parquet").read_bytes() == (tmp_path / "b" / "timeline.parquet").read_bytes()
    pd.testing.assert_frame_equal(read_timeline(tmp_path / "a"), normalize_timeline(run_inputs[0]), check_exact=True)


def test_csv_without_pyarrow(tmp_path, run_inputs, monkeypatch):
    import simcluster.reporting.tables as tables

    monkeypatch.setattr(tables, "have_pyarrow", lambda: False)
    write_run(tmp_path, *run_inputs)
    assert (tmp_path / "timeline.csv").exists() and not (tmp_path / "timeline.parquet").exists()
    pd.testing.assert_frame_equal(read_timeline(tmp_path), normalize_timeline(run_inputs[0]), check_exact=True)


def test_timeline_may_be_records_or_wrapped(tmp_path, run_inputs):
    tl = run_inputs[0]

    class Wrapped:
        df = tl

    write_timeline(tmp_path / "", Wrapped())
    pd.testing.assert_frame_equal(read_timeline(tmp_path), normalize_timeline(tl), check_exact=True)
    write_timeline(tmp_path, tl.to_dict("records"))
    pd.testing.assert_frame_equal(read_timeline(tmp_path), normalize_timeline(tl), check_exact=True)


def test_the_second_core_reports_back_or_fails_loudly(monkeypatch):
    """A forked drawing child returns its result; its errors are raised here; without fork the
    work runs in this process."""
    from simcluster.reporting import parallel

    assert parallel.start(lambda: [("a.png", 0.5)]).join() == [("a.png", 0.5)]
    forked = parallel.can_fork()  # not while another thread is alive (an earlier test's, say)
    with pytest.raises(RuntimeError if forked else ZeroDivisionError, match="ZeroDivisionError|division"):
        parallel.start(lambda: [("x", 1 / 0)]).join()
    monkeypatch.setenv("SIMCLUSTER_NO_FORK", "1")
    assert not parallel.can_fork()
    job = parallel.start(lambda: [("b.png", float(len("here")))])
    assert job.pid == 0 and job.join() == [("b.png", 4.0)]


def test_ctrl_c_while_waiting_for_the_child_stays_a_ctrl_c():
    """Ctrl-C while this process reads the child's report: cancelling the job stops and reaps the
    child and lets the KeyboardInterrupt through (it once closed the pipe twice: an OSError
    that the CLI reported as "cannot write --out")."""
    import signal
    import time

    from simcluster.reporting import parallel

    if not parallel.can_fork():
        pytest.skip("forking a drawing child is not possible here (one core, threads, or SIMCLUSTER_NO_FORK)")
    job = parallel.start(lambda: [("slow.png", time.sleep(30) or 30.0)])
    pid = job.pid

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        with pytest.raises(KeyboardInterrupt):
            try:
                job.join()
            except BaseException:
                job.cancel()  # what draw_all does
                raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert job.pid == 0 and job.fd == -1
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped


def test_same_files_with_and_without_fork(tmp_path, run_inputs, monkeypatch):
    write_run(tmp_path / "a", *run_inputs)
    monkeypatch.setenv("SIMCLUSTER_NO_FORK", "1")
    write_run(tmp_path / "b", *run_inputs)
    for name in EXPECTED + RANK_TRACES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_ctrl_c_at_the_fork_stops_the_drawing_child(monkeypatch):
    # SIGINT during the fork is held back: the parent stops and reaps its child, then raises
    # KeyboardInterrupt from Job(); ignored, the work is done here at join()
    import os
    import signal

    from simcluster.reporting import parallel

    if not parallel.can_fork():
        pytest.skip("no fork here (one core, threads alive, or not POSIX)")
    fork = os.fork
    children: list[int] = []

    def interrupted_fork() -> int:
        signal.raise_signal(signal.SIGINT)  # while the fork is under way: held
        pid = fork()
        if pid:
            children.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", interrupted_fork)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            parallel.Job(lambda: [("a.png", 0.0)])
    finally:
        signal.signal(signal.SIGINT, before)
    assert len(children) == 1
    with pytest.raises(ChildProcessError):  # reaped already
        os.waitpid(children[0], 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        job = parallel.Job(lambda: [("b.png", 0.0)])
    finally:
        signal.signal(signal.SIGINT, before)
    assert len(children) == 2 and job.pid == 0 and job.join() == [("b.png", 0.0)]
