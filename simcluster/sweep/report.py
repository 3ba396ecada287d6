"""What a finished sweep writes besides results.csv: plots, report.html, best.yaml, and the
text printed at the end.

``report.html`` is one self-contained page: the counts, the best layout, the plots, a
ranked table of the best layouts that fit in memory, the best ones that do not, and why
points were invalid or failed (grouped by reason).
"""

from __future__ import annotations

import base64
from collections import Counter
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from simcluster.reporting.html import CSS
from simcluster.reporting.schedule_compare import plot_schedule_comparison
from simcluster.reporting.sweep_plots import format_metric, metric_label, plot_heatmap, plot_throughput
from simcluster.reporting.text import fmt_gib, fmt_pct, fmt_seconds
from simcluster.sweep.export import fits, ranked

TOP = 25
EXTRA_CSS = "td{white-space:nowrap}td.k{white-space:normal}.scroll{overflow-x:auto}"
#: (column, header, formatter) of the ranked table after the swept keys.
FIGURES = (
    ("tokens_per_s", "tokens/s", lambda v: format_metric("tokens_per_s", v)),
    ("mfu", "MFU", fmt_pct),
    ("iteration_time_s", "iteration", fmt_seconds),
    ("peak_memory_bytes", "peak memory", fmt_gib),
    ("bubble_fraction", "bubble", fmt_pct),
    ("exposed_comm_fraction", "exposed comm", fmt_pct),
)


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def counts(table: pd.DataFrame) -> dict[str, int]:
    """Points by status, plus ``oom``: ok points that do not fit in memory."""
    c = Counter(table["status"])
    out = {s: int(c.get(s, 0)) for s in ("ok", "invalid", "error")}
    out["oom"] = int(((table["status"] == "ok") & ~fits(table)).sum())
    return out


def point_label(row: pd.Series, keys: list[str]) -> str:
    return " ".join(f"{k}={row[k]}" for k in keys)


def _table(header: list[str], rows: list[list[str]], left: int) -> str:
    th = "".join(f'<th class="k">{escape(h)}</th>' if i < left else f"<th>{escape(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="k">{escape(c)}</td>' if i < left else f"<td>{escape(c)}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def short_names(keys: list[str]) -> list[str]:
    """Column headers for swept keys: the last part of each (``tensor``) where that is unambiguous."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return [name if last.count(name) == 1 else key for name, key in zip(last, keys)]


def _ranked_rows(rows: pd.DataFrame, keys: list[str]) -> tuple[list[str], list[list[str]]]:
    header = ["rank", "point", *short_names(keys), *(h for _, h, _ in FIGURES)]
    body = []
    for rank, (_, row) in enumerate(rows.iterrows(), start=1):
        body.append([str(rank), str(row["point"]), *(str(row[k]) for k in keys),
                     *(fmt(_num(row[col])) for col, _, fmt in FIGURES)])
    return header, body


def _img(path: Path | None, alt: str) -> str:
    if path is None or not path.exists():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<p><img alt="{escape(alt)}" src="data:image/png;base64,{data}"></p>'


def render_html(table: pd.DataFrame, info: dict[str, Any], plots: list[Path]) -> str:
    """The page; ``info`` has ``name``, ``base``, ``keys``, ``rank_by``, ``larger_is_better``."""
    keys, metric = info["keys"], info["rank_by"]
    c = counts(table)
    best = ranked(table, metric, info["larger_is_better"])
    parts = [f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(info["name"])}: '
             f"simcluster sweep</title><style>{CSS}{EXTRA_CSS}</style></head><body>",
             f'<h1>{escape(info["name"])}</h1><p class="sub">simcluster sweep of {escape(str(info["base"]))} · '
             f'{len(table)} points: {c["ok"]} ran ({c["oom"]} do not fit in memory), {c["invalid"]} invalid, '
             f'{c["error"]} failed · ranked by {escape(metric_label(metric))}</p>']
    if best.empty:
        parts.append('<div class="warn bad"><strong>No layout ran and fits in memory.</strong></div>')
    else:
        top = best.iloc[0]
        figures = ", ".join(f"{h} {fmt(_num(top[col]))}" for col, h, fmt in FIGURES)
        parts.append(f'<h2>Best layout</h2><p><strong>{escape(point_label(top, keys) or "the base workload")}</strong>'
                     f" (point {top['point']}): {escape(figures)}. Ready to run: <code>best.yaml</code>.</p>")
    for path in plots:
        parts.append(_img(path, path.stem))
    if not best.empty:
        header, rows = _ranked_rows(best.head(TOP), keys)
        parts.append(f"<h2>Ranking: the {min(TOP, len(best))} best layouts that fit in memory</h2>"
                     + f'<div class="scroll">{_table(header, rows, left=0)}</div>')
    oom = table[(table["status"] == "ok") & ~fits(table)]
    if not oom.empty:
        oom = oom.assign(_m=pd.to_numeric(oom[metric], errors="coerce")).sort_values(
            ["_m", "point"], ascending=[not info["larger_is_better"], True], kind="mergesort")
        header, rows = _ranked_rows(oom.head(TOP), keys)
        parts.append(f"<details><summary>{len(oom)} layouts that ran but do not fit in memory "
                     f"(best {min(TOP, len(oom))})</summary>" + f'<div class="scroll">{_table(header, rows, left=0)}</div>'
                     + "</details>")
    bad = table[table["status"].isin(["invalid", "error"])]
    if not bad.empty:
        groups = bad.groupby(["status", "message"], sort=False)
        rows = [[status, message, str(len(g)), point_label(g.iloc[0], keys)] for (status, message), g in groups]
        parts.append(f"<h2>Points that did not run: {len(bad)}</h2>"
                     + _table(["status", "reason", "points", "for example"], rows, left=4))
    parts.append("<p>Every point, with every summary figure: <code>results.csv</code>.</p></body></html>\n")
    return "\n".join(parts)


def write_sweep_report(out_dir: Path, table: pd.DataFrame, info: dict[str, Any]) -> list[Path]:
    """Draw the plots and write ``report.html`` into ``out_dir``; the paths written."""
    title = f"{info['name']}: {metric_label(info['rank_by'])} by layout"
    plots = [p for p in (
        plot_throughput(table, info["keys"], info["rank_by"], out_dir / "throughput.png", title, info["larger_is_better"]),
        plot_heatmap(table, info["keys"], info["rank_by"], out_dir / "heatmap.png", title, info["larger_is_better"]),
        plot_schedule_comparison(table, info, out_dir / "schedules.png"),  # when the sweep varies the schedule
    ) if p is not None]
    for stale in ("throughput.png", "heatmap.png", "schedules.png"):
        if out_dir / stale not in plots and (out_dir / stale).exists():
            (out_dir / stale).unlink()
    html = out_dir / "report.html"
    html.write_text(render_html(table, info, plots), encoding="utf-8")
    return [*plots, html]


def summary_text(table: pd.DataFrame, info: dict[str, Any], top: int = 5) -> str:
    """The lines printed when a sweep ends: counts, the best layouts."""
    c = counts(table)
    lines = [f"sweep {info['name']}: {len(table)} points: {c['ok']} ran ({c['oom']} do not fit in memory), "
             f"{c['invalid']} invalid, {c['error']} failed"]
    best = ranked(table, info["rank_by"], info["larger_is_better"])
    if best.empty:
        lines.append("no layout ran and fits in memory")
        return "\n".join(lines)
    lines.append(f"best by {metric_label(info['rank_by'])}:")
    header, rows = _ranked_rows(best.head(top), info["keys"])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines.append("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    lines += ["  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)
