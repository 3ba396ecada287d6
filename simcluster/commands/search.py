"""``python -m simcluster search WORKLOAD.yaml [--out DIR] [--gpus N | --gpus A-B] [--top K]
[--objective throughput|cost] [--jobs N] [--executor local|dask] [--set KEY=VALUE ...] [--json]``

``--set`` (alias ``--fix``, its first name) holds a search key or sets any other workload key;
``--json`` prints the ranking (and where the files went) as JSON on stdout.

Finds the best parallel layout of the workload's model, global batch and cluster: tier 1
estimates every valid layout analytically, prunes those that do not fit in memory and ranks
the rest; tier 2 simulates the best (5 %, at least ``--top``, at most ``--max-simulations``)
as a resumable sweep, and the workload's own layout to compare. Writes ``ranking.csv``,
``best.yaml``, ``estimates.csv``, ``search.json``, ``agreement.png``, ``pareto.png`` (with a
range of GPU counts) and ``report.html`` into ``DIR`` (default ``reports/<name>-search/``).

Exit status: 0 when the search finished; 2 for bad input (a bad workload or ``--fix``, the
cost objective without a price per GPU-hour, dask not installed, a folder another search
is writing); 130 when interrupted (finished simulations are kept: run it again to resume).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from simcluster.commands.options import add_execution_arguments, executor_kind, positive, print_json

HELP = "find the best parallel layout of a workload's model on its cluster (analytical screening + simulation)"


def _gpus(text: str) -> tuple[int | None, int]:
    """``N`` (at most N) or ``A-B`` (from A to B)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if not m or int(m.group(1)) < 1 or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
        raise argparse.ArgumentTypeError(f"expected N or A-B with 1 <= A <= B, got {text!r}")
    return (None, int(m.group(1))) if m.group(2) is None else (int(m.group(1)), int(m.group(2)))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("workload", help="workload YAML file (model, global batch, cluster; optional search: section)")
    p.add_argument("-o", "--out", help="output folder (default reports/<name>-search/); finished simulations there are reused")
    p.add_argument("--gpus", type=_gpus, metavar="N|A-B",
                   help="use at most N GPUs (and more than N/2), or from A to B (default: the cluster's GPUs)")
    p.add_argument("--top", type=positive, metavar="K", help="layouts to show, and the fewest to simulate (default 10)")
    p.add_argument("--objective", choices=("throughput", "cost"),
                   help="tokens/s (default) or tokens per dollar (needs price_per_gpu_hour in the cluster)")
    p.add_argument("--set", "--fix", dest="fix", action="append", default=[], metavar="KEY=VALUE",
                   help="hold a key (e.g. parallelism.tensor=8, or a list parallelism.pipeline=4,8) or set any "
                        "other workload key (--fix: the same)")
    p.add_argument("--json", action="store_true",
                   help="print the ranking as JSON on stdout (the summary text goes to stderr)")
    p.add_argument("--max-simulations", type=positive, metavar="N",
                   help="simulate at most N layouts from the analytical ranking (default 64)")
    add_execution_arguments(p, "simulations")


def _fail(message: str) -> int:
    print(f"simcluster search: {message}", file=sys.stderr)
    return 2


def main(args: argparse.Namespace) -> int:
    from simcluster.search.report import summary_text
    from simcluster.search.runner import SearchOptions, run_search
    from simcluster.search.simulate import SIMULATIONS_DIR
    from simcluster.sweep.executors import MissingExtra, SchedulerUnreachable
    from simcluster.sweep.store import StoreBusy

    kind, problem = executor_kind(args)
    if problem:
        return _fail(problem)
    opts = SearchOptions(workload=args.workload, out=Path(args.out) if args.out else None, gpus=args.gpus,
                         top=args.top, objective=args.objective, fix=list(args.fix),
                         max_simulations=args.max_simulations, executor=kind, jobs=args.jobs,
                         scheduler=args.scheduler, fresh=args.fresh, reports=args.report,
                         progress=False if getattr(args, "quiet", False) or args.json else None)
    try:
        outcome = run_search(opts)  # SpecError: exit 2 with one line per problem (cli.main)
    except (MissingExtra, StoreBusy, SchedulerUnreachable) as exc:
        return _fail(str(exc))
    except OSError as exc:  # disk full, folder removed or made read-only while running
        return _fail(f"cannot write {exc.filename or args.out or 'the output folder'}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        where = f"{args.out or 'the output folder'}/{SIMULATIONS_DIR}"
        print(f"\nsimcluster search: interrupted; finished simulations are kept in {where}: run the same "
              "command again to resume", file=sys.stderr)
        return 130
    print(summary_text(outcome))
    print(f"wrote {outcome.out_dir}/")
    if args.json:
        table = outcome.table
        print_json(args, {"name": outcome.name, "objective": outcome.objective, "out_dir": str(outcome.out_dir),
                          "simulated": outcome.simulated, "baseline": outcome.baseline,
                          "ranking": table.to_dict(orient="records") if not table.empty else []})
    return 0
