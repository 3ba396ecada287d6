"""``gantt.png``: what every simulated GPU does during one iteration.

One lane group per simulated GPU, ordered by pipeline stage: a thick lane for the compute
stream (forward, backward, recompute, weight gradient, optimizer; idle time hatched grey)
and a thin lane beneath it for each communication stream (tp, cp, dp, pp-fwd, pp-bwd).
Bars are coloured by phase (see :mod:`simcluster.reporting.style`); runs of compute bars
belonging to one microbatch carry its number where there is room. Each lane/colour pair is
one ``broken_barh`` artist, so 100k intervals draw in a few seconds.

With more than :data:`MAX_LANES` simulated GPUs a representative subset is drawn: one GPU
of every stage when they fit (first and last stage always), evenly spaced otherwise; the
title says so.
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

    Columns: phase, microbatch, and ``start_s``/``end_s`` of the run's widest bar (labels go
    there, not into a gap between bars).
    """
    rows = rows[rows["microbatch"] >= 0].sort_values(["start_s", "end_s"], kind="mergesort")
    cols = ["phase", "microbatch", "start_s", "end_s"]
    if rows.empty:
        return rows.iloc[0:0][cols]
    key = rows["phase"].astype(str) + "#" + rows["microbatch"].astype(str)
    dur = (rows["end_s"] - rows["start_s"]).to_numpy()
    # near-equal widths count as equal so that the run's first bar wins ties
    rel = np.round(dur / dur.max(), 3) if dur.max() > 0 else dur
    rows = rows.assign(_block=(key != key.shift()).cumsum().to_numpy(), _dur=rel)
    widest = rows.sort_values(["_block", "_dur", "start_s"], ascending=[True, False, True], kind="mergesort")
    return widest.drop_duplicates("_block")[cols]


def _dominant_runs(rows: pd.DataFrame, t_end: float, n_px: int) -> list[tuple[str, list[tuple[float, float]]]]:
    """Per pixel column of one lane, the phase busy for most of it (if the lane is busy
    for at least half of it), as runs of (start, width) per phase."""
    edges = np.linspace(0.0, t_end, n_px + 1)
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


