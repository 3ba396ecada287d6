"""Shared look and small helpers for every report: the phase palette, stream order, rank lanes.

The palette is colour-blind friendly (Okabe & Ito, "Color Universal Design", 2008, plus
Paul Tol's "muted" scheme for the communication family): forward work is blue, backward
work is vermillion/orange, communication is a purple/olive/teal family, the optimizer
is green and idle time is a grey hatch.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    "bubble": ("#ffffff", "pipeline bubble (idle)", IDLE_HATCH),
    "optimizer": ("#009E73", "optimizer", ""),
}

# GPU streams in lane order; unknown streams follow, sorted by name.
STREAM_ORDER = ("compute", "tp", "cp", "dp", "pp-fwd", "pp-bwd")

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


def link_rows(timeline: pd.DataFrame) -> pd.DataFrame:
    """The timeline's link rows (resource ``link:<name>``)."""
    if timeline.empty or "resource" not in timeline:
        return timeline.iloc[0:0]
    return timeline[timeline["resource"].astype(str).str.startswith("link:")]


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
    g = gpu_rows(timeline)
    for rank, rows in g.groupby("rank", sort=True):
        rank = int(rank)
        if rank in given:
            continue
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
