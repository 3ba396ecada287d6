"""``validate-published``: run the corpus's groups, print each row's error and each group's MAPE.

    python -m simcluster validate-published [--group G] [--only ROWS] [--json FILE]
                                            [--leave-one-source-out] [--scripted]

The groups are :mod:`simcluster.validation.corpus` files. ``table1`` (Narayanan et al. 2021
Table 1) prints what :mod:`simcluster.validation.narayanan2021` prints (its table, where each
row's iteration goes, the constants behind it; ``--scripted`` runs two of its rows as the
paper's launch script does); every other group prints the generic table below. The JSON has
``mape`` (over every row run), ``passed`` (every group's acceptance), ``groups`` and ``rows``,
each row with ``group``, ``row``, ``device``, ``framework``, ``source``, ``metric``,
``published``, ``predicted``, ``error`` (predicted / published − 1), ``tolerance``,
``within``, ``interval`` (the prediction's ``[low, high]`` at the summary's level, 80 %:
:mod:`simcluster.metrics.uncertainty`) and ``inside`` (the published figure lies in it), and for
table1 rows the suite's own fields; ``coverage`` (overall and per group) is the share of rows
whose published figure is inside its interval (``--json`` without a file: the JSON on stdout,
the report on stderr). Exit status: 0 every group selected
passes, 1 not, 2 bad input (an unknown group or row, a workload that is not there).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from simcluster.errors import SpecError
from simcluster.metrics import error_bars as eb
from simcluster.run import simulate_workload
from simcluster.spec import load_workload
from simcluster.validation import corpus, narayanan2021
from simcluster.validation.acceptance import acceptance_line, corpus_checks, coverage_accepted, coverage_line
from simcluster.validation.corpus import CorpusError, Group, Row

Progress = Callable[[dict[str, Any]], None]
#: Table 1's rows as its suite knows them, by key.
TABLE1 = {r.key: r for r in narayanan2021.ROWS}


def with_interval(result: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """``result`` with the predicted figure's ``interval`` (from the run's ``summary``) and whether
    the published figure is ``inside`` it."""
    interval = eb.metric_interval(result["metric"], float(result["predicted"]), summary)
    return {**result, "interval": interval, "inside": eb.inside(float(result["published"]), interval)}


def run_row(row: Row) -> dict[str, Any]:
    """Simulate one corpus row: its predicted figure and interval, the error and what explains it."""
    t0 = time.perf_counter()
    spec = load_workload(row.path, overrides=list(row.overrides) or None)
    s = simulate_workload(spec).summary
    par = spec.parallelism
    layout = f"{par.tensor}×{par.pipeline}×{par.data}" + (f"×{par.context} cp" if par.context > 1 else "")
    return {
        **with_interval(row.result(float(s[row.metric])), s),
        "workload": row.workload, "overrides": list(row.overrides), "gpus": s["num_gpus"], "layout": layout,
        "iteration_time_s": s["iteration_time_s"], "tokens_per_s": s["tokens_per_s"], "mfu": s["mfu"],
        "hfu": s["hfu"], "bubble_fraction": s["bubble_fraction"], "exposed_comm_fraction": s["exposed_comm_fraction"],
        "host_wait_fraction": s["host_wait_fraction"], "peak_memory_gib": s["peak_memory_bytes"] / 2**30,
        "memory_capacity_gib": s["memory_capacity_bytes"] / 2**30, "fits_in_memory": s["fits_in_memory"],
        "wall_s": time.perf_counter() - t0,
    }


def run_group(group: Group, scripted: bool = False, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Every row of ``group``, in order (table1's rows through its own suite)."""
    results = []
    for row in group.rows:
        if group.name == "table1":
            r = narayanan2021.run_row(TABLE1[row.key], scripted)
            results.append(with_interval(r, r))  # the suite's row carries T and its interval
        else:
            results.append(run_row(row))
        if progress is not None:
            progress(results[-1])
    return results


def _pct(x: float) -> str:
    return f"{x * 100:+.1f} %"


