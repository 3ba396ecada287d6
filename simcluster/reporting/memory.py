"""``memory.png``: what each pipeline stage's GPUs hold, against the device's memory.

Up to :data:`MANY` stages:

(a) one stacked bar per stage: weights, gradients, optimizer states, activations and
    buffers (``details["memory"]``, the memory model's peak figures), with the device's
    capacity (``summary["memory_capacity_bytes"]``) as a red line;
(b) memory over the iteration for one GPU of each stage, derived from the timeline.

Past :data:`MANY` stages the same figures are drawn so that they stay legible: (a) becomes a
stacked area over the stage index, (b) the minimum, median and maximum over the stages at
each instant with the peak stage's own curve, and (c) a heat map of every stage over time.

The curves are an approximation drawn from the schedule, not a measurement: weights,
gradients, optimizer states and buffers are held all the time; a microbatch's activations
grow in equal steps as each of its forward tasks ends and shrink in equal steps as each of
its backward (and weight-gradient) tasks ends. One microbatch's activations are
``activations / peak microbatches in flight``, the peak counted on this timeline, so a
curve's highest point equals the memory model's figure. Recompute's transient one-layer
working set and allocator fragmentation are not drawn.
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
    hbar_axes,
    iteration_end,
    panel_grid,
    rank_infos,
    time_axis,
    workload_name,
)

GiB = 1024**3
STATIC = ("weights", "gradients", "optimizer_states", "buffers")
GROW, SHRINK = ("forward",), ("backward", "weight_grad")
MANY = 16
BINS = 400


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


def activation_curves(timeline: pd.DataFrame, ranks: list[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Activations held by each of ``ranks`` over time, in microbatch-equivalents (see the module
    docstring): step functions ``(t, held)``, ``held[i]`` from ``t[i]`` to ``t[i + 1]``."""
    out = {r: (np.zeros(1), np.zeros(1)) for r in ranks}
    if timeline.empty:
        return out
    rank = timeline["rank"].to_numpy()
    sel = np.isin(rank, ranks) & (timeline["microbatch"].to_numpy() >= 0)
    sel &= (timeline["stream"] == "compute").to_numpy() & timeline["phase"].isin(GROW + SHRINK).to_numpy()
    if not sel.any():
        return out
    r, mb = rank[sel], timeline["microbatch"].to_numpy()[sel]
    grow = timeline["phase"].isin(GROW).to_numpy()[sel]
    ends = timeline["end_s"].to_numpy()[sel]
    key = np.unique(r * (int(mb.max()) + 1) + mb, return_inverse=True)[1].ravel()  # one key per (rank, microbatch)
    n_grow = np.bincount(key, weights=grow.astype(float))[key]
    n_shrink = np.bincount(key, weights=(~grow).astype(float))[key]
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(grow, 1.0 / n_grow, -1.0 / np.where(n_shrink > 0, n_shrink, 1))
    delta[~grow & (n_grow == 0)] = 0.0  # a backward without forwards on this GPU frees nothing
    order = np.lexsort((delta, ends, r))  # per rank; at equal times frees come before growth
    r, t, d = r[order], ends[order], delta[order]
    bounds = np.flatnonzero(np.diff(r)) + 1
    for a, b in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(r)]])):
        held = np.maximum(np.cumsum(d[a:b]), 0.0)
        out[int(r[a])] = np.concatenate([[0.0], t[a:b]]), np.concatenate([[0.0], held])
    return out