def draw_gantt(
    path: Path,
    timeline: pd.DataFrame,
    summary: dict | None = None,
    config: dict | None = None,
    details: dict | None = None,
) -> None:
    """Draw ``gantt.png`` at ``path`` (see the module docstring)."""
    t_end = iteration_end(timeline, summary)
    all_infos = rank_infos(timeline, details)
    infos = select_ranks(all_infos)
    g = gpu_rows(timeline)
    g = g[g["rank"].isin([i.rank for i in infos])] if len(g) else g
    streams: dict[int, list[str]] = {
        int(r): sorted(set(rows["stream"].astype(str)), key=stream_sort_key) for r, rows in g.groupby("rank", sort=True)
    }
    lanes, ticks, labels, seps = _layout(infos, streams)
    height_units = seps[-1] if seps else 1.0
    fig_h = float(np.clip(1.6 + 0.42 * height_units, 3.0, 40.0))
    fig, ax = plt.subplots(figsize=(FIG_W, fig_h))

    px_per_s = FIG_W * DPI * 0.72 / t_end  # the plot area is about 72 % of the figure's width

    # idle time on compute lanes
    for info in infos:
        rows = g[(g["rank"] == info.rank) & (g["stream"] == "compute")]
        s, e = merge_intervals(rows["start_s"].to_numpy(), rows["end_s"].to_numpy())
        gap_s = np.concatenate([[0.0], e])
        gap_e = np.concatenate([s, [t_end]])
        width = gap_e - gap_s
        y0, h = lanes[(info.rank, "compute")]
        wide = width * px_per_s >= 3.0  # a hatch in a gap a pixel or two wide only adds noise
        ax.broken_barh(list(zip(gap_s[wide], width[wide])), (y0, h), facecolors="white",
                       edgecolors=IDLE_EDGE, hatch=IDLE_HATCH, linewidth=0.0)
        narrow = (width > 0) & ~wide
        if narrow.any():
            ax.broken_barh(list(zip(gap_s[narrow], width[narrow])), (y0, h), facecolors="#e4e4e4", linewidth=0)

    # bars, one artist per (lane, phase); compute lanes whose bars are mostly narrower than
    # a pixel are drawn per pixel column in the phase that fills most of it, so a long run of
    # interleaved recompute and backward shows both instead of whichever was drawn last
    phases_seen: set[str] = set()
    n_px = int(FIG_W * DPI * 0.72)
    dense: set[int] = set()
    for rank, rows in g[g["stream"] == "compute"].groupby("rank", sort=True) if len(g) else []:
        mean_px = float((rows["end_s"] - rows["start_s"]).mean()) * px_per_s
        if mean_px < 2.0:
            dense.add(int(rank))
            lane = lanes[(int(rank), "compute")]
            for phase, runs in _dominant_runs(rows, t_end, n_px):
                phases_seen.add(phase)
                ax.broken_barh(runs, lane, facecolors=phase_colour(phase), edgecolors="none", linewidth=0)
    for (rank, stream, phase), rows in g.groupby(["rank", "stream", "phase"], sort=True):
        lane = lanes.get((int(rank), str(stream)))
        if lane is None or (stream == "compute" and int(rank) in dense):
            continue
        phases_seen.add(str(phase))
        # at least ~1 pixel wide, so that short collectives stay visible on a long iteration
        dur = np.maximum((rows["end_s"] - rows["start_s"]).to_numpy(), 1.0 / px_per_s)
        ax.broken_barh(list(zip(rows["start_s"].to_numpy(), dur)), lane, facecolors=phase_colour(str(phase)),
                       edgecolors="none", linewidth=0)

    # microbatch numbers where they fit
    comp = g[(g["stream"] == "compute") & g["phase"].isin(COMPUTE_PHASES)] if len(g) else g
    blocks = [(r, _microbatch_blocks(rows)) for r, rows in comp.groupby("rank", sort=True)] if len(comp) else []
    n_blocks = sum(len(b) for _, b in blocks)
    if 0 < n_blocks <= MAX_LABELS * 4:
        placed = 0
        for rank, b in blocks:
            y0, h = lanes[(int(rank), "compute")]
            for phase, mb, s0, s1 in b[["phase", "microbatch", "start_s", "end_s"]].itertuples(index=False):
                text = str(int(mb))
                if (s1 - s0) * px_per_s < 6.5 * len(text) + 4 or placed >= MAX_LABELS:
                    continue
                ax.text((s0 + s1) / 2, y0 + h / 2, text, ha="center", va="center", fontsize=7,
                        color=text_colour_on(phase_colour(str(phase))))
                placed += 1

    ax.set_ylim(height_units, -0.2)
    ax.set_xlim(0, t_end)
    ax.axvline(t_end, color="black", lw=0.8, ls="--")
    for y in seps[:-1]:
        ax.axhline(y, color="#444444", lw=0.6)
    ax.set_yticks(ticks)
    ax.set_yticklabels([lab for lab, _ in labels])
    for tick, (_, major) in zip(ax.get_yticklabels(), labels):
        tick.set_fontsize(8 if major else 6.5)
        tick.set_color("black" if major else "#555555")
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel("time (s)")
    ax.grid(axis="x", alpha=0.25)
    ax.set_axisbelow(True)

    title = f"{workload_name(config, summary)}: one iteration ({t_end:.4g} s) on {len(all_infos)} simulated GPUs"
    if len(infos) < len(all_infos):
        title += f"\nshowing {len(infos)} of {len(all_infos)}: first and last stage and evenly spaced GPUs between"
    ax.set_title(title, fontsize=11)

    order = [p for p in PHASE_STYLE if p in phases_seen] + sorted(phases_seen - set(PHASE_STYLE))
    handles = [Patch(facecolor=phase_colour(p), label=phase_label(p)) for p in order]
    handles.append(Patch(facecolor="white", edgecolor=IDLE_EDGE, hatch=IDLE_HATCH, label="idle (compute)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False,
              title="phase", title_fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)
