"""Shared look and small helpers for every report: the phase palette, stream order, rank lanes.

The palette is colour-blind friendly (Okabe & Ito, "Color Universal Design", 2008, plus
Paul Tol's "muted" scheme for the communication family): forward work is blue, backward
work is vermillion/orange, communication is a purple/olive/teal family, the optimizer
is green and idle time is a grey hatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

# phase -> (colour, legend label); the order is the legend order.
PHASE_STYLE: dict[str, tuple[str, str]] = {
    "forward": ("#0072B2", "forward"),
    "recompute": ("#56B4E9", "recompute (forward again)"),
    "backward": ("#D55E00", "backward"),
    "weight_grad": ("#E69F00", "weight gradient"),
    "optimizer": ("#009E73", "optimizer step"),
    "tp_comm": ("#AA4499", "TP collective"),
    "dp_comm": ("#882255", "DP collective"),
    "pp_comm": ("#999933", "pipeline send/recv"),
    "zero_comm": ("#44AA99", "ZeRO gather/scatter"),
    "cp_comm": ("#332288", "context-parallel ring"),
    "ep_comm": ("#117733", "expert all-to-all"),  # Tol muted green: MoE dispatch and combine
    "imbalance": ("#DDCC77", "waiting for the slowest expert (MoE imbalance)"),  # Tol muted sand
    "host": ("#BBBBBB", "host work, GPU idle (Python loops, data loading)"),  # Tol bright grey: not a kernel
}
UNKNOWN_COLOUR = "#777777"
IDLE_HATCH = "////"
IDLE_EDGE = "#a0a0a0"

# per-stage breakdown component -> (colour, label, hatch)
BREAKDOWN_STYLE: dict[str, tuple[str, str, str]] = {
    "compute": ("#0072B2", "compute", ""),
    "recompute": ("#56B4E9", "recompute", ""),
    "exposed_tp_comm": ("#AA4499", "exposed TP comm", ""),
    "exposed_dp_comm": ("#882255", "exposed DP comm", ""),
    "exposed_pp_comm": ("#999933", "exposed pipeline comm", ""),
    "exposed_ep_comm": ("#117733", "exposed expert all-to-all", ""),
    "moe_imbalance": ("#DDCC77", "MoE imbalance (slowest expert)", ""),
    "host_wait": ("#BBBBBB", "host wait (GPU idle)", ""),
    "bubble": ("#ffffff", "pipeline bubble (idle)", IDLE_HATCH),
    "optimizer": ("#009E73", "optimizer", ""),
}

# GPU streams in lane order; unknown streams follow, sorted by name.
STREAM_ORDER = ("compute", "tp", "cp", "ep", "dp", "pp-fwd", "pp-bwd")

# Colours for link classes (utilization plot).
LINK_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


def phase_colour(phase: str) -> str:
    """The colour of a phase (grey for phases the palette does not know)."""
    return PHASE_STYLE.get(phase, (UNKNOWN_COLOUR, phase))[0]


def phase_label(phase: str) -> str:
    """The legend label of a phase."""
    return PHASE_STYLE.get(phase, (UNKNOWN_COLOUR, phase))[1]


def text_colour_on(colour: str) -> str:
    """Black or white, whichever reads better on ``colour`` (``#rrggbb``)."""
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"


def stream_sort_key(stream: str) -> tuple[int, str]:
    """Sort key putting streams in :data:`STREAM_ORDER`, unknown ones after."""
    try:
        return (STREAM_ORDER.index(stream), stream)
    except ValueError:
        return (len(STREAM_ORDER), stream)


@dataclass(frozen=True)
class RankInfo:
    """A simulated GPU as reports show it."""

    rank: int
    stage: int
    represents: int
    label: str


def gpu_rows(timeline: pd.DataFrame) -> pd.DataFrame:
    """The timeline's GPU rows (rank >= 0)."""
    if timeline.empty or "rank" not in timeline:
        return timeline.iloc[0:0]
    return timeline[timeline["rank"] >= 0]


def text_mask(col: pd.Series, test: Callable[[str], bool]) -> np.ndarray:
    """``test`` applied to a text column, once per distinct value when it is categorical."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        hit = np.array([bool(test(str(c))) for c in col.cat.categories] + [False])
        return hit[col.cat.codes.to_numpy()]  # code -1 (missing) reads the trailing False
    return np.array([bool(test(str(v))) for v in col.to_numpy()], dtype=bool)


def link_rows(timeline: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """The timeline's link rows (resource ``link:<name>``), all columns or only ``columns``."""
    if timeline.empty or "resource" not in timeline:
        return timeline.iloc[0:0]
    mask = text_mask(timeline["resource"], lambda v: v.startswith("link:"))
    return timeline.loc[mask, columns] if columns is not None else timeline[mask]


def rank_infos(timeline: pd.DataFrame, details: dict | None) -> list[RankInfo]:
    """Every simulated GPU, ordered by (stage, rank).

    Uses ``details["ranks"]`` where given; ranks only the timeline knows get their
    stage from their most frequent non-negative ``stage`` label.
    """
    given: dict[int, RankInfo] = {}
    for r in (details or {}).get("ranks") or []:
        try:
            rank = int(r["rank"])
        except (KeyError, TypeError, ValueError):
            continue
        stage = int(r.get("stage", -1) if r.get("stage") is not None else -1)
        rep = int(r.get("represents") or 1)
        label = str(r.get("label") or _default_label(rank, stage, rep))
        given[rank] = RankInfo(rank, stage, rep, label)
    if timeline.empty or "rank" not in timeline:
        return sorted(given.values(), key=lambda i: (i.stage, i.rank))
    ranks = timeline["rank"].to_numpy()
    missing = [int(r) for r in np.unique(ranks[ranks >= 0]) if int(r) not in given]
    for rank in missing:
        rows = timeline[ranks == rank]
        stages = rows["stage"][rows["stage"] >= 0] if "stage" in rows else pd.Series([], dtype=int)
        stage = int(stages.value_counts().sort_index().idxmax()) if len(stages) else -1
        given[rank] = RankInfo(rank, stage, 1, _default_label(rank, stage, 1))
    return sorted(given.values(), key=lambda i: (i.stage, i.rank))


def _default_label(rank: int, stage: int, represents: int) -> str:
    """A label for a rank the details do not describe."""
    s = f"GPU {rank}" if stage < 0 else f"stage {stage}, GPU {rank}"
    return s if represents <= 1 else f"{s} (×{represents})"


def iteration_end(timeline: pd.DataFrame, summary: dict | None) -> float:
    """The iteration's length: ``summary["iteration_time_s"]`` or the last interval's end."""
    t = (summary or {}).get("iteration_time_s")
    last = float(timeline["end_s"].max()) if len(timeline) and "end_s" in timeline else 0.0
    try:
        t = float(t)
    except (TypeError, ValueError):
        t = 0.0
    if not t > 0 or t != t:  # missing, zero or NaN
        t = last
    return max(t, last) if last > 0 else (t if t > 0 else 1.0)


def workload_name(config: dict | None, summary: dict | None = None) -> str:
    """The run's name for titles."""
    name = (config or {}).get("name") or (summary or {}).get("name") or "simcluster run"
    return str(name)

# per-GPU memory component -> (colour, label); stacking order
MEMORY_STYLE: dict[str, tuple[str, str]] = {
    "weights": ("#0072B2", "weights"),
    "gradients": ("#D55E00", "gradients"),
    "optimizer_states": ("#009E73", "optimizer states"),
    "activations": ("#E69F00", "activations"),
    "buffers": ("#999999", "buffers and workspace"),
}
CAPACITY_COLOUR = "#C0392B"
STAGE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C564B")

# communication class (simcluster.reporting.shares) -> (colour, label)
COMM_STYLE: dict[str, tuple[str, str]] = {
    "tp": ("#AA4499", "TP collective"),
    "cp": ("#332288", "context-parallel ring"),
    "ep": ("#117733", "expert all-to-all (MoE dispatch/combine)"),
    "pp": ("#999933", "pipeline send/recv"),
    "embedding": ("#CC6677", "tied-embedding sync"),
    "zero": ("#44AA99", "ZeRO gather/scatter"),
    "dp": ("#882255", "DP gradient reduction"),
    "other": ("#777777", "other communication"),
}
BUBBLE_COLOUR = "#e6e6e6"
OTHER_COMPUTE_COLOUR = "#5a5a5a"


def mix(colour: str, towards: str = "#ffffff", amount: float = 0.5) -> str:
    """``colour`` moved ``amount`` of the way to ``towards`` (both ``#rrggbb``)."""
    a = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    b = [int(towards[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * amount):02x}" for x, y in zip(a, b))


def state_style(state: str) -> tuple[str, str]:
    """Colour and legend label of a state of :mod:`simcluster.reporting.shares` (every state's
    colour is distinct, so a drawn chart can be measured by colour)."""
    if state in PHASE_STYLE:
        return PHASE_STYLE[state]
    if state == "other_compute":
        return OTHER_COMPUTE_COLOUR, "other compute"
    if state == "bubble":
        return BUBBLE_COLOUR, "pipeline bubble (waiting for another stage)"
    if state.startswith("wait_"):
        colour, label = COMM_STYLE[state[5:]]
        return mix(colour, amount=0.62), f"waiting on {label}"
    cls, how = state.rsplit("_", 1)
    colour, label = COMM_STYLE[cls]
    if how == "exposed":
        return colour, f"{label}, exposed"
    return mix(colour, amount=0.8), f"{label}, overlapped"


def time_unit(span_s: float) -> tuple[float, str]:
    """``(factor, unit)`` to show times of about ``span_s`` seconds: µs, ms or s."""
    span_s = abs(span_s)
    if span_s < 2e-3:
        return 1e6, "µs"
    if span_s < 2.0:
        return 1e3, "ms"
    return 1.0, "s"


def time_axis(axis: object, span_s: float) -> str:
    """Label the ticks of a matplotlib axis holding seconds in the unit :func:`time_unit` picks;
    returns the unit."""
    from matplotlib.ticker import FuncFormatter

    factor, unit = time_unit(span_s)
    axis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x * factor:g}"))  # type: ignore[attr-defined]
    return unit



def add_boxes(ax: object, x0: object, x1: object, y0: object, y1: object, colour: str, edge: str = "none",
              linewidth: float = 0.0, zorder: float = 2) -> None:
    """Draw the rectangles ``[x0, x1] × [y0, y1]`` (arrays, or scalars for y) as one compound
    path: one artist however many boxes (``broken_barh`` makes one path per box)."""
    import numpy as np
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MplPath

    xa, xb = np.asarray(x0, float), np.asarray(x1, float)
    n = len(xa)
    if n == 0:
        return
    ya, yb = np.broadcast_to(np.asarray(y0, float), (n,)), np.broadcast_to(np.asarray(y1, float), (n,))
    verts = np.empty((n, 5, 2))
    verts[:, 0] = np.c_[xa, ya]
    verts[:, 1] = np.c_[xb, ya]
    verts[:, 2] = np.c_[xb, yb]
    verts[:, 3] = np.c_[xa, yb]
    verts[:, 4] = verts[:, 0]
    codes = np.tile(np.array([MplPath.MOVETO, MplPath.LINETO, MplPath.LINETO, MplPath.LINETO, MplPath.CLOSEPOLY],
                             dtype=MplPath.code_type), n)
    patch = PathPatch(MplPath(verts.reshape(-1, 2), codes), facecolor=colour, edgecolor=edge, linewidth=linewidth,
                      zorder=zorder)
    # add_artist, not add_patch: the caller sets the limits, and updating them walks every box
    ax.add_artist(patch)  # type: ignore[attr-defined]
    patch.set_clip_path(ax.patch)  # type: ignore[attr-defined]


def panel_grid(heights: list[float], width: float = 13.0, left: float = 1.9, side: float = 2.4,
               gap: float = 0.85, top: float = 0.55, bottom: float = 0.15, dpi: float = 110) -> tuple:
    """A figure of stacked panels with fixed margins (inches): ``(fig, axes, sides)``, a main
    axes and a side axes (for legends and colour bars, axis off) per panel.

    Fixed margins instead of constrained layout: laying out a tall figure of several panels
    that way measures every text twice and costs about half a second.
    """
    import matplotlib.pyplot as plt

    total = top + bottom + sum(heights) + gap * len(heights)
    fig = plt.figure(figsize=(width, total), dpi=dpi)
    axes, sides = [], []
    y = total - top
    main_w = width - left - side - 0.25
    for h in heights:
        y -= h
        axes.append(fig.add_axes((left / width, y / total, main_w / width, h / total)))
        sd = fig.add_axes(((left + main_w + 0.2) / width, y / total, (side - 0.1) / width, h / total))
        sd.axis("off")
        sides.append(sd)
        y -= gap
    return fig, axes, sides


def hbar_axes(ax: object, labels: list[str], xlabel: str, title: str, fontsize: float = 8) -> None:
    """The look of a chart of horizontal bars, one per label, top to bottom: ticks, grid, title."""
    ax.set_yticks(range(len(labels)))  # type: ignore[attr-defined]
    ax.set_yticklabels(labels, fontsize=fontsize)  # type: ignore[attr-defined]
    ax.set_ylim(len(labels) - 0.5, -0.5)  # type: ignore[attr-defined]
    ax.set_xlabel(xlabel)  # type: ignore[attr-defined]
    ax.grid(axis="x", alpha=0.3)  # type: ignore[attr-defined]
    ax.set_axisbelow(True)  # type: ignore[attr-defined]
    ax.set_title(title, loc="left", fontsize=10)  # type: ignore[attr-defined]
