"""``python -m simcluster sweep SWEEP.yaml [--out DIR] [--set KEY=VALUE ...] [--jobs N] [--executor local|dask] [--scheduler ADDRESS]``

Runs every point of a sweep file (see :mod:`simcluster.spec.sweep`), resuming from the
store in ``DIR`` (default ``reports/<sweep name>/``), and writes ``results.csv`` (and
``results.parquet`` with pyarrow), ``throughput.png``, ``heatmap.png``, ``report.html``
and ``best.yaml``.

Exit status: 0 when the sweep finished (whatever its points' statuses); 2 for bad input:
a bad sweep file, ``--executor dask`` without the ``simcluster[dask]`` extra installed, a
scheduler that cannot be reached, or an output folder another sweep is writing; 130 when
interrupted (finished points are kept: run the same command again to resume).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simcluster.commands.options import add_execution_arguments, executor_kind

HELP = "run a batch of workload variants from a sweep file (resumable; local processes or dask)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", help="sweep YAML file (base workload, grid, zip groups, filters)")
    p.add_argument("-o", "--out", help="output folder (default reports/<sweep name>/); finished points there are reused")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="fix a dotted workload key for every point, as the sweep file's set: section does "
                        "(a swept key keeps its values)")
    add_execution_arguments(p, "points")


def _fail(message: str) -> int:
    print(f"simcluster sweep: {message}", file=sys.stderr)
    return 2


def main(args: argparse.Namespace) -> int:
    from simcluster.errors import Problem, SpecError
    from simcluster.runfolder import check_out_dir
    from simcluster.spec import parse_override
    from simcluster.spec.sweep import load_sweep
    from simcluster.sweep.executors import MissingExtra, SchedulerUnreachable, make_executor
    from simcluster.sweep.report import summary_text
    from simcluster.sweep.runner import STORE_NAME, run_sweep
    from simcluster.sweep.store import StoreBusy

    kind, problem = executor_kind(args)
    if problem:
        return _fail(problem)
    try:
        executor = make_executor(kind, args.jobs, args.scheduler)
    except MissingExtra as exc:
        return _fail(str(exc))
    sweep = load_sweep(args.sweep)  # SpecError: exit 2 with one line per problem (cli.main)
    for text in args.overrides:  # --set: the sweep's set: section, extended
        try:
            override = parse_override(text)
        except ValueError as exc:
            raise SpecError([Problem("--set", None, text.partition("=")[0].strip(), str(exc))]) from None
        sweep.spec.set[override.key] = override.value
    out = Path(args.out) if args.out else Path("reports") / sweep.name
    check_out_dir(out)  # before any point runs
    try:
        outcome = run_sweep(sweep, out, executor, fresh=args.fresh, reports=args.report,
                            progress=False if getattr(args, "quiet", False) else None)
    except (StoreBusy, SchedulerUnreachable) as exc:
        return _fail(str(exc))
    except OSError as exc:  # disk full, folder removed or made read-only while running
        return _fail(f"cannot write {out}: {exc.strerror or exc}; finished points are kept in {out / STORE_NAME}")
    except KeyboardInterrupt:
        print(f"\nsimcluster sweep: interrupted; finished points are kept in {out / STORE_NAME}: "
              "run the same command again to resume", file=sys.stderr)
        return 130
    print(summary_text(outcome.table, outcome.info))
    print(f"{outcome.simulated} simulated, {outcome.from_store} taken from the store, in {outcome.wall_s:.1f} s")
    print(f"wrote {out}/")
    return 0