def activation_curve(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One GPU's activation curve from its compute-stream rows (see :func:`activation_curves`)."""
    rank = int(rows["rank"].iloc[0]) if len(rows) else 0
    return activation_curves(rows, [rank])[rank]


def memory_over_time(timeline: pd.DataFrame, details: dict | None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per stage, one GPU's total memory over time ``(t, bytes)`` (a step function)."""
    mem = {m["stage"]: m for m in stage_memory(details)}
    first: dict[int, int] = {}
    for info in rank_infos(timeline, details):
        if info.stage in mem:
            first.setdefault(info.stage, info.rank)
    acts = activation_curves(timeline, list(first.values()))
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for stage, rank in first.items():
        t, held = acts[rank]
        peak = float(held.max())
        per_mb = mem[stage]["activations"] / peak if peak > 0 else 0.0
        out[stage] = (t, sum(mem[stage][k] for k in STATIC) + held * per_mb)
    return out


def binned_max(t: np.ndarray, v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The highest value a step function ``(t, v)`` takes inside each bin."""
    idx = np.clip(np.searchsorted(t, edges[:-1], side="right") - 1, 0, len(v) - 1)  # value entering each bin
    out = v[idx].astype(float)
    inside = np.searchsorted(edges, t, side="right") - 1  # bin of each step
    ok = (inside >= 0) & (inside < len(out))
    np.maximum.at(out, inside[ok], v[ok])
    return out


def draw_memory(path: Path, timeline: pd.DataFrame, summary: dict | None = None, config: dict | None = None,
                details: dict | None = None) -> None:
    """Draw ``memory.png`` at ``path`` (see the module docstring)."""
    mem = stage_memory(details)
    cap = (summary or {}).get("memory_capacity_bytes")
    cap = float(cap) if isinstance(cap, (int, float)) and not isinstance(cap, bool) and cap > 0 else None
    curves = memory_over_time(timeline, details) if mem else {}
    many = len(mem) > MANY
    top_h = max(1.8, 0.35 * len(mem) + 1.2) if not many else 3.4
    heights = [top_h, 3.6] + ([max(2.4, min(6.0, 0.05 * len(mem) + 2.0))] if many else [])
    fig, axes, sides = panel_grid(heights)
    fig.suptitle(f"{workload_name(config, summary)}: memory per GPU", fontsize=13, y=1 - 0.15 / fig.get_figheight())
    if not mem:
        for ax in axes:
            ax.text(0.5, 0.5, "no memory figures in details.json", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
    else:
        (_stages_area if many else _stages_bars)(axes[0], sides[0], mem, cap)
        t_end = iteration_end(timeline, summary)
        if many:
            _envelope(axes[1], sides[1], curves, mem, cap, t_end)
            _heatmap(axes[2], sides[2], curves, cap, t_end, fig)
        else:
            _curves(axes[1], sides[1], curves, mem, cap, t_end)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def _stages_bars(ax: plt.Axes, side: plt.Axes, mem: list[dict], cap: float | None) -> None:
    """(a), few stages: one stacked bar per stage."""
    y = np.arange(len(mem))
    left = np.zeros(len(mem))
    handles = []
    for key, (colour, label) in MEMORY_STYLE.items():
        w = np.array([m[key] for m in mem]) / GiB
        ax.barh(y, w, left=left, color=colour, height=0.7, edgecolor="white", linewidth=0.5)
        handles.append(Patch(facecolor=colour, label=label))
        left += w
    for yi, total in zip(y, left):
        share = f" ({total * GiB / cap:.0%} of capacity)" if cap else ""
        ax.text(total, yi, f" {total:.2f} GiB{share}", va="center", ha="left", fontsize=8)
    if cap:
        ax.axvline(cap / GiB, color=CAPACITY_COLOUR, lw=1.5, ls="--")
        handles.append(Line2D([], [], color=CAPACITY_COLOUR, lw=1.5, ls="--", label=f"device memory ({cap / GiB:.0f} GiB)"))
    ax.set_xlim(0, max(float(left.max()) * 1.3, (cap / GiB) * 1.05 if cap else 0.0) or 1.0)
    hbar_axes(ax, [f"stage {m['stage']}" for m in mem], "memory per GPU (GiB)",
              "(a) peak memory per GPU of each pipeline stage, by component")
    side.legend(handles=handles, fontsize=8, loc="upper left", frameon=False)


def _stages_area(ax: plt.Axes, side: plt.Axes, mem: list[dict], cap: float | None) -> None:
    """(a), many stages: the components stacked over the stage index; the peak stage marked."""
    x = np.array([m["stage"] for m in mem])
    base = np.zeros(len(mem))
    handles = []
    for key, (colour, label) in MEMORY_STYLE.items():
        v = np.array([m[key] for m in mem]) / GiB
        ax.fill_between(x, base, base + v, step="mid", color=colour, linewidth=0)
        handles.append(Patch(facecolor=colour, label=label))
        base = base + v
    k = int(np.argmax(base))
    ax.annotate(f"peak: stage {x[k]}, {base[k]:.2f} GiB" + (f" ({base[k] * GiB / cap:.0%} of capacity)" if cap else ""),
                (x[k], base[k]), xytext=(8, 8), textcoords="offset points", fontsize=8,
                arrowprops={"arrowstyle": "-", "lw": 0.6})
    if cap:
        ax.axhline(cap / GiB, color=CAPACITY_COLOUR, lw=1.5, ls="--")
        handles.append(Line2D([], [], color=CAPACITY_COLOUR, lw=1.5, ls="--", label=f"device memory ({cap / GiB:.0f} GiB)"))
    ax.set_xlim(x.min() - 0.5, x.max() + 0.5)
    ax.set_ylim(0, max(float(base.max()) * 1.15, (cap / GiB) * 1.05 if cap else 0.0) or 1.0)
    ax.set_xlabel("pipeline stage")
    ax.set_ylabel("memory per GPU (GiB)")
    ax.grid(alpha=0.3)
    ax.set_title(f"(a) peak memory per GPU of each of the {len(mem)} pipeline stages, by component", loc="left",
                 fontsize=10)
    side.legend(handles=handles, fontsize=8, loc="upper left", frameon=False)


def _time_panel(ax: plt.Axes, t_end: float, lo: float, hi: float, cap: float | None, handles: list) -> None:
    """Shared look of the memory-over-time panels: limits, capacity line or note, labels."""
    ax.set_xlim(0, t_end)
    pad = max(hi - lo, hi * 0.02, 1e-3) * 0.1
    ax.set_ylim(max(0.0, lo - pad), hi + pad)
    if cap and cap / GiB <= hi + pad:
        ax.axhline(cap / GiB, color=CAPACITY_COLOUR, lw=1.5, ls="--")
        handles.append(Line2D([], [], color=CAPACITY_COLOUR, lw=1.5, ls="--", label="device memory"))
    elif cap:
        ax.text(0.995, 0.97, f"device memory {cap / GiB:.0f} GiB is above this range", transform=ax.transAxes,
                ha="right", va="top", fontsize=8, color=CAPACITY_COLOUR)
    unit = time_axis(ax.xaxis, t_end)
    ax.set_xlabel(f"time since the iteration's start ({unit})")
    ax.set_ylabel("memory per GPU (GiB)")
    ax.grid(alpha=0.3)


def _curves(ax: plt.Axes, side: plt.Axes, curves: dict, mem: list[dict], cap: float | None, t_end: float) -> None:
    """(b), few stages: one curve per stage."""
    handles: list = []
    peak = 0.0
    for k, (stage, (t, b)) in enumerate(sorted(curves.items())):
        colour = STAGE_COLOURS[k % len(STAGE_COLOURS)] if len(curves) <= len(STAGE_COLOURS) else \
            plt.get_cmap("viridis")(k / max(len(curves) - 1, 1) * 0.9)
        ax.step(np.append(t, t_end), np.append(b, b[-1]) / GiB, where="post", color=colour, lw=1.3)
        handles.append(Line2D([], [], color=colour, lw=1.3, label=f"stage {stage}"))
        peak = max(peak, float(b.max()))
    static_min = min((sum(m[k] for k in STATIC) for m in mem), default=0.0)
    _time_panel(ax, t_end, static_min / GiB, peak / GiB, cap, handles)
    ax.set_title("(b) memory over the iteration, one GPU per stage (activations estimated from the schedule: "
                 "+ per forward, − per backward)", loc="left", fontsize=10)
    side.legend(handles=handles, fontsize=8, loc="upper left", frameon=False, title="one GPU of", title_fontsize=8)


def _binned(curves: dict, t_end: float) -> tuple[np.ndarray, list[int], np.ndarray]:
    """``(edges, stages, GiB)``: each stage's highest memory in each of :data:`BINS` time bins."""
    edges = np.linspace(0.0, t_end, BINS + 1)
    stages = sorted(curves)
    mat = np.array([binned_max(curves[s][0], curves[s][1], edges) for s in stages]) / GiB
    return edges, stages, mat


def _envelope(ax: plt.Axes, side: plt.Axes, curves: dict, mem: list[dict], cap: float | None, t_end: float) -> None:
    """(b), many stages: min / median / max over the stages at each instant, the peak stage's curve."""
    edges, stages, mat = _binned(curves, t_end)
    x = edges[:-1]
    lo, med, hi = mat.min(axis=0), np.median(mat, axis=0), mat.max(axis=0)
    ax.fill_between(x, lo, hi, step="post", color="#0072B2", alpha=0.18, linewidth=0)
    ax.step(x, hi, where="post", color="#0072B2", lw=1.0)
    ax.step(x, lo, where="post", color="#0072B2", lw=1.0, ls=":")
    ax.step(x, med, where="post", color="#0072B2", lw=1.6)
    k = int(np.argmax(mat.max(axis=1)))
    t, b = curves[stages[k]]
    ax.step(np.append(t, t_end), np.append(b, b[-1]) / GiB, where="post", color="#D55E00", lw=1.0)
    handles: list = [Line2D([], [], color="#0072B2", lw=1.0, label="highest stage"),
                     Line2D([], [], color="#0072B2", lw=1.6, label="median stage"),
                     Line2D([], [], color="#0072B2", lw=1.0, ls=":", label="lowest stage"),
                     Line2D([], [], color="#D55E00", lw=1.0, label=f"stage {stages[k]} (the peak)")]
    _time_panel(ax, t_end, float(lo.min()), float(hi.max()), cap, handles)
    ax.set_title(f"(b) memory over the iteration across the {len(stages)} stages: highest, median and lowest "
                 f"at each instant ({BINS} bins)", loc="left", fontsize=10)
    side.legend(handles=handles, fontsize=8, loc="upper left", frameon=False)


def _heatmap(ax: plt.Axes, side: plt.Axes, curves: dict, cap: float | None, t_end: float, fig: plt.Figure) -> None:
    """(c), many stages: every stage's memory over time as a heat map."""
    edges, stages, mat = _binned(curves, t_end)
    im = ax.imshow(mat, aspect="auto", interpolation="nearest", cmap="magma",
                   extent=(0.0, t_end, len(stages) - 0.5, -0.5))
    step = max(1, int(np.ceil(len(stages) / 24)))
    ax.set_yticks(range(0, len(stages), step))
    ax.set_yticklabels([f"stage {stages[i]}" for i in range(0, len(stages), step)], fontsize=7)
    unit = time_axis(ax.xaxis, t_end)
    ax.set_xlabel(f"time since the iteration's start ({unit})")
    cb = fig.colorbar(im, cax=side.inset_axes((0.0, 0.0, 0.08, 1.0)))
    cb.set_label("GiB per GPU" + (f" (device: {cap / GiB:.0f})" if cap else ""))
    ax.set_title("(c) memory of every stage over the iteration (highest in each bin)", loc="left", fontsize=10)
