"""``report.html``: one self-contained page (no scripts, no external resources).

Title, warnings, the summary figures in human units (with the schedule's theoretical
bubble beside the simulated one; each headline figure with its interval, drawn as an error bar,
and where the interval's σ come from), the layout at a glance, the plots embedded as base64 PNGs
(Gantt, schedule, utilization, memory), what the traces hold (the window of a bounded
``trace.json``, the per-rank traces in ``traces/``), the per-stage time breakdown and memory
tables, the hottest links and the resolved config (collapsible ``<details>``, which needs no
JavaScript). Past :data:`MANY_ROWS` stages a table shows its lowest, median and highest rows
and keeps the whole table folded away, so the page stays short at 64 or 512 stages.
"""

from __future__ import annotations

import base64
import json
import math
from html import escape
from pathlib import Path

from simcluster.metrics.summary import HOST_WAIT_WHY
from simcluster.reporting.style import BREAKDOWN_STYLE
from simcluster.reporting.text import INTERVAL_KEYS, fmt_gib, fmt_pct, fmt_seconds, gpus_word, summary_rows
from simcluster.reporting.theory import theoretical_bubble

WARN_FRACTION = 0.20
MANY_ROWS = 16

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1200px;
padding:0 1rem;color:#222;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:right}th{background:#f4f4f4}
td.k,th.k{text-align:left}
.warn{background:#fff3cd;border:1px solid #e0b000;border-left:6px solid #d58a00;padding:.6rem 1rem;margin:1rem 0}
.warn.bad{background:#fde2e1;border-color:#c0392b;border-left-color:#c0392b}
.warn ul{margin:.2rem 0 .2rem 1.2rem;padding:0}
img{max-width:100%;border:1px solid #eee}
details{margin:.5rem 0}summary{cursor:pointer;font-weight:600}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem}
.ok{color:#1a7f37;font-weight:600}.no{color:#c0392b;font-weight:600}
"""


def collect_warnings(summary: dict, details: dict | None) -> list[tuple[str, bool]]:
    """``(message, severe)`` pairs: the run's own warnings plus memory, exposed comm and bubble checks."""
    out: list[tuple[str, bool]] = []
    s = summary or {}
    if s.get("fits_in_memory") is False:
        out.append((f"Does not fit in memory: peak {fmt_gib(s.get('peak_memory_bytes'))} per GPU "
                    f"exceeds the device's {fmt_gib(s.get('memory_capacity_bytes'))}.", True))
    for key, what, why in (("exposed_comm_fraction", "Exposed communication", ""),
                           ("bubble_fraction", "Pipeline bubble", ""),
                           ("host_wait_fraction", "Host wait", f": {HOST_WAIT_WHY}")):
        v = s.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > WARN_FRACTION:
            out.append((f"{what} is {fmt_pct(v)} of the iteration (above {WARN_FRACTION:.0%}){why}.", False))
    said = ("does not fit", "exposed comm", "pipeline bubble", "host wait")  # checked above, in these words
    for w in (details or {}).get("warnings") or []:
        if any(str(w).lower().startswith(p) and any(m.lower().startswith(p) for m, _ in out) for p in said):
            continue
        out.append((str(w), False))
    return out


def _table(header: list[str], rows: list[list[str]], left_cols: int = 1) -> str:
    """An HTML table; cells are escaped; the first ``left_cols`` columns align left."""
    th = "".join(f'<th class="k">{escape(h)}</th>' if i < left_cols else f"<th>{escape(h)}</th>" for i, h in enumerate(header))
    body = []
    for r in rows:
        body.append("<tr>" + "".join(f'<td class="k">{escape(c)}</td>' if i < left_cols else f"<td>{escape(c)}</td>"
                                     for i, c in enumerate(r)) + "</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _collapsed(header: list[str], body: list[list[str]], key: list[float], what: str) -> str:
    """A table of ``body``; past :data:`MANY_ROWS` rows, only the rows with the lowest, median and
    highest ``key`` (labelled), the whole table folded in a ``<details>``."""
    if len(body) <= MANY_ROWS:
        return _table(header, body)
    order = sorted(range(len(body)), key=lambda i: (key[i], i))
    picks = [("lowest", order[0]), ("median", order[len(order) // 2]), ("highest", order[-1])]
    short = [[f"{body[i][0]} ({label})"] + body[i][1:] for label, i in picks]
    return (_table(header, short) + f"<details><summary>all {len(body)} {what}</summary>"
            + _table(header, body) + "</details>")


def _flatten(d: object, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts as ``(dotted.key, value)`` pairs, in key order."""
    if isinstance(d, dict):
        out: list[tuple[str, str]] = []
        for k in sorted(d, key=str):
            out += _flatten(d[k], f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(d, (list, tuple)):
        return [(prefix, json.dumps(d, default=str))]
    return [(prefix, "null" if d is None else str(d))]


def _breakdown_table(breakdown: list[dict]) -> str:
    """Per stage: each component's seconds and share of the stage's total."""
    rows = sorted((b for b in breakdown if isinstance(b, dict)), key=lambda b: int(b.get("stage", 0) or 0))
    keys = [k for k in BREAKDOWN_STYLE if any(float(b.get(k) or 0) > 0 for b in rows)]  # empty columns left out
    header = ["stage"] + [BREAKDOWN_STYLE[k][1] for k in keys] + ["total"]
    body, bubble = [], []
    for b in rows:
        total = sum(float(b.get(k) or 0) for k in keys)
        cells = [str(b.get("stage", ""))]
        for k in keys:
            v = float(b.get(k) or 0)
            cells.append(f"{fmt_seconds(v)} ({v / total:.1%})" if total > 0 else fmt_seconds(v))
        body.append(cells + [fmt_seconds(total)])
        bubble.append(float(b.get("bubble") or 0))
    return _collapsed(header, body, bubble, "stages (sorted by bubble for the three above)") + ("<p>Each row adds up to the iteration time: compute-stream busy time by phase, "
                                   "then the idle time, charged to what held the next compute task back: a "
                                   "communication this GPU takes part in, or the bubble when it waits for another "
                                   "stage's compute. Inside a fused layer and after the last compute, the first busy "
                                   "kind counts (tensor/context parallel, then pipeline, then data parallel).</p>")


def _memory_table(memory: list[dict], capacity: object = None) -> str:
    """Per stage: memory components in GiB (and the total's share of the device's memory)."""
    rows = sorted((m for m in memory if isinstance(m, dict)), key=lambda m: int(m.get("stage", 0) or 0))
    order = ["weights", "gradients", "optimizer_states", "activations", "buffers", "total"]
    keys = [k for k in order if any(k in m for m in rows)]
    keys += sorted({k for m in rows for k in m if k not in order and k != "stage"})
    header = ["stage"] + [k.replace("_", " ") for k in keys]
    cap = capacity if isinstance(capacity, (int, float)) and not isinstance(capacity, bool) and capacity > 0 else None
    body = [[str(m.get("stage", ""))] + [fmt_gib(m.get(k)) for k in keys] for m in rows]
    if cap and "total" in keys:
        header.append(f"of {fmt_gib(cap)}")
        for cells, m in zip(body, rows):
            cells.append(fmt_pct(float(m.get("total") or 0) / cap))
    return _collapsed(header, body, [float(m.get("total") or 0) for m in rows], "stages (sorted by total)")


def _links_table(links: list[dict], top: int = 10) -> str:
    """The ``top`` links by mean utilization: class, capacity, busy time, bytes, mean utilization;
    the rest collapsed."""
    def util(e: dict) -> float:
        v = e.get("mean_utilization")
        return float(v) if isinstance(v, (int, float)) else -1.0

    rows = sorted((x for x in links if isinstance(x, dict)), key=lambda x: (-util(x), str(x.get("link", ""))))
    body = []
    for e in rows:
        cap = e.get("capacity_bytes_per_s")
        body.append([str(e.get("link", "")), str(e.get("cls", "")),
                     f"{cap / 1e9:g} GB/s" if isinstance(cap, (int, float)) and cap > 0 else "—",
                     fmt_seconds(e.get("busy_s")), fmt_gib(e.get("bytes")), fmt_pct(e.get("mean_utilization"))])
    header = ["link", "class", "capacity", "busy", "carried", "mean utilization"]
    out = _table(header, body[:top], left_cols=2)
    if len(body) > top:
        out += f"<details><summary>{len(body) - top} more links</summary>{_table(header, body[top:], left_cols=2)}</details>"
    return out


LAYOUT_KEYS = (("model", ("layers", "hidden", "heads", "seq_len", "vocab")),
               ("training", ("global_batch", "micro_batch", "precision", "optimizer", "recompute")),
               ("parallelism", ("tensor", "pipeline", "data", "context", "schedule", "virtual_stages",
                                "sequence_parallel", "zero_stage")),
               ("cluster", ("name", "nodes", "gpus_per_node")))


def _error_bar(summary: dict, key: str, width: int = 120, height: int = 12) -> str:
    """An inline SVG error bar of ``KEY_interval`` around ``KEY`` (the point a dot, the interval a
    capped line), on an axis from 0.6 to 1.4 times the figure, so that widths compare across
    figures; empty without an interval."""
    iv, v = summary.get(f"{key}_interval"), summary.get(key)
    if not isinstance(iv, (list, tuple)) or len(iv) != 2 or not isinstance(v, (int, float)):
        return ""
    lo, hi = float(iv[0]), float(iv[1])
    a, b = 0.6 * float(v), 1.4 * float(v)
    if not (math.isfinite(a) and math.isfinite(b)) or b <= a:
        return ""

    def x(u: float) -> float:
        return round(4 + (width - 8) * min(max((u - a) / (b - a), 0.0), 1.0), 1)

    m = height / 2
    return (f' <svg width="{width}" height="{height}" role="img" aria-label="interval" style="vertical-align:middle">'
            f'<line x1="{x(lo)}" y1="{m}" x2="{x(hi)}" y2="{m}" stroke="#555"/>'
            f'<line x1="{x(lo)}" y1="2" x2="{x(lo)}" y2="{height - 2}" stroke="#555"/>'
            f'<line x1="{x(hi)}" y1="2" x2="{x(hi)}" y2="{height - 2}" stroke="#555"/>'
            f'<circle cx="{x(float(v))}" cy="{m}" r="3" fill="#1f6feb"/></svg>')


def _uncertainty_table(u: dict) -> str:
    """Where the iteration time's interval comes from: each part's share of the iteration, its σ
    and its correlation group (:mod:`simcluster.metrics.uncertainty`)."""
    parts = [p for p in u.get("parts") or [] if isinstance(p, dict)]
    total = sum(float(p.get("seconds", 0.0)) for p in parts) or 1.0
    rows = [[str(p.get("part", "")), fmt_pct(float(p.get("seconds", 0.0)) / total), f"{float(p.get('sigma', 0.0)):.3f}",
             str(p.get("group", ""))] for p in parts]
    rows.append(["software stack (all of it)", "100.00 %", f"{float(u.get('stack_sigma', 0.0)):.3f}", "stack"])
    head = (f"<p>σ of the iteration time {float(u.get('iteration_time_sigma', 0.0)):.3f}, of peak memory "
            f"{float(u.get('peak_memory_sigma', 0.0)):.3f} (log-normal; z = {float(u.get('z', 0.0)):.4f} at "
            f"{float(u.get('level', 0.0)) * 100:.0f} %). Parts of a group add their weighted σ, groups add in "
            f"quadrature; the device has {'its own' if u.get('calibrated_device') else 'no'} calibration.</p>")
    return head + _table(["part", "share of the iteration", "σ", "group"], rows)


def _layout_table(config: dict) -> str:
    """The resolved configuration's headline keys, one row per section."""
    body = []
    for section, keys in LAYOUT_KEYS:
        sec = config.get(section) or {}
        if not isinstance(sec, dict):
            continue
        cells = [f"{k.replace('_', ' ')} {sec[k]}" for k in keys if sec.get(k) is not None]
        if section == "cluster" and isinstance(sec.get("device"), dict):
            cells.insert(1, f"device {sec['device'].get('name', '')}")
        if cells:
            body.append([section, " · ".join(cells)])
    return _table(["section", "settings"], body, left_cols=2) if body else ""


def _img(path: Path, alt: str) -> str:
    """The PNG at ``path`` as an inline ``<img>`` (a note when it is missing)."""
    if not path.exists():
        return f"<p><em>{escape(path.name)} was not drawn.</em></p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _traces_text(run_dir: Path, traces: dict | None) -> str:
    """What trace.json and traces/ hold (their windows), from what the writers returned or, on
    a page drawn without them, from the files."""
    traces = traces or {}
    out = []
    tw = traces.get("trace_window")
    if tw is None and (run_dir / "trace.json").exists():
        out.append("<p><code>trace.json</code>: the overview of every simulated GPU for Perfetto "
                   "(its <code>otherData</code> says which part of the iteration it holds).</p>")
    elif tw is not None:
        t0, t1, bounded = tw
        held = (f"<strong>bounded</strong> to the first {fmt_seconds(t1)} of the iteration, to stay small; "
                "<code>write_run(..., trace_scope=\"full\")</code> writes all of it") if bounded \
            else "the whole iteration"
        out.append(f"<p><code>trace.json</code>: every simulated GPU in one file for Perfetto "
                   f"(open it at ui.perfetto.dev), links as utilization counters; {held}.</p>")
    rt = traces.get("rank_traces")
    if rt is not None:
        k0, k1, bounded, names = rt
        held = f"bounded to the first {fmt_seconds(k1)}" if bounded else "the whole iteration"
        shown = ", ".join(names[:4]) + (f", … ({len(names)} files)" if len(names) > 4 else "")
        out.append(f"<p><code>traces/</code>: one Kineto-style trace per simulated rank ({escape(shown)}), "
                   f"{held}: nested ProfilerStep → microbatch pass → layer → kernel slices and NCCL kernels as "
                   "PyTorch's profiler writes them. HolisticTraceAnalysis reads the folder: "
                   "<code>TraceAnalysis(trace_dir=\"traces\")</code>.</p>")
    return "".join(out)


def render_html(run_dir: Path, summary: dict, config: dict, details: dict | None,
                traces: dict | None = None) -> str:
    """The page's HTML; images are read from ``run_dir``; ``traces``: what the trace writers
    reported (windows, file names)."""
    run_dir = Path(run_dir)
    details = details or {}
    name = str((config or {}).get("name") or "simcluster run")
    cluster = (config or {}).get("cluster") or {}
    device = cluster.get("device")
    device = device.get("name") if isinstance(device, dict) else device
    sub = ", ".join(str(x) for x in (cluster.get("name"), device, f"{summary.get('num_gpus', '?')} {gpus_word(summary.get('num_gpus'), device)}") if x)

    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{escape(name)}: simcluster report</title><style>{CSS}</style></head><body>",
             f"<h1>{escape(name)}</h1><p class=\"sub\">simcluster report · {escape(sub)}</p>"]

    warnings = collect_warnings(summary, details)
    if warnings:
        severe = any(s for _, s in warnings)
        items = "".join(f"<li>{'<strong>' if s else ''}{escape(m)}{'</strong>' if s else ''}</li>" for m, s in warnings)
        parts.append(f'<div class="warn{" bad" if severe else ""}"><strong>Warnings</strong><ul>{items}</ul></div>')

    rows = []
    for key, label, value in summary_rows(summary):
        if key == "fits_in_memory":
            cls = "ok" if summary.get(key) else "no"
            rows.append(f'<tr><td class="k">{escape(label)}</td><td class="{cls}">{escape(value)}</td></tr>')
        else:
            rows.append(f'<tr><td class="k">{escape(label)}</td><td>{escape(value)}{_error_bar(summary, key)}</td></tr>')
    theory, formula = theoretical_bubble(config, summary)
    if theory is not None and "bubble_fraction" in summary:
        rows.append(f'<tr><td class="k">pipeline bubble in theory</td><td>{escape(fmt_pct(theory))} '
                    f'({escape(formula)}; equal stages, free communication)</td></tr>')
    parts.append("<h2>Summary</h2><table><tbody>" + "".join(rows) + "</tbody></table>")
    extra = {k: v for k, v in summary.items() if k not in {r[0] for r in summary_rows(summary)} | INTERVAL_KEYS}
    if extra:
        parts.append("<details><summary>other figures</summary>"
                     + _table(["key", "value"], [[k, v] for k, v in _flatten(extra)]) + "</details>")

    layout = _layout_table(config or {})
    if layout:
        parts.append("<h2>Layout</h2>" + layout)

    parts.append("<h2>Timeline</h2>" + _img(run_dir / "gantt.png", "Gantt chart of one iteration"))
    parts.append("<p>Each pixel column of a lane is stacked by the share of its time in each state, so the "
                 "coloured areas are the breakdown below; communication lanes are drawn by density, the "
                 "darker part exposed (the compute stream waits on it), the lighter part overlapped (beside compute, "
                 "or inside a wait for something else: a pipeline neighbour, another collective). "
                 "<code>python -m simcluster report RUN_DIR --window START:END</code> draws a part of the "
                 "iteration as <code>gantt-START-END.png</code> beside this one.</p>")
    parts.append("<h2>Pipeline schedule</h2>" + _img(run_dir / "schedule.png", "pipeline schedule"))
    parts.append("<h2>Traces</h2>" + _traces_text(run_dir, traces)
                 + "<p>The full timeline is <code>timeline.parquet</code> (or <code>timeline.csv</code>).</p>")
    parts.append("<h2>Utilization</h2>" + _img(run_dir / "utilization.png", "utilization over time"))
    if details.get("breakdown"):
        parts.append("<h2>Where the time goes, per stage</h2>" + _breakdown_table(details["breakdown"]))
    if isinstance(details.get("uncertainty"), dict):
        parts.append("<h2>Error bars</h2>" + _uncertainty_table(details["uncertainty"]))
    parts.append("<h2>Memory</h2>" + _img(run_dir / "memory.png", "memory per GPU"))
    if details.get("memory"):
        parts.append(_memory_table(details["memory"], summary.get("memory_capacity_bytes")))
    if details.get("link_utilization"):
        parts.append("<h2>Busiest links</h2>" + _links_table(details["link_utilization"]))
    if details.get("ranks"):
        rk = sorted((r for r in details["ranks"] if isinstance(r, dict)), key=lambda r: (r.get("stage", 0), r.get("rank", 0)))
        parts.append("<details><summary>Simulated ranks</summary>" + _table(
            ["rank", "stage", "stands for", "label"],
            [[str(r.get("rank", "")), str(r.get("stage", "")), f"{r.get('represents', 1)} GPUs", str(r.get("label", ""))]
             for r in rk]) + "</details>")

    parts.append("<h2>Configuration</h2><details><summary>resolved workload and cluster</summary>"
                 + _table(["key", "value"], [[k, v] for k, v in _flatten(config or {})], left_cols=2) + "</details>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_html(path: Path, summary: dict, config: dict, details: dict | None, traces: dict | None = None) -> None:
    """Write ``report.html`` at ``path`` (images are taken from the same folder)."""
    path = Path(path)
    path.write_text(render_html(path.parent, summary, config, details, traces=traces), encoding="utf-8")
