"""``gantt.png``: what every simulated GPU does during one iteration, true at any scale.

One lane group per drawn GPU, ordered by pipeline stage: a tall lane for the compute
stream and a thin lane beneath it for each kind of communication it takes part in
(tensor parallel, context parallel, pipeline, data parallel). Every pixel column of a lane
is a stack: each state gets the share of the column's pixels that it fills of the
column's time (:mod:`simcluster.reporting.raster`), so a phase that takes 20 % of a stage's
time covers 20 % of its lane, however short its intervals are.

- Compute lane: forward, recompute, backward, weight gradient, optimizer; idle time
  coloured by what the next compute task waits on (a pale tint of that communication's
  colour: TP, context ring, pipeline, tied-embedding sync, ZeRO, DP reduction) or grey for
  the pipeline bubble (a neighbour's wave, nothing), attributed as the metrics' breakdown
  does (:mod:`simcluster.metrics.waits`), so the drawn areas are ``details.json``'s breakdown.
- Communication lanes, drawn by density: the darker part of a column is communication
  the compute stream waits for (exposed), the lighter part runs beside compute or inside
  a wait for something else (overlapped); the rest of the column is empty.

With more than :data:`MAX_LANES` simulated GPUs, a representative subset is drawn (first
and last stage, evenly spaced stages between; the title says so). ``window=(start, end)``
draws that part of the iteration only (:func:`simcluster.reporting.files.redraw` writes it
beside the full chart). :func:`draw_gantt` returns where it drew each lane, so a test can
measure the picture against the timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from simcluster.reporting.raster import allocate, hex_rgb, paint_to  # noqa: E402
from simcluster.reporting.shares import (  # noqa: E402
    COMPUTE_STATES,
    binned,
    LANES,
    gpu_arrays,
    lane_states,
    rank_segments,
)
from simcluster.reporting.style import (  # noqa: E402
    RankInfo,
    iteration_end,
    rank_infos,
    state_style,
    time_axis,
    time_unit,
    workload_name,
)

MAX_LANES = 16
DPI = 100
PLOT_W = 1200  # pixel columns of the time axis
LEFT, RIGHT, TOP, BOTTOM = 200, 300, 78, 62
COMPUTE_H, COMM_H, LANE_GAP, RANK_GAP, STAGE_GAP = 26, 10, 2, 10, 6
BACKGROUND = np.array([255, 255, 255], dtype=np.uint8)
LANE_NAMES = {"tp": "TP", "cp": "CP ring", "ep": "expert A2A", "pp": "pipeline", "dp": "DP / ZeRO", "other": "other comm"}


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
    chosen = _evenly(list(first_of_stage.values()), limit)
    if len(chosen) < limit:
        rest = [i for i in infos if i not in chosen]
        chosen += _evenly(rest, limit - len(chosen))
    return sorted(chosen, key=lambda i: (i.stage, i.rank))


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


@dataclass
class Lane:
    """Where one lane was drawn: pixel rows ``[top, top + height)`` of the PNG, its states
    (bottom of the stack first) and the pixels each state got per column."""

    rank: int
    lane: str  # "compute" or a key of shares.LANES
    top: int
    height: int
    states: tuple[str, ...]
    pixels: np.ndarray  # (states, columns)
    seconds: np.ndarray  # (states, columns): the exact time each state fills


@dataclass
class GanttDrawing:
    """What :func:`draw_gantt` drew: the plot area's columns ``[left, left + columns)``,
    the time span ``[t0, t1]`` they cover (``t1 - t0`` / columns seconds each) and each lane."""

    left: int
    columns: int
    t0: float
    t1: float
    lanes: list[Lane] = field(default_factory=list)
    ranks_drawn: int = 0
    ranks_total: int = 0

    @property
    def column_s(self) -> float:
        return (self.t1 - self.t0) / self.columns


def _lanes_of(infos: list[RankInfo], segs: dict) -> list[tuple[int, str, int]]:
    """``(rank, lane, height)`` top to bottom."""
    out = []
    for info in infos:
        out.append((info.rank, "compute", COMPUTE_H))
        seg = segs.get(info.rank)
        for lane in LANES:
            if seg is not None and lane in seg.lanes:
                out.append((info.rank, lane, COMM_H))
    return out


def draw_gantt(
    path: Path,
    timeline: pd.DataFrame,
    summary: dict | None = None,
    config: dict | None = None,
    details: dict | None = None,
    window: tuple[float, float] | None = None,
    gpu: object | None = None,
) -> GanttDrawing:
    """Draw the Gantt chart as a PNG at ``path`` (see the module docstring).

    ``window`` limits the time axis to ``(start, end)`` seconds; ``gpu`` may pass the
    timeline's :func:`simcluster.reporting.shares.gpu_arrays` when the caller has them.
    """
    t_iter = iteration_end(timeline, summary)
    t0, t1 = (0.0, t_iter) if window is None else (float(window[0]), min(float(window[1]), t_iter))
    if not t1 > t0:
        raise ValueError(f"window {window} lies outside the iteration (0 to {t_iter:.6g} s)")
    arrays = gpu if gpu is not None else gpu_arrays(timeline)
    all_infos = [i for i in rank_infos(timeline, details) if i.rank in arrays.spans] or rank_infos(timeline, details)
    infos = select_ranks(all_infos)
    edges = np.linspace(t0, t1, PLOT_W + 1)
    col = (t1 - t0) / PLOT_W
    segs = {i.rank: rank_segments(*arrays.of(i.rank), t0, min(t1, t_iter), arrays.waits_of(i.rank)) for i in infos}
    drawing = GanttDrawing(LEFT, PLOT_W, t0, t1, ranks_drawn=len(infos), ranks_total=len(all_infos))

    plan = _lanes_of(infos, segs)
    by_kind: dict[str, list[int]] = {}
    for k, (_, lane, _) in enumerate(plan):
        by_kind.setdefault(lane, []).append(k)
    pixels: dict[int, np.ndarray] = {}
    seconds: dict[int, np.ndarray] = {}
    for lane, ks in by_kind.items():
        states = COMPUTE_STATES if lane == "compute" else lane_states(lane)
        secs = np.zeros((len(ks), len(states), PLOT_W))
        for j, k in enumerate(ks):
            seg = segs[plan[k][0]]
            st = seg.compute if lane == "compute" else seg.lanes[lane]
            secs[j] = binned(seg.edges, st, len(states), edges)
        heights = np.array([plan[k][2] for k in ks])
        counts = allocate(secs / col, heights)
        for j, k in enumerate(ks):
            pixels[k], seconds[k] = counts[j], secs[j]

    # vertical layout in pixels, top to bottom
    tops, y, prev = [], 0, None
    for rank, lane, h in plan:
        info = next(i for i in infos if i.rank == rank)
        if lane == "compute" and prev is not None:
            y += RANK_GAP + (STAGE_GAP if info.stage != prev else 0)
        prev = info.stage if lane == "compute" else prev
        tops.append(y)
        y += h + LANE_GAP
    img_h = max(y, 1)
    img = np.empty((img_h, PLOT_W, 4), dtype=np.uint8)  # opaque RGBA: figimage draws it without converting
    img[:, :, :3] = BACKGROUND
    img[:, :, 3] = 255
    seen: set[str] = set()
    for k, (rank, lane, h) in enumerate(plan):
        states = COMPUTE_STATES if lane == "compute" else lane_states(lane)
        colours = np.array([hex_rgb(state_style(s)[0]) for s in states], dtype=np.uint8)
        bg = np.array(hex_rgb("#f7f7f7"), dtype=np.uint8) if lane != "compute" else BACKGROUND
        img[tops[k] : tops[k] + h, :, :3] = paint_to(pixels[k], colours, bg, h)
        seen.update(s for s, n in zip(states, pixels[k].sum(axis=1)) if n > 0)
        drawing.lanes.append(Lane(rank, lane, TOP + tops[k], h, tuple(states), pixels[k], seconds[k]))

    fig_w = LEFT + PLOT_W + RIGHT
    legend_h = 14 * (len(seen) + 3) + 10  # entries and group titles at 7.5 pt
    pad = max(0, legend_h - img_h)  # a short chart grows at the bottom to hold its legend
    fig_h = TOP + img_h + BOTTOM + pad
    fig = plt.figure(figsize=(fig_w / DPI, fig_h / DPI), dpi=DPI)
    fig.figimage(img, xo=LEFT, yo=BOTTOM + pad, origin="upper", resize=False)
    ax = fig.add_axes((LEFT / fig_w, (BOTTOM + pad) / fig_h, PLOT_W / fig_w, img_h / fig_h), facecolor="none")
    ax.set_xlim(t0, t1)
    ax.set_ylim(img_h, 0)
    ticks, labels, major = [], [], []
    for k, (rank, lane, h) in enumerate(plan):
        ticks.append(tops[k] + h / 2)
        info = next(i for i in infos if i.rank == rank)
        labels.append(info.label if lane == "compute" else LANE_NAMES[lane])
        major.append(lane == "compute")
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels)
    for tick, big in zip(ax.get_yticklabels(), major):
        tick.set_fontsize(8 if big else 6.5)
        tick.set_color("black" if big else "#555555")
    ax.tick_params(axis="y", length=0)
    for s in ("top", "right", "left"):
        ax.spines[s].set_visible(False)
    unit = time_axis(ax.xaxis, t1 - t0)
    ax.set_xlabel(f"time since the iteration's start ({unit})")
    if t0 < t_iter < t1:
        ax.axvline(t_iter, color="black", lw=0.8, ls="--")

    n = len(all_infos)
    gpus = f"{n} simulated GPU{'' if n == 1 else 's'}"
    title = f"{workload_name(config, summary)}: one iteration ({_fmt(t_iter)}) on {gpus}"
    if window is not None:
        title += f", window {_fmt(t0)} – {_fmt(t1)}"
    sub = f"each pixel column ({_fmt(col)}) stacked by the share of its time in each state"
    if len(infos) < len(all_infos):
        sub += f"; showing {len(infos)} of {len(all_infos)} GPUs (first and last stage, evenly spaced between)"
    fig.text(LEFT / fig_w, 1 - 22 / fig_h, title, fontsize=12, ha="left", va="center")
    fig.text(LEFT / fig_w, 1 - 44 / fig_h, sub, fontsize=8.5, ha="left", va="center", color="#444444")
    _legend(fig, ax, seen)
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return drawing


def _fmt(seconds: float) -> str:
    """A duration in the unit that suits it."""
    factor, unit = time_unit(seconds)
    return f"{seconds * factor:.4g} {unit}"


def _legend(fig: plt.Figure, ax: plt.Axes, seen: set[str]) -> None:
    """Grouped legend in the right margin: compute, idle by cause, communication lanes."""
    groups = (("compute stream", [s for s in COMPUTE_STATES if not s.startswith("wait_") and s != "bubble"]),
              ("compute idle, waiting on", [s for s in COMPUTE_STATES if s.startswith("wait_") or s == "bubble"]),
              ("communication lanes", [s for lane in LANES for s in lane_states(lane)]))
    handles: list[Patch] = []
    for title, states in groups:
        present = [s for s in states if s in seen]
        if not present:
            continue
        handles.append(Patch(visible=False, label=title))
        for s in present:
            colour, label = state_style(s)
            if title.startswith("compute idle"):
                label = label.replace("waiting on ", "")
            handles.append(Patch(facecolor=colour, edgecolor="#bbbbbb", linewidth=0.4, label=label))
    leg = ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5, frameon=False,
                    handlelength=1.4, borderaxespad=0.0)
    for text, h in zip(leg.get_texts(), handles):
        if not h.get_visible():
            text.set_fontweight("bold")
