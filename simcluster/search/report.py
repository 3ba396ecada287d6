"""What a search prints and its report.html: the top layouts, how far the workload's own layout
is from the best and why (the simulator's breakdown of both), and the two tiers' agreement."""

from __future__ import annotations

import base64
import math
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from simcluster.reporting.html import CSS
from simcluster.reporting.search_plots import plot_agreement, plot_pareto
from simcluster.reporting.text import fmt_gib, fmt_pct, fmt_seconds
from simcluster.search.results import OBJECTIVES
from simcluster.search.simulate import BREAKDOWN

PART_LABELS = {"compute": "compute", "recompute": "recompute", "exposed_tp_comm": "exposed TP/CP comm",
               "exposed_pp_comm": "exposed pipeline comm", "exposed_dp_comm": "exposed DP comm",
               "bubble": "pipeline bubble", "optimizer": "optimizer", "exposed_ep_comm": "exposed expert A2A",
               "moe_imbalance": "MoE imbalance", "host_wait": "host wait (GPU idle)"}
OPTIONAL_PARTS = ("exposed_ep_comm", "moe_imbalance", "host_wait")  # shown only when either layout has them


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def fmt_metric(objective: str, value: float) -> str:
    if not math.isfinite(value):
        return "—"
    if objective == "cost":
        return f"{value / 1e6:,.1f}M tok/$"
    return f"{value:,.0f}"


def top_rows(outcome: Any) -> tuple[list[str], list[list[str]]]:
    """The printed top-K table: layout, iteration time, MFU, tokens/s, peak memory, fits, estimate."""
    metric = OBJECTIVES[outcome.objective]
    header = ["rank", "layout", "GPUs", "iteration", "MFU", "tokens/s", "peak memory", "fits", "estimate", "est rank"]
    if outcome.objective == "cost":
        header.insert(6, "tokens/$")
    rows = []
    for _, r in outcome.table[outcome.table["status"] == "ok"].head(outcome.top).iterrows():
        cells = [str(r["rank"]), r["layout"], str(int(_num(r["num_gpus"]))), fmt_seconds(_num(r["iteration_time_s"])),
                 fmt_pct(_num(r["mfu"])), f"{_num(r['tokens_per_s']):,.0f}", fmt_gib(_num(r["peak_memory_bytes"])),
                 "yes" if bool(r["fits_in_memory"]) else "NO", fmt_seconds(_num(r["est_iteration_time_s"])),
                 "—" if pd.isna(r["est_rank"]) else str(int(r["est_rank"]))]
        if outcome.objective == "cost":
            cells.insert(6, fmt_metric("cost", _num(r[metric])))
        rows.append(cells)
    return header, rows


def _align(header: list[str], rows: list[list[str]], left: int = 2) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 1 and left else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    return [fmt(header)] + [fmt(r) for r in rows]


def compare(best: pd.Series, other: pd.Series) -> tuple[list[str], str]:
    """The two layouts' breakdowns side by side (time per iteration, averaged over stages) and
    a sentence naming the parts that make ``other`` slower."""
    total_a, total_b = _num(best["iteration_time_s"]), _num(other["iteration_time_s"])
    scale, unit = (1.0, "s") if total_a >= 1 else (1e3, "ms") if total_a >= 1e-3 else (1e6, "us")
    lines = [f"  {f'({unit} per iteration)':24s}{'best':>10s}{'this':>10s}{'difference':>12s}"]
    diffs = []
    for part in BREAKDOWN:
        a, b = _num(best.get(f"breakdown_{part}_s")), _num(other.get(f"breakdown_{part}_s"))
        if part in OPTIONAL_PARTS and not (a > 0 or b > 0):
            continue
        lines.append(f"  {PART_LABELS[part]:24s}{a * scale:10.2f}{b * scale:10.2f}{(b - a) * scale:+12.2f}")
        diffs.append((b - a, part))
    lines.append(f"  {'iteration':24s}{total_a * scale:10.2f}{total_b * scale:10.2f}{(total_b - total_a) * scale:+12.2f}")
    worse = [f"{PART_LABELS[p]} {d * scale:+.2f} {unit}" for d, p in sorted(diffs, reverse=True) if d > 0.005 * total_a]
    better = [f"{PART_LABELS[p]} {d * scale:+.2f} {unit}" for d, p in sorted(diffs) if d < -0.005 * total_a]
    why = ("it loses on " + ", ".join(worse) if worse else "") + \
          ("; it gains on " + ", ".join(better) if better else "")
    return lines, why


def _slower(best: pd.Series, row: pd.Series) -> str:
    ratio = _num(row["iteration_time_s"]) / _num(best["iteration_time_s"]) - 1
    return f"{ratio:.1%} slower than the best" if ratio > 0 else "as fast as the best"


def _row(table: pd.DataFrame, label: str | None) -> pd.Series | None:
    rows = table[(table["layout"] == label) & (table["status"] == "ok")]
    return None if label is None or rows.empty else rows.iloc[0]