def table(group: Group, results: list[dict[str, Any]]) -> str:
    """The predicted-vs-published table of a generic group (Markdown)."""
    rows = {r.key: r for r in group.rows}
    head = ("| row | device | framework | GPUs (t×p×d) | metric | published | predicted | 80 % interval | error | "
            "tolerance | memory/GPU | wall |")
    lines = [head, "|" + "---|" * 12]
    for r in results:
        row = rows[r["row"]]
        mark = "" if r["within"] else " ✗"
        memory = f"{r['peak_memory_gib']:.1f} GiB" + ("" if r["fits_in_memory"] else
                                                      f" > {r['memory_capacity_gib']:.0f} (does not fit)")
        lines.append(
            f"| {r['row']} | {r['device']} | {r['framework']} | {r['gpus']:,} ({r['layout']}) | {r['metric']} | "
            f"{row.format(r['published'])} | {row.format(r['predicted'])} | {_span(row, r)} | {_pct(r['error'])}{mark} | "
            f"±{r['tolerance']:.0%} | {memory} | {r['wall_s']:.1f} s |")
    return "\n".join(lines)


def _span(row: Row, r: dict[str, Any]) -> str:
    """``low–high`` of a row's interval in the row's units, ``✗`` when the published figure is outside."""
    lo, hi = r["interval"]
    return f"{row.format(lo)}–{row.format(hi)}" + ("" if r["inside"] else " ✗")


def interval_table(group: Group, results: list[dict[str, Any]]) -> str:
    """Each row's published figure against its predicted interval (Markdown)."""
    rows = {r.key: r for r in group.rows}
    lines = ["| row | published | predicted | 80 % interval | inside |", "|---|---|---|---|---|"]
    for r in results:
        row = rows[r["row"]]
        lines.append(f"| {r['row']} | {row.format(r['published'])} | {row.format(r['predicted'])} | "
                     f"{_span(row, r).removesuffix(' ✗')} | {'yes' if r['inside'] else 'no'} |")
    return "\n".join(lines)


def verdict(group: Group, results: list[dict[str, Any]]) -> str:
    """One line: the MAPE, the worst row and the acceptance."""
    worst = max(results, key=lambda r: abs(r["error"]))
    ok = "PASS" if corpus.accepted(results, group.mape_limit) else "FAIL"
    return (f"MAPE {corpus.mape(results) * 100:.2f} % over {len(results)} rows; worst {worst['row']} "
            f"{_pct(worst['error'])}; acceptance (every row within its tolerance, MAPE ≤ {group.mape_limit:.0%}): "
            f"{ok}")


def report(group: Group, results: list[dict[str, Any]], wall_s: float, scripted: bool) -> str:
    """What the command prints for one group after its rows have run."""
    if group.name == "table1":
        return "\n".join([narayanan2021.report(results, wall_s, scripted), "", "Error bars:", "",
                          interval_table(group, results), "", coverage_line(results)])
    missed = [r for r in results if not r["within"]]
    return "\n".join([
        f"Group {group.name}: {group.title}",
        "",
        table(group, results),
        "",
        f"{verdict(group, results)}; group wall time {wall_s:.1f} s",
        coverage_line(results),
        *([f"Outside tolerance: {', '.join(r['row'] for r in missed)}."] if missed else []),
        "",
        "Sources:",
        *[f"- {r['row']}: {r['source']}" for r in results],
    ])


def summary(groups: list[Group], results: dict[str, list[dict[str, Any]]]) -> str:
    """The corpus table: one line per group run (Markdown)."""
    lines = ["| group | rows | MAPE | worst row | coverage (80 %) | acceptance |", "|---|---|---|---|---|---|"]
    for g in groups:
        rs = results[g.name]
        worst = max(rs, key=lambda r: abs(r["error"]))
        ok = "PASS" if corpus.accepted(rs, g.mape_limit) else "FAIL"
        lines.append(f"| {g.name} | {len(rs)} | {corpus.mape(rs) * 100:.2f} % | {worst['row']} "
                     f"{_pct(worst['error'])} | {eb.coverage(rs) * 100:.0f} % | {ok} (MAPE ≤ {g.mape_limit:.0%}, every row within tolerance) |")
    return "\n".join(lines)


