"""Sweep throughput: points per second for the small example sweep, local vs dask.

Run: ``python benchmarks/sweep_throughput.py [--jobs N] [--repeat R] [--sweep FILE]``.
Each run starts from an empty store in a temporary folder and includes everything a
user waits for: expanding and validating the points, starting the workers (a process
pool, or a dask LocalCluster), simulating, writing the store and results.csv (plots and
report.html are left out). Prints, per executor, the points simulated, the best wall
time over the repeats and points/s. The dask line says why it is missing when the
``simcluster[dask]`` extra is not installed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simcluster.spec.sweep import load_sweep  # noqa: E402
from simcluster.sweep import DaskExecutor, LocalExecutor, MissingExtra, run_sweep  # noqa: E402
from simcluster.sweep.executors import default_jobs  # noqa: E402

SMALL = ROOT / "workloads" / "sweeps" / "toy-layouts.yaml"


def measure(sweep, make_executor, repeat: int) -> tuple[int, float]:
    """(points simulated, best wall seconds) over ``repeat`` fresh runs."""
    best, simulated = float("inf"), 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            outcome = run_sweep(sweep, Path(tmp), make_executor(), progress=False, reports=False)
            best = min(best, time.perf_counter() - start)
            simulated = outcome.simulated
    return simulated, best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=default_jobs(), help="workers (default: the cores)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per executor; the best is kept")
    ap.add_argument("--sweep", type=Path, default=SMALL, help="sweep file (default: the small example)")
    args = ap.parse_args()
    sweep = load_sweep(args.sweep)
    print(f"sweep {sweep.name}: {args.jobs} workers, best of {args.repeat}")
    print(f"{'executor':<10} {'points':>7} {'wall s':>8} {'points/s':>9}")
    runs = [("local", lambda: LocalExecutor(args.jobs))]
    try:
        DaskExecutor(args.jobs)
        runs.append(("dask", lambda: DaskExecutor(args.jobs)))
    except MissingExtra as exc:
        runs.append(("dask", exc))
    for name, make in runs:
        if isinstance(make, Exception):
            print(f"{name:<10} skipped: {make}")
            continue
        points, wall = measure(sweep, make, args.repeat)
        print(f"{name:<10} {points:>7} {wall:>8.2f} {points / wall:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