def comparisons(outcome: Any) -> list[tuple[str, list[str], str]]:
    """(title, breakdown lines, explanation) for the workload's own layout and the best layout with
    its tensor, pipeline, data and context degrees."""
    table = outcome.table
    best = table.iloc[0] if not table.empty and table.iloc[0]["status"] == "ok" else None
    out = []
    if best is None:
        return out
    for label, what in ((outcome.baseline, "the workload's own layout"),
                        (outcome.reference, "the best with the workload's degrees")):
        row = _row(table, label)
        if row is None:
            continue
        if row["layout"] == best["layout"]:
            out.append((f"{what}, {best['layout']}, is the best layout found", [], ""))
            continue
        fits = "" if bool(row["fits_in_memory"]) else " (does not fit in memory)"
        title = (f"{what}, {row['layout']}: rank {row['rank']}, {fmt_seconds(_num(row['iteration_time_s']))} per "
                 f"iteration{fits}, {_slower(best, row)} ({best['layout']})")
        lines, why = compare(best, row)
        out.append((title, lines, why))
    return out


def summary_text(outcome: Any) -> str:
    """The lines the command prints at the end."""
    s, b, a = outcome.screening, outcome.budget, outcome.agreement
    metric = OBJECTIVES[outcome.objective]
    lines = [f"search {outcome.name}: {s.layouts:,} valid layouts on {outcome.space.min_gpus}-{outcome.space.max_gpus} "
             f"GPUs screened in {s.wall_s:.1f} s ({s.rate:,.0f} layouts/s); {s.fitting:,} fit in memory",
             f"simulated {outcome.simulated} layouts: the {b['candidates']} best estimates (5 % of those that fit: "
             f"{b['share_count']:,}; at least --top {b['top']}, at most --max-simulations {b['max_simulations']})"
             + (f" and {outcome.simulated - b['candidates']} to compare" if outcome.simulated > b["candidates"] else "")]
    if outcome.table.empty or outcome.table.iloc[0]["status"] != "ok":
        lines.append("no layout fits in memory" if not s.fitting else "no layout ran")
        return "\n".join(lines)
    lines.append(f"top {outcome.top} by {metric} (simulated):")
    header, rows = top_rows(outcome)
    lines += ["  " + x for x in _align(header, rows)]
    lines.append(f"analytical vs simulated over {a.pairs} candidates: Spearman rank correlation {a.spearman:.2f}; "
                 f"top-{a.top} overlap {a.overlap} of {a.top}")
    for title, table, why in comparisons(outcome):
        lines.append(title + (":" if table else ""))
        lines += table
        if why:
            lines.append(f"  {why}")
    lines.append(f"wall time {outcome.wall_s:.1f} s")
    return "\n".join(lines)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<p><img alt="{escape(path.stem)}" src="data:image/png;base64,{data}"></p>'


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def write_report(outcome: Any) -> list[Path]:
    """The plots and report.html in the output folder; the paths written."""
    out, metric = outcome.out_dir, OBJECTIVES[outcome.objective]
    plots = [plot_agreement(outcome.table, metric, out / "agreement.png", outcome.agreement.spearman)]
    front = pd.DataFrame([{"gpus": g, "score": c.score} for g, c in outcome.screening.per_gpus.items()])
    pareto = out / "pareto.png"
    if outcome.ranged and len(front) > 1:
        plots.append(plot_pareto(outcome.table, front, metric, pareto))
    elif pareto.exists():
        pareto.unlink()
    plots = [p for p in plots if p is not None]
    text = summary_text(outcome).splitlines()
    header, rows = top_rows(outcome)
    parts = [f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(outcome.name)}: '
             f"simcluster search</title><style>{CSS}td{{white-space:nowrap}}</style></head><body>",
             f"<h1>{escape(outcome.name)}: parallel layout search</h1>",
             "".join(f'<p class="sub">{escape(line)}</p>' for line in text[:2])]
    if rows:
        parts.append(f"<h2>Top {len(rows)} by {escape(metric)} (simulated)</h2>" + _html_table(header, rows))
        parts.append("<p>Ready to run: <code>best.yaml</code>. Every simulated layout, with every summary figure and "
                     "the analytical estimate: <code>ranking.csv</code>; tier 1's best estimates: "
                     "<code>estimates.csv</code>.</p>")
    for title, table, why in comparisons(outcome):
        parts.append(f"<h2>{escape(title)}</h2>")
        if table:
            parts.append("<pre>" + escape("\n".join(table)) + "</pre>")
        if why:
            parts.append(f"<p>{escape(why[0].upper() + why[1:])}.</p>")
    a = outcome.agreement
    parts.append(f"<h2>Analytical vs simulated</h2><p>Spearman rank correlation {a.spearman:.2f} over {a.pairs} "
                 f"candidates; top-{a.top} overlap {a.overlap} of {a.top}.</p>")
    parts += [_img(p) for p in plots]
    parts.append("</body></html>\n")
    html = out / "report.html"
    html.write_text("\n".join(parts), encoding="utf-8")
    return [*plots, html]
