"""``memory.png``: what each pipeline stage's GPUs hold, against the device's memory.

(a) One stacked bar per stage: weights, gradients, optimizer states, activations and
    buffers (``details["memory"]``, the memory model's peak figures), with the device's
    capacity (``summary["memory_capacity_bytes"]``) as a red line.
(b) Memory over the iteration for one GPU of each stage, derived from the timeline.

The curve in (b) is an approximation drawn from the schedule, not a measurement:
weights, gradients, optimizer states and buffers are held all the time; a microbatch's
activations grow in equal steps as each of its forward tasks ends and shrink in equal
steps as each of its backward (and weight-gradient) tasks ends. One microbatch's
activations are ``activations / peak microbatches in flight``, the peak counted on this
timeline, so the curve's highest point equals the memory model's figure. Recompute's
transient one-layer working set and allocator fragmentation are not drawn.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from simcluster.reporting.style import (  # noqa: E402
    CAPACITY_COLOUR,
    MEMORY_STYLE,
    STAGE_COLOURS,
    gpu_rows,
    iteration_end,
    rank_infos,
    workload_name,
)

GiB = 1024**3
STATIC = ("weights", "gradients", "optimizer_states", "buffers")
GROW, SHRINK = ("forward",), ("backward", "weight_grad")


def stage_memory(details: dict | None) -> list[dict]:
    """``details["memory"]`` sorted by stage, numbers as floats (missing ones 0)."""
    out = []
    for m in (details or {}).get("memory") or []:
        if isinstance(m, dict):
            row = {k: float(m.get(k) or 0.0) for k in MEMORY_STYLE}
            row["stage"] = int(m.get("stage", len(out)) or 0)
            row["total"] = float(m.get("total") or sum(row[k] for k in MEMORY_STYLE))
            out.append(row)
    return sorted(out, key=lambda m: m["stage"])


def activation_curve(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Activations held by one GPU over time, in microbatch-equivalents (see the module docstring).

    ``rows``: that GPU's compute-stream rows. Returns step-function points ``(t, held)``:
    ``held[i]`` applies from ``t[i]`` to ``t[i + 1]``.
    """
    rows = rows[(rows["microbatch"] >= 0) & rows["phase"].isin(GROW + SHRINK)]
    if rows.empty:
        return np.zeros(1), np.zeros(1)
    grow = rows["phase"].isin(GROW).to_numpy()
    mb = rows["microbatch"].to_numpy()
    n_grow = pd.Series(grow).groupby(mb).transform("sum").to_numpy()
    n_shrink = pd.Series(~grow).groupby(mb).transform("sum").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(grow, 1.0 / n_grow, -1.0 / np.where(n_shrink > 0, n_shrink, 1))
    delta[~grow & (n_grow == 0)] = 0.0  # a backward without forwards on this GPU frees nothing
    ends = rows["end_s"].to_numpy()
    order = np.lexsort((delta, ends))  # at equal times frees come before growth
    t, d = ends[order], delta[order]
    held = np.maximum(np.cumsum(d), 0.0)
    return np.concatenate([[0.0], t]), np.concatenate([[0.0], held])


