"""Command-line options shared by the commands that run many simulations (sweep, search)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any


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


def _jsonable(obj: Any) -> Any:
    """``obj`` with NaN and infinities as null, numpy scalars as Python numbers, tuples as lists."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and not isinstance(obj, (str, bytes)):
        try:
            obj = obj.item()
        except (TypeError, ValueError):
            return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def print_json(args: argparse.Namespace, obj: Any) -> None:
    """``--json``: ``obj`` as one JSON document on the real stdout (the command's other output is
    sent to stderr meanwhile, by :mod:`simcluster.cli`)."""
    out = getattr(args, "stdout", None) or sys.stdout
    out.write(json.dumps(_jsonable(obj), indent=1) + "\n")
    out.flush()