def leave_one_source_out(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each source's error with its rows held out of every fit (here: its error; nothing is fitted)."""
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_source[r["paper"]].append(r)
    sources = {src: {"rows": [r["row"] for r in rs], "mape": corpus.mape(rs)} for src, rs in by_source.items()}
    return {"mape": corpus.mape(rows), "refitted": [], "sources": sources}


def loso_text(loso: dict[str, Any]) -> str:
    lines = ["Leave one source out: no constant of the simulator is fitted to a row of the corpus (the compute "
             "model is fitted to H100 GEMM and kernel microbenchmarks, link efficiencies to NCCL's bus bandwidths), "
             "so holding a source out refits nothing and each source's held-out error is its error above.",
             "", "| source (publication) | rows | held-out MAPE |", "|---|---|---|"]
    for src, v in loso["sources"].items():
        lines.append(f"| {src} | {len(v['rows'])} | {v['mape'] * 100:.2f} % |")
    n = sum(len(v["rows"]) for v in loso["sources"].values())
    lines += ["", f"Leave-one-source-out MAPE {loso['mape'] * 100:.2f} % over {n} rows."]
    return "\n".join(lines)


def _prepare(args: argparse.Namespace) -> list[Group]:
    """The groups and rows the arguments select, their workload files checked to exist."""
    names = corpus.GROUPS if not getattr(args, "group", None) else (args.group,)
    groups = corpus.select(corpus.load_corpus(tuple(names)), getattr(args, "only", None))
    for g in groups:
        for r in g.rows:
            if not r.path.is_file():
                raise CorpusError(f"row {r.key} of group {g.name}: workload {r.path} is not there")
    return groups


def main(args: argparse.Namespace) -> int:
    """The command: 0 every selected group passes, 1 not, 2 bad input."""
    try:
        groups = _prepare(args)
    except CorpusError as e:
        print(f"validate-published: {e}", file=sys.stderr)
        return 2
    scripted = bool(getattr(args, "scripted", False))

    def progress(r: dict[str, Any]) -> None:
        row = next(x for g in groups for x in g.rows if x.key == r["row"])
        print(f"  {r['row']:>16}: {row.format(r['predicted'])} (published {row.format(r['published'])}, "
              f"{_pct(r['error'])}) in {r['wall_s']:.1f} s", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    results: dict[str, list[dict[str, Any]]] = {}
    texts = []
    for g in groups:
        t1 = time.perf_counter()
        try:
            results[g.name] = run_group(g, scripted, progress)
        except SpecError as e:
            print(str(e), file=sys.stderr)
            return 2
        texts.append(report(g, results[g.name], time.perf_counter() - t1, scripted))
    rows = [r for g in groups for r in results[g.name]]
    whole = not getattr(args, "group", None) and not getattr(args, "only", None)  # the corpus checks need all of it
    loso = leave_one_source_out(rows) if getattr(args, "leave_one_source_out", False) else None
    loso_mape = loso["mape"] if loso is not None else None
    passed = all(corpus.accepted(results[g.name], g.mape_limit) for g in groups) and (
        not whole or all(corpus_checks(rows, loso_mape).values()))
    if len(groups) > 1:
        texts.append("Corpus:\n\n" + summary(groups, results) + "\n\n" + coverage_line(rows, judged=whole))
    if loso is not None:
        texts.append(loso_text(loso))
    if whole:
        texts.append(acceptance_line(rows, loso_mape))
    to_stdout = getattr(args, "json", None) == "-"
    print("\n\n".join(texts), file=sys.stderr if to_stdout else sys.stdout)
    if getattr(args, "json", None):
        out: dict[str, Any] = {
            "mape": corpus.mape(rows), "coverage": eb.coverage(rows), "interval_level": eb.LEVEL,
            "coverage_passed": coverage_accepted(rows) if whole else None,
            "acceptance": corpus_checks(rows, loso_mape) if whole else None,
            "passed": passed, "wall_s": time.perf_counter() - t0,
            "groups": [{"group": g.name, "rows": len(results[g.name]), "mape": corpus.mape(results[g.name]),
                        "coverage": eb.coverage(results[g.name]),
                        "mape_limit": g.mape_limit, "passed": corpus.accepted(results[g.name], g.mape_limit)}
                       for g in groups],
            "rows": rows}
        if loso is not None:
            out["leave_one_source_out"] = loso
        if to_stdout:
            print(json.dumps(out, indent=2), file=getattr(args, "stdout", None) or sys.stdout)  # kept under -q
        else:
            Path(args.json).write_text(json.dumps(out, indent=2))
    return 0 if passed else 1
