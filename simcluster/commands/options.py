"""Command-line options shared by the commands that run many simulations (sweep, search)."""

from __future__ import annotations

import argparse


def positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_execution_arguments(p: argparse.ArgumentParser, what: str) -> None:
    """--jobs, --executor, --scheduler, --fresh, --no-report; ``what`` names the finished items."""
    p.add_argument("--jobs", type=positive, help="worker processes (default: the number of cores)")
    p.add_argument("--executor", choices=("local", "dask"),
                   help="local process pool (default) or dask.distributed (needs simcluster[dask])")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="address of a running dask scheduler, e.g. tcp://host:8786 (implies --executor dask)")
    p.add_argument("--fresh", action="store_true", help=f"forget the {what} finished by earlier runs")
    p.add_argument("--no-report", dest="report", action="store_false", help="write results only, no plots or HTML")


def executor_kind(args: argparse.Namespace) -> tuple[str, str | None]:
    """(executor kind, error message or None): ``--scheduler`` implies dask."""
    kind = args.executor or ("dask" if args.scheduler else "local")
    if args.scheduler and kind != "dask":
        return kind, "--scheduler needs --executor dask"
    return kind, None
