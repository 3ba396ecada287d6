"""The command line: ``python -m simcluster run|sweep|search|report|validate``.

Exit status: 0 success; 2 bad input (one line per problem: file, line, key,
reason; at most :data:`MAX_PROBLEMS` lines); 3 ``run --strict`` and the layout does not
fit in memory; 130 interrupted (Ctrl-C); 1 anything else (a bug).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable

import simcluster
from simcluster import interrupt
from simcluster.commands import COMMANDS
from simcluster.commands.options import print_json
from simcluster.errors import Problem, SpecError
from simcluster.runfolder import check_out_dir, check_run_folder


#: Problems printed for one input; the rest are counted ("... and 19,950 more").
MAX_PROBLEMS = 50


def print_problems(problems: list[Problem]) -> None:
    """One line per problem on stderr, the first :data:`MAX_PROBLEMS` of them."""
    for problem in problems[:MAX_PROBLEMS]:
        print(problem, file=sys.stderr)
    if len(problems) > MAX_PROBLEMS:
        print(f"... and {len(problems) - MAX_PROBLEMS:,} more problems", file=sys.stderr)


def _verbosity(p: argparse.ArgumentParser, top: bool = False) -> None:
    """-q/--quiet and -v/--verbose, before or after the command (a command's own copy does not
    reset what was given before it)."""
    default = False if top else argparse.SUPPRESS
    p.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="print nothing but problems (and the JSON of --json)")
    p.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="say more: the simulation's statistics, the log of each step")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="simcluster",
                                description="Discrete-event simulator of large-model training clusters "
                                            "(also: python -m simcluster).")
    p.add_argument("--version", action="version", version=f"simcluster {simcluster.__version__}")
    _verbosity(p, top=True)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="simulate one training iteration of a workload")
    run.add_argument("workload", help="workload YAML file")
    run.add_argument("-o", "--out", help="output folder (default reports/<name>/)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a dotted key of the workload, e.g. parallelism.tensor=4")
    run.add_argument("--strict", action="store_true",
                     help="exit 3 when the layout does not fit in memory (the report is still written)")
    run.add_argument("--json", action="store_true",
                     help="print summary.json on stdout (the summary table and messages go to stderr)")
    for name in COMMANDS:  # module export_chakra is the command export-chakra (alias export_chakra)
        mod = importlib.import_module(f"simcluster.commands.{name}")
        typed = name.replace("_", "-")
        mod.add_arguments(sub.add_parser(typed, aliases=[name] if typed != name else [], help=mod.HELP))
    rep = sub.add_parser("report", help="re-draw the reports of a finished run")
    rep.add_argument("run_dir")
    rep.add_argument("--window", metavar="START:END",
                     help="draw the Gantt chart of this part of the iteration only (seconds, e.g. 0.5:1.25)")
    val = sub.add_parser("validate", help="check a workload, cluster or sweep file")
    val.add_argument("file")
    for command in {id(c): c for c in sub.choices.values()}.values():  # aliases share their parser
        _verbosity(command)
    return p


def _finish(outcome: Any, out: Path, args: argparse.Namespace) -> int:
    """Print the summary table, every warning and where the files went; the exit status
    (3 for ``--strict`` when the layout does not fit in memory)."""
    from simcluster.reporting import print_summary

    print(print_summary(outcome.summary, outcome.spec.resolved_dict(), outcome.details))
    for warning in outcome.summary.get("warnings", []):
        print(f"warning: {warning}")
    if getattr(args, "verbose", False):
        sim = outcome.details.get("simulation", {})
        print(f"simulated {sim.get('tasks', '?'):,} tasks, {sim.get('events', '?'):,} events in "
              f"{outcome.result.wall_s:.3f} s ({outcome.summary.get('simulated_ranks', '?')} simulated ranks)")
    print(f"wrote {out}/")
    if getattr(args, "json", False):
        print_json(args, outcome.summary)
    if args.strict and outcome.summary.get("fits_in_memory") is False:
        print(f"{args.workload}: --strict: the layout does not fit in memory", file=sys.stderr)
        return 3
    return 0


def _guarded(simulate: Callable[[], Any], args: argparse.Namespace, out: Path, errors: type[Exception]) -> Any:
    """``simulate()``; the simulation ``errors`` and failures to write (disk full) as SpecErrors."""
    try:
        return simulate()
    except errors as e:
        raise SpecError([Problem(args.workload, None, "", f"cannot be simulated: {e}")]) from None
    except OSError as e:
        if interrupt.STATE["seen"] or _interrupted(e):  # a write torn by Ctrl-C (e.g. a closed file: EBADF)
            raise KeyboardInterrupt from None
        raise SpecError([Problem("--out", None, "", f"cannot write {out}: {e.strerror or e}")]) from None


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while a KeyboardInterrupt was being handled (its context chain)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__context__
    return False


def _run_traces(args: argparse.Namespace) -> int:
    """``run DIR``: a folder of Chakra execution traces (.et), one per rank."""
    from simcluster.chakra import have_chakra, run_traces
    from simcluster.engine.errors import SimulationError
    from simcluster.spec.fields import as_file_name

    if not have_chakra():
        print(f"{args.workload}: running Chakra traces needs the extra: "
              "pip install --no-deps mlc-chakra protobuf", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path("reports") / as_file_name(Path(args.workload).resolve().name)
    check_out_dir(out)
    # a deadlock or a runaway the checks before simulating missed is still the input's fault
    return _finish(_guarded(lambda: run_traces(Path(args.workload), out, args.overrides), args, out,
                            SimulationError), out, args)


def _run(args: argparse.Namespace) -> int:
    from simcluster.chakra import is_trace_dir
    from simcluster.engine.errors import RunawayError
    from simcluster.run import run_workload
    from simcluster.spec import load_workload
    from simcluster.sweep.quick import is_quick_sweep, run_quick_sweep

    if is_quick_sweep(args.overrides):  # --set key=a,b,c: a quick sweep (simcluster.sweep.quick)
        return run_quick_sweep(args.workload, args.overrides, args.out)
    if is_trace_dir(args.workload):
        return _run_traces(args)
    spec = load_workload(args.workload, overrides=args.overrides)
    out = Path(args.out) if args.out else Path("reports") / spec.name
    check_out_dir(out)  # before simulating: a folder that cannot be written fails now
    # values in range that still make simulated time stand still are the input's fault (a deadlock
    # of a lowered workload is a bug: exit 1 with its traceback)
    return _finish(_guarded(lambda: run_workload(spec, out), args, out, RunawayError), out, args)


def _validate(args: argparse.Namespace) -> int:
    from simcluster.spec import validate_file

    problems = validate_file(args.file)
    if problems:
        raise SpecError(problems)
    print(f"{args.file}: ok")
    return 0


def _report(args: argparse.Namespace) -> int:
    from simcluster.reporting import redraw
    from simcluster.reporting.gantt import parse_window

    run_dir = Path(args.run_dir)
    window = None
    if args.window is not None:
        try:
            window = parse_window(args.window)
        except ValueError as e:
            raise SpecError([Problem("--window", None, "", str(e))]) from None
    check_run_folder(run_dir)  # finished (its marker), and its files are what a run writes
    try:
        redraw(run_dir, window=window)
    except FileNotFoundError as e:
        raise SpecError([Problem(str(run_dir), None, "", str(e))]) from None
    except ValueError as e:  # a window outside the iteration, or a file whose values are unusable
        raise SpecError([Problem(str(run_dir), None, "--window" if window else "", str(e))]) from None
    print(f"re-drew {run_dir}/" + (f" (Gantt window {window[0]:g}–{window[1]:g} s)" if window else ""))
    return 0


def _human_output(args: argparse.Namespace) -> contextlib.AbstractContextManager[object]:
    """Where the commands' human-readable output goes: nowhere with --quiet, stderr with --json
    (stdout carries the JSON alone: :func:`simcluster.commands.options.print_json`), else stdout."""
    if args.quiet:
        stack = contextlib.ExitStack()
        sink = stack.enter_context(open(os.devnull, "w", encoding="utf-8"))
        stack.enter_context(contextlib.redirect_stdout(sink))
        return stack
    if getattr(args, "json", None) is True:  # validate-published's --json [FILE] sends its report itself
        return contextlib.redirect_stdout(sys.stderr)
    return contextlib.nullcontext()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.stdout = sys.stdout  # the JSON of --json goes here, past the redirection of the rest
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="simcluster: %(message)s", stream=sys.stderr)
    handlers = {"run": _run, "validate": _validate, "report": _report}
    interrupt.install()  # Python's own behaviour, raised where it can be taken, and remembered
    handler = handlers.get(args.command) or importlib.import_module(
        f"simcluster.commands.{args.command.replace('-', '_')}").main
    try:
        with _human_output(args):
            return handler(args)
    except SpecError as e:
        print_problems(e.problems)
        return 2
    except KeyboardInterrupt:
        interrupt.settle()  # a second Ctrl-C must not cut the exit short
        print(f"\nsimcluster {args.command}: interrupted", file=sys.stderr)
        return 130
