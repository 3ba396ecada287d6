"""``gantt.png`` and ``gantt.svg``: what every simulated GPU does during one iteration.

One lane group per simulated GPU, ordered by pipeline stage: a thick lane for the compute
stream (forward, backward, recompute, weight gradient, optimizer; idle time hatched grey)
and a thin lane beneath it for each communication stream (tp, cp, dp, pp-fwd, pp-bwd).
Bars are coloured by phase (see :mod:`simcluster.reporting.style`); runs of compute bars
belonging to one microbatch carry its number where there is room. Each lane/colour pair is
one ``broken_barh`` artist, so 100k intervals draw in a few seconds.

With more than :data:`MAX_LANES` simulated GPUs a representative subset is drawn: one GPU
of every stage when they fit (first and last stage always), evenly spaced otherwise; the
title says so. Labels name the real ranks each simulated GPU stands for.

``window=(start, end)`` (seconds) draws only that part of the iteration
(``python -m simcluster report RUN_DIR --window START:END``); bars are clipped to it and
microbatch numbers appear wherever the zoom makes room. Bars of one phase closer than
half a pixel are drawn as one, which keeps the SVG small (a few hundred kB for GPT-3).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from simcluster.reporting.style import (  # noqa: E402
    IDLE_EDGE,
    IDLE_HATCH,
    PHASE_STYLE,
    RankInfo,
    gpu_rows,
    iteration_end,
    phase_colour,
    phase_label,
    rank_infos,
    stream_sort_key,
    text_colour_on,
    workload_name,
)
from simcluster.reporting.utilization import merge_intervals  # noqa: E402

MAX_LANES = 16
MAX_LABELS = 1500
COMPUTE_H = 0.8
COMM_H = 0.3
FIG_W = 15.0
DPI = 110
COMPUTE_PHASES = ("forward", "backward", "recompute", "weight_grad")


def _evenly(items: list, k: int) -> list:
    """``k`` items evenly spaced over ``items``, first and last included."""
    if k >= len(items):
        return list(items)
    if k <= 1:
        return items[:1]
    idx = sorted({int(round(i * (len(items) - 1) / (k - 1))) for i in range(k)})
    return [items[i] for i in idx]


def select_ranks(infos: list[RankInfo], limit: int = MAX_LANES) -> list[RankInfo]:
    """A representative subset of at most ``limit`` simulated GPUs, in (stage, rank) order.

    First one GPU per stage (first and last stage always, evenly spaced stages between);
    left-over room is filled with evenly spaced other GPUs.
    """
    if len(infos) <= limit:
        return list(infos)
    first_of_stage: dict[int, RankInfo] = {}
    for i in infos:
        first_of_stage.setdefault(i.stage, i)
    reps = list(first_of_stage.values())
    chosen = _evenly(reps, limit)
    if len(chosen) < limit:
        rest = [i for i in infos if i not in chosen]
        chosen += _evenly(rest, limit - len(chosen))
    return sorted(chosen, key=lambda i: (i.stage, i.rank))


def _layout(infos: list[RankInfo], streams: dict[int, list[str]]) -> tuple[dict[tuple[int, str], tuple[float, float]], list, list, list[float]]:
    """Lane positions: ``{(rank, stream): (y_bottom, height)}``, tick positions/labels, stage separators."""
    lanes: dict[tuple[int, str], tuple[float, float]] = {}
    ticks: list[float] = []
    labels: list[tuple[str, bool]] = []
    separators: list[float] = []
    y = 0.0
    prev_stage: int | None = None
    for info in infos:
        if prev_stage is not None and info.stage != prev_stage:
            separators.append(y + 0.15)
            y += 0.3
        prev_stage = info.stage
        lanes[(info.rank, "compute")] = (y, COMPUTE_H)
        ticks.append(y + COMPUTE_H / 2)
        labels.append((info.label, True))
        y += COMPUTE_H + 0.08
        for s in streams.get(info.rank, []):
            if s == "compute":
                continue
            lanes[(info.rank, s)] = (y, COMM_H)
            ticks.append(y + COMM_H / 2)
            labels.append((s, False))
            y += COMM_H + 0.05
        y += 0.3
    return lanes, ticks, labels, separators + [y]


def _microbatch_blocks(rows: pd.DataFrame) -> pd.DataFrame:
    """Runs of consecutive compute-lane bars with one (phase, microbatch), one row per run.

    Columns: phase, microbatch, and ``start_s``/``end_s`` where its label goes: the whole run
    when bars cover most of it (the gaps are short waits for TP collectives), else the run's
    widest bar (so the label does not sit in a gap).
    """
    rows = rows[rows["microbatch"] >= 0].sort_values(["start_s", "end_s"], kind="mergesort")
    cols = ["phase", "microbatch", "start_s", "end_s"]
    if rows.empty:
        return rows.iloc[0:0][cols]
    key = rows["phase"].astype(str) + "#" + rows["microbatch"].astype(str)
    dur = (rows["end_s"] - rows["start_s"]).to_numpy()
    # near-equal widths count as equal so that the run's first bar wins ties
    rel = np.round(dur / dur.max(), 3) if dur.max() > 0 else dur
    rows = rows.assign(_block=(key != key.shift()).cumsum().to_numpy(), _dur=rel, _len=dur)
    widest = rows.sort_values(["_block", "_dur", "start_s"], ascending=[True, False, True], kind="mergesort")
    widest = widest.drop_duplicates("_block").set_index("_block")
    runs = rows.groupby("_block").agg(s=("start_s", "min"), e=("end_s", "max"), busy=("_len", "sum"))
    whole = runs["busy"] >= 0.6 * (runs["e"] - runs["s"])
    out = widest[cols].copy()
    out.loc[whole, "start_s"] = runs.loc[whole, "s"]
    out.loc[whole, "end_s"] = runs.loc[whole, "e"]
    return out.reset_index(drop=True)


def _dominant_runs(rows: pd.DataFrame, t0: float, t1: float, n_px: int) -> list[tuple[str, list[tuple[float, float]]]]:
    """Per pixel column of one lane over ``[t0, t1]``, the phase busy for most of it (if the
    lane is busy for at least half of it), as runs of (start, width) per phase."""
    edges = np.linspace(t0, t1, n_px + 1)
    phases = sorted(set(rows["phase"].astype(str)))
    cover = np.zeros((len(phases), n_px))
    for i, ph in enumerate(phases):
        r = rows[rows["phase"] == ph].sort_values("start_s")
        st, en = r["start_s"].to_numpy(), r["end_s"].to_numpy()
        dur = en - st
        cum = np.concatenate([[0.0], np.cumsum(dur)])
        idx = np.searchsorted(st, edges, side="right")  # intervals starting at or before each edge
        last = np.maximum(idx - 1, 0)
        partial = np.where(idx > 0, np.clip(edges - st[last], 0.0, dur[last]), 0.0)
        busy_to = cum[np.maximum(idx - 1, 0)] * (idx > 0) + partial
        cover[i] = np.diff(busy_to)
    width = edges[1] - edges[0]
    winner = np.argmax(cover, axis=0)
    filled = cover.sum(axis=0) >= 0.5 * width
    out = []
    for i, ph in enumerate(phases):
        mask = filled & (winner == i)
        if not mask.any():
            continue
        d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        out.append((ph, [(float(edges[a]), float(edges[b] - edges[a])) for a, b in zip(starts, ends)]))
    return out


def _coalesce(starts: np.ndarray, ends: np.ndarray, px: float) -> list[tuple[float, float]]:
    """Bars at least one pixel (``px`` seconds) wide, those less than half a pixel apart merged:
    ``[(start, width), ...]`` that draw the same picture with fewer shapes."""
    if len(starts) == 0:
        return []
    ends = np.maximum(ends, starts + px)
    s, e = merge_intervals(starts, ends + 0.5 * px)
    return list(zip(s.tolist(), (e - 0.5 * px - s).tolist()))


def clip_to_window(rows: pd.DataFrame, t0: float, t1: float) -> pd.DataFrame:
    """The rows overlapping ``[t0, t1]``, their intervals clipped to it."""
    if rows.empty:
        return rows
    keep = (rows["end_s"] > t0) & (rows["start_s"] < t1) | ((rows["start_s"] == rows["end_s"]) & rows["start_s"].between(t0, t1))
    rows = rows[keep]
    return rows.assign(start_s=rows["start_s"].clip(lower=t0), end_s=rows["end_s"].clip(upper=t1))


def parse_window(text: str) -> tuple[float, float]:
    """``"START:END"`` in seconds (either may be empty: 0 / the iteration's end) -> ``(start, end)``;
    ``ValueError`` with a readable reason otherwise."""
    if ":" not in text:
        raise ValueError(f"window {text!r} is not START:END (seconds)")
    a, b = (x.strip() for x in text.split(":", 1))
    try:
        start = float(a) if a else 0.0
        end = float(b) if b else float("inf")
    except ValueError:
        raise ValueError(f"window {text!r}: START and END must be numbers of seconds") from None
    if not (start >= 0 and end > start):
        raise ValueError(f"window {text!r}: needs 0 <= START < END")
    return start, end


def draw_gantt(
    path: Path,
    timeline: pd.DataFrame,
    summary: dict | None = None,
    config: dict | None = None,
    details: dict | None = None,
    window: tuple[float, float] | None = None,
    svg_path: Path | None = None,
) -> list[tuple[int, str, int]]:
    """Draw the Gantt chart as a PNG at ``path`` (and an SVG at ``svg_path`` when given).

    ``window`` limits the time axis to ``(start, end)`` seconds (see the module docstring).
    Returns the microbatch numbers written on bars as ``(rank, phase, microbatch)``.
    """
    t_iter = iteration_end(timeline, summary)
    t0, t1 = (0.0, t_iter) if window is None else (float(window[0]), min(float(window[1]), t_iter))
    if not t1 > t0:
        raise ValueError(f"window {window} lies outside the iteration (0 to {t_iter:.6g} s)")
    span = t1 - t0
    all_infos = rank_infos(timeline, details)
    infos = select_ranks(all_infos)
    g = gpu_rows(timeline)
    g = g[g["rank"].isin([i.rank for i in infos])] if len(g) else g
    streams: dict[int, list[str]] = {
        int(r): sorted(set(rows["stream"].astype(str)), key=stream_sort_key) for r, rows in g.groupby("rank", sort=True)
    }
    g = clip_to_window(g, t0, t1)
    lanes, ticks, labels, seps = _layout(infos, streams)
    height_units = seps[-1] if seps else 1.0
    fig_h = float(np.clip(1.6 + 0.42 * height_units, 3.0, 40.0))
    fig, ax = plt.subplots(figsize=(FIG_W, fig_h))

    n_px = int(FIG_W * DPI * 0.72)  # the plot area is about 72 % of the figure's width
    px = span / n_px  # seconds per pixel
    compute = g[g["stream"] == "compute"] if len(g) else g
    by_rank = {int(r): rows for r, rows in compute.groupby("rank", sort=True)} if len(compute) else {}
    dense = {r for r, rows in by_rank.items() if float((rows["end_s"] - rows["start_s"]).mean()) < 2.0 * px}

    # idle time on compute lanes: hatched where a gap is a few pixels wide, light grey below that
    for info in infos:
        y0, h = lanes[(info.rank, "compute")]
        rows = by_rank.get(info.rank, compute.iloc[0:0])
        s, e = merge_intervals(rows["start_s"].to_numpy(), rows["end_s"].to_numpy())
        gap_s, gap_e = np.concatenate([[t0], e]), np.concatenate([s, [t1]])
        width = gap_e - gap_s
        wide = width >= 3.0 * px  # a hatch in a gap a pixel or two wide only adds noise
        if info.rank in dense:  # columns less than half busy show as "mostly idle"
            ax.broken_barh([(t0, span)], (y0, h), facecolors="#e4e4e4", linewidth=0)
        else:
            narrow = (width > 0) & ~wide
            ax.broken_barh(_coalesce(gap_s[narrow], gap_e[narrow], 0.0), (y0, h), facecolors="#e4e4e4", linewidth=0)
        ax.broken_barh(list(zip(gap_s[wide], width[wide])), (y0, h), facecolors="white",
                       edgecolors=IDLE_EDGE, hatch=IDLE_HATCH, linewidth=0.0)

    # bars, one artist per (lane, phase); compute lanes whose bars are mostly narrower than
    # a pixel are drawn per pixel column in the phase that fills most of it, so a long run of
    # interleaved recompute and backward shows both instead of whichever was drawn last
    phases_seen: set[str] = set()
    for rank in sorted(dense):
        for phase, runs in _dominant_runs(by_rank[rank], t0, t1, n_px):
            phases_seen.add(phase)
            ax.broken_barh(runs, lanes[(rank, "compute")], facecolors=phase_colour(phase), edgecolors="none",
                           linewidth=0)
    for (rank, stream, phase), rows in g.groupby(["rank", "stream", "phase"], sort=True) if len(g) else []:
        lane = lanes.get((int(rank), str(stream)))
        if lane is None or (stream == "compute" and int(rank) in dense):
            continue
        phases_seen.add(str(phase))
        # at least ~1 pixel wide, so that short collectives stay visible on a long iteration
        bars = _coalesce(rows["start_s"].to_numpy(), rows["end_s"].to_numpy(), px)
        ax.broken_barh(bars, lane, facecolors=phase_colour(str(phase)), edgecolors="none", linewidth=0)

    placed = _microbatch_labels(ax, compute, lanes, px)

    ax.set_ylim(height_units, -0.2)
    ax.set_xlim(t0, t1)
    if t0 < t_iter <= t1:
        ax.axvline(t_iter, color="black", lw=0.8, ls="--")
    for y in seps[:-1]:
        ax.axhline(y, color="#444444", lw=0.6)
    ax.set_yticks(ticks)
    ax.set_yticklabels([lab for lab, _ in labels])
    for tick, (_, major) in zip(ax.get_yticklabels(), labels):
        tick.set_fontsize(8 if major else 6.5)
        tick.set_color("black" if major else "#555555")
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel("time since the iteration's start (s)")
    ax.grid(axis="x", alpha=0.25)
    ax.set_axisbelow(True)

    title = f"{workload_name(config, summary)}: one iteration ({t_iter:.4g} s) on {len(all_infos)} simulated GPUs"
    if window is not None:
        title += f", window {t0:.4g}–{t1:.4g} s"
    if len(infos) < len(all_infos):
        title += f"\nshowing {len(infos)} of {len(all_infos)}: first and last stage and evenly spaced GPUs between"
    ax.set_title(title, fontsize=11)

    order = [p for p in PHASE_STYLE if p in phases_seen] + sorted(phases_seen - set(PHASE_STYLE))
    handles = [Patch(facecolor=phase_colour(p), label=phase_label(p)) for p in order]
    handles.append(Patch(facecolor="white", edgecolor=IDLE_EDGE, hatch=IDLE_HATCH, label="idle (compute)"))
    if dense:
        handles.append(Patch(facecolor="#e4e4e4", label="mostly idle (< half a pixel busy)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False,
              title="phase", title_fontsize=9)
    ax.text(1.005, 0.0, "numbers on bars:\nmicrobatch", transform=ax.transAxes, fontsize=7.5, color="#555555",
            va="bottom", ha="left")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    if svg_path is not None:
        with plt.rc_context({"svg.hashsalt": "simcluster", "svg.fonttype": "none"}):
            fig.savefig(svg_path, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return placed


def _microbatch_labels(ax: plt.Axes, compute: pd.DataFrame, lanes: dict, px: float) -> list[tuple[int, str, int]]:
    """The microbatch number on each run of one (phase, microbatch) where it fits; returns them."""
    comp = compute[compute["phase"].isin(COMPUTE_PHASES)] if len(compute) else compute
    blocks = [(r, _microbatch_blocks(rows)) for r, rows in comp.groupby("rank", sort=True)] if len(comp) else []
    out: list[tuple[int, str, int]] = []
    if not 0 < sum(len(b) for _, b in blocks) <= MAX_LABELS * 4:
        return out
    placed = 0
    for rank, b in blocks:
        y0, h = lanes[(int(rank), "compute")]
        for phase, mb, s0, s1 in b[["phase", "microbatch", "start_s", "end_s"]].itertuples(index=False):
            text = str(int(mb))
            if (s1 - s0) / px < 6.5 * len(text) + 4 or placed >= MAX_LABELS:
                continue
            ax.text((s0 + s1) / 2, y0 + h / 2, text, ha="center", va="center", fontsize=7,
                    color=text_colour_on(phase_colour(str(phase))))
            placed += 1
            out.append((int(rank), str(phase), int(mb)))
    return out
