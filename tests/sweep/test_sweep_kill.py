"""Kill a running sweep with SIGKILL, start it again: nothing finished is lost or recomputed,
and the results equal an uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from pathlib import Path

import pandas as pd

import simcluster
from sweep_helpers import comparable, small_sweep, write_sweep
from simcluster.sweep import LocalExecutor, run_sweep

#: 9 layouts × 2 micro batches × 3 recompute modes = 54 points (t × p > 8 filtered out).
KILL_SWEEP = """\
name: kill
base: {base}
set:
  parallelism.data: null
grid:
  parallelism.tensor: [1, 2, 4, 8]
  parallelism.pipeline: [1, 2, 4]
  training.micro_batch: [1, 2]
  training.recompute: [none, selective, full]
filters:
  - parallelism.tensor * parallelism.pipeline <= 8
"""
ENOUGH = 4  # simulated points in the store before the kill


def read_lines(path):
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


def simulated(lines):
    return [json.loads(line) for line in lines if line.endswith(b"\n") and b'"status": "invalid"' not in line]


def test_sigkill_then_resume_loses_and_repeats_nothing(tmp_path):
    path = write_sweep(tmp_path, KILL_SWEEP)
    out = tmp_path / "out"
    store = out / "points.jsonl"
    package_root = Path(simcluster.__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "simcluster", "sweep", str(path), "--out", str(out), "--jobs", "1"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while len(simulated(read_lines(store))) < ENOUGH:
            assert proc.poll() is None, f"the sweep ended before it could be killed: {proc.stderr.read()!r}"
            assert time.monotonic() < deadline, "no point landed within 60 s"
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    before = read_lines(store)
    landed = {r["key"]: r for r in simulated(before)}
    assert ENOUGH <= len(landed) < 54, "killed partway"

    sweep = small_sweep(tmp_path, KILL_SWEEP)
    resumed = run_sweep(sweep, out, LocalExecutor(jobs=2), progress=False, reports=False)
    after = read_lines(store)
    complete_before = [line for line in before if line.endswith(b"\n")]
    assert after[: len(complete_before)] == complete_before  # nothing finished was lost or rewritten
    keys = [json.loads(line)["key"] for line in after]
    assert len(keys) == len(set(keys)) == len(set(resumed.table["config_hash"]))  # nothing recomputed
    assert not set(landed) & {json.loads(line)["key"] for line in after[len(complete_before):]}
    assert resumed.simulated == len(set(resumed.table["config_hash"])) - resumed.from_store
    assert resumed.from_store >= len(landed)

    whole = run_sweep(sweep, tmp_path / "whole", LocalExecutor(jobs=2), progress=False, reports=False)
    assert whole.from_store == 0
    pd.testing.assert_frame_equal(comparable(resumed.table), comparable(whole.table))
    assert len(whole.table) == 54 and set(whole.table["status"]) <= {"ok", "invalid"}
