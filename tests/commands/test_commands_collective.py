"""`python -m simcluster collective`: the nccl-tests-like benchmark command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from simcluster.cli import main
from simcluster.commands.collective import busbw_factor, sizes

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["collective", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if line.strip() and not line.startswith("#")]


def test_all_reduce_table(capsys):
    rc, out, err = run(capsys, "--op", "all_reduce", "--min", "1MiB", "--max", "8GiB", "--gpus", "16",
                       "--cluster", "dgx-a100-80gb")
    assert rc == 0 and err == ""
    assert "all_reduce on 16 GPUs (2 nodes x 8) of dgx-a100-80gb" in out
    assert "busbw" in out and "algbw" in out and "(us)" in out and "Avg bus bandwidth" in out
    table = rows(out)
    assert [int(r[0]) for r in table] == [2**20 * 2**i for i in range(14)]  # 1 MiB .. 8 GiB, factor 2
    for size, count, dtype, time_us, algbw, busbw, algo in table:
        assert int(count) == int(size) // 4 and dtype == "float" and algo in ("ring", "tree", "hierarchical")
        assert float(algbw) == pytest.approx(int(size) / float(time_us) / 1e3, rel=0.01, abs=0.01)
        assert float(busbw) == pytest.approx(float(algbw) * 2 * 15 / 16, rel=0.01, abs=0.01)


@pytest.mark.parametrize("op", ["all_gather", "reduce_scatter", "broadcast", "all_to_all"])
def test_other_ops_and_busbw_factors(capsys, op):
    rc, out, _ = run(capsys, "--op", op, "--min", "64MiB", "--max", "256MiB", "--step-factor", "4",
                     "--gpus", "8", "--cluster", "dgx-h100")
    assert rc == 0
    table = rows(out)
    assert len(table) == 2
    for r in table:
        assert float(r[5]) == pytest.approx(float(r[4]) * busbw_factor(op, 8), rel=0.01, abs=0.01)
    assert busbw_factor(op, 8) == (1.0 if op == "broadcast" else 7 / 8)


def test_cluster_file_algorithm_and_tpu(capsys):
    rc, out, _ = run(capsys, "--min", "1GiB", "--max", "1GiB", "--gpus", "8", "--algorithm", "ring",
                     "--cluster", ROOT / "topologies" / "dgx-h100.yaml")
    assert rc == 0 and rows(out)[0][-1] == "ring"
    assert float(rows(out)[0][5]) == pytest.approx(370, rel=0.1)
    rc, out, _ = run(capsys, "--min", "1MiB", "--max", "1MiB", "--gpus", "64", "--cluster", "tpu-v4-pod")
    assert rc == 0 and "(16 nodes x 4)" in out and rows(out)[0][-1] == "torus"


def test_sizes():
    assert sizes(8, 64, 2) == [8, 16, 32, 64]
    assert sizes(2**20, 2**23, 8) == [2**20, 2**23]
    assert sizes(100, 250, 1.5) == [100, 150, 225]


@pytest.mark.parametrize("argv, key", [
    (["--op", "allreduce"], "--op"),
    (["--min", "lots"], "--min"),
    (["--min", "1GiB", "--max", "1MiB"], "--max"),
    (["--step-factor", "1"], "--step-factor"),
    (["--gpus", "1"], "--gpus"),
    (["--gpus", "2.5"], "--gpus"),
    (["--algorithm", "bogus"], "--algorithm"),
    (["--op", "all_gather", "--algorithm", "tree"], "--algorithm"),
    (["--gpus", "16", "--cluster", "tpu-v4-pod", "--min", "1ms"], "--min"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, key):
    rc, out, err = run(capsys, "--max", "1MiB", *argv) if "--max" not in argv else run(capsys, *argv)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"{key}:" in lines[0] and "Traceback" not in err


def test_unknown_cluster_exits_2(capsys):
    rc, _, err = run(capsys, "--cluster", "dgx-z900", "--max", "1MiB")
    assert rc == 2 and "dgx-z900" in err and len(err.strip().splitlines()) == 1


def test_module_entry_point():
    p = subprocess.run([sys.executable, "-m", "simcluster", "collective", "--min", "1MiB", "--max", "2MiB",
                        "--gpus", "8"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert len(rows(p.stdout)) == 2
