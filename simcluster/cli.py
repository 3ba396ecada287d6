"""The command line: ``python -m simcluster run|sweep|search|report|validate``.

Exit status: 0 success; 2 bad input (one line per problem: file, line, key,
reason); 1 anything else.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from simcluster.commands import COMMANDS
from simcluster.errors import SpecError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m simcluster",
                                description="Discrete-event simulator of large-model training clusters.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="simulate one training iteration of a workload")
    run.add_argument("workload", help="workload YAML file")
    run.add_argument("--out", help="output folder (default reports/<name>/)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a dotted key of the workload, e.g. parallelism.tensor=4")
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
    return p


def _run(args: argparse.Namespace) -> int:
    from simcluster.reporting import print_summary
    from simcluster.run import run_workload
    from simcluster.spec import load_workload
    from simcluster.sweep.quick import is_quick_sweep, run_quick_sweep

    if is_quick_sweep(args.overrides):  # --set key=a,b,c: a quick sweep (simcluster.sweep.quick)
        return run_quick_sweep(args.workload, args.overrides, args.out)
    from simcluster.chakra import is_trace_dir

    if is_trace_dir(args.workload):  # a folder of Chakra execution traces (.et), one per rank
        from simcluster.chakra import have_chakra, run_traces

        if not have_chakra():
            print(f"{args.workload}: running Chakra traces needs the extra: "
                  "pip install --no-deps mlc-chakra protobuf", file=sys.stderr)
            return 2
        out = Path(args.out) if args.out else Path("reports") / Path(args.workload).name
        outcome = run_traces(Path(args.workload), out, args.overrides)
        print(print_summary(outcome.summary, outcome.spec.resolved_dict(), outcome.details))
        print(f"wrote {out}/")
        return 0
    spec = load_workload(args.workload, overrides=args.overrides)
    out = Path(args.out) if args.out else Path("reports") / spec.name
    outcome = run_workload(spec, out)
    print(print_summary(outcome.summary, spec.resolved_dict(), outcome.details))
    print(f"wrote {out}/")
    return 0


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
    if not (run_dir / "summary.json").is_file():
        print(f"{run_dir}: not a finished run (no summary.json)", file=sys.stderr)
        return 2
    window = None
    if args.window is not None:
        try:
            window = parse_window(args.window)
        except ValueError as e:
            print(f"{run_dir}: --window: {e}", file=sys.stderr)
            return 2
    try:
        redraw(run_dir, window=window)
    except FileNotFoundError as e:
        print(str(e), file=sys.stderr)
        return 2
    except ValueError as e:  # a window outside the iteration
        print(f"{run_dir}: --window: {e}", file=sys.stderr)
        return 2
    print(f"re-drew {run_dir}/" + (f" (Gantt window {window[0]:g}–{window[1]:g} s)" if window else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"run": _run, "validate": _validate, "report": _report}
    handler = handlers.get(args.command) or importlib.import_module(
        f"simcluster.commands.{args.command.replace('-', '_')}").main
    try:
        return handler(args)
    except SpecError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        return 2