def memory_over_time(timeline: pd.DataFrame, details: dict | None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per stage, one GPU's total memory over time ``(t, bytes)`` (a step function)."""
    mem = {m["stage"]: m for m in stage_memory(details)}
    g = gpu_rows(timeline)
    g = g[g["stream"] == "compute"] if len(g) else g
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for info in rank_infos(timeline, details):
        if info.stage in out or info.stage not in mem:
            continue
        t, held = activation_curve(g[g["rank"] == info.rank])
        peak = float(held.max())
        act = mem[info.stage]["activations"]
        per_mb = act / peak if peak > 0 else 0.0
        static = sum(mem[info.stage][k] for k in STATIC)
        out[info.stage] = (t, static + held * per_mb)
    return out


def draw_memory(
    path: Path,
    timeline: pd.DataFrame,
    summary: dict | None = None,
    config: dict | None = None,
    details: dict | None = None,
) -> None:
    """Draw ``memory.png`` at ``path`` (see the module docstring)."""
    mem = stage_memory(details)
    cap = (summary or {}).get("memory_capacity_bytes")
    cap = float(cap) if isinstance(cap, (int, float)) and not isinstance(cap, bool) and cap > 0 else None
    curves = memory_over_time(timeline, details) if mem else {}
    bar_h = max(1.8, 0.35 * len(mem) + 1.2)
    fig = plt.figure(figsize=(13, bar_h + 3.6 + 1.0), layout="constrained")
    gs = fig.add_gridspec(2, 2, height_ratios=[bar_h, 3.6], width_ratios=[1.0, 0.2])
    ax_bar, ax_t = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[1, 0])
    side_bar, side_t = fig.add_subplot(gs[0, 1]), fig.add_subplot(gs[1, 1])
    for sd in (side_bar, side_t):
        sd.axis("off")
    fig.suptitle(f"{workload_name(config, summary)}: memory per GPU", fontsize=13)
    if not mem:
        for ax in (ax_bar, ax_t):
            ax.text(0.5, 0.5, "no memory figures in details.json", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.savefig(path, dpi=110, metadata={"Software": None})
        plt.close(fig)
        return

    # (a) per-stage breakdown against capacity
    y = np.arange(len(mem))
    left = np.zeros(len(mem))
    handles = []
    for key, (colour, label) in MEMORY_STYLE.items():
        w = np.array([m[key] for m in mem]) / GiB
        ax_bar.barh(y, w, left=left, color=colour, height=0.7, edgecolor="white", linewidth=0.5)
        handles.append(Patch(facecolor=colour, label=label))
        left += w
    top = float(left.max())
    for yi, total in zip(y, left):
        share = f" ({total * GiB / cap:.0%} of capacity)" if cap else ""
        ax_bar.text(total, yi, f" {total:.2f} GiB{share}", va="center", ha="left", fontsize=8)
    if cap:
        ax_bar.axvline(cap / GiB, color=CAPACITY_COLOUR, lw=1.5, ls="--")
        handles.append(Line2D([], [], color=CAPACITY_COLOUR, lw=1.5, ls="--", label=f"device memory ({cap / GiB:.0f} GiB)"))
    ax_bar.set_xlim(0, max(top * 1.3, (cap / GiB) * 1.05 if cap else 0.0) or 1.0)
    ax_bar.set_yticks(y)
    ax_bar.set_yticklabels([f"stage {m['stage']}" for m in mem], fontsize=8)
    ax_bar.set_ylim(len(mem) - 0.5, -0.5)
    ax_bar.set_xlabel("memory per GPU (GiB)")
    ax_bar.grid(axis="x", alpha=0.3)
    ax_bar.set_axisbelow(True)
    ax_bar.set_title("(a) peak memory per GPU of each pipeline stage, by component", loc="left", fontsize=10)
    side_bar.legend(handles=handles, fontsize=8, loc="upper left", frameon=False)

    # (b) memory over time
    t_end = iteration_end(timeline, summary)
    handles = []
    peak = 0.0
    many = len(curves) > len(STAGE_COLOURS)  # then a colour ramp: neighbouring stages look alike
    ramp = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, max(len(curves), 1)))
    for k, (stage, (t, b)) in enumerate(sorted(curves.items())):
        colour = ramp[k] if many else STAGE_COLOURS[k]
        ax_t.step(np.append(t, t_end), np.append(b, b[-1]) / GiB, where="post", color=colour, lw=1.3)
        handles.append(Line2D([], [], color=colour, lw=1.3, label=f"stage {stage}"))
        peak = max(peak, float(b.max()))
    static_min = min((sum(m[k] for k in STATIC) for m in mem), default=0.0)
    ax_t.set_xlim(0, t_end)
    lo, hi = static_min / GiB, peak / GiB
    pad = max(hi - lo, hi * 0.02, 1e-3) * 0.1
    ax_t.set_ylim(max(0.0, lo - pad), hi + pad)
    if cap and cap / GiB <= hi + pad:
        ax_t.axhline(cap / GiB, color=CAPACITY_COLOUR, lw=1.5, ls="--")
        handles.append(Line2D([], [], color=CAPACITY_COLOUR, lw=1.5, ls="--", label="device memory"))
    elif cap:
        ax_t.text(0.995, 0.97, f"device memory {cap / GiB:.0f} GiB is above this range", transform=ax_t.transAxes,
                  ha="right", va="top", fontsize=8, color=CAPACITY_COLOUR)
    ax_t.set_xlabel("time since the iteration's start (s)")
    ax_t.set_ylabel("memory per GPU (GiB)")
    ax_t.grid(alpha=0.3)
    ax_t.set_title("(b) memory over the iteration, one GPU per stage (activations estimated from the schedule: "
                   "+ per forward, − per backward)", loc="left", fontsize=10)
    side_t.legend(handles=handles, fontsize=8, loc="upper left", frameon=False, title="one GPU of", title_fontsize=8, ncol=1 + len(handles) // 20)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
