"""Where each pipeline stage's iteration goes, and the bubble against its closed form.

:func:`draw_breakdown` draws ``details["breakdown"]`` (compute, recompute, exposed TP / DP /
pipeline communication, bubble, optimizer: they add up to the iteration time) as one stacked
bar per stage up to :data:`MANY` stages, as a stacked area over the stage index beyond.
:func:`draw_bubble` draws each stage's bubble share beside the summary's mean and the
theoretical bubble of the schedule (:func:`simcluster.reporting.theory.theoretical_bubble`).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from simcluster.reporting.style import BREAKDOWN_STYLE, IDLE_EDGE, time_axis  # noqa: E402
from simcluster.reporting.theory import theoretical_bubble  # noqa: E402

MANY = 16


def _rows(breakdown: list[dict]) -> list[dict]:
    return sorted((b for b in breakdown if isinstance(b, dict)), key=lambda b: int(b.get("stage", 0) or 0))


def _components(rows: list[dict]) -> list[str]:
    keys = [k for k in BREAKDOWN_STYLE if any(float(b.get(k) or 0) > 0 for b in rows)]
    extra = sorted({k for b in rows for k in b if k not in BREAKDOWN_STYLE and k not in ("stage", "rank")
                    and isinstance(b.get(k), (int, float)) and b.get(k) > 0})
    return keys + extra


def draw_breakdown(ax: plt.Axes, side: plt.Axes, breakdown: list[dict], summary: dict | None,
                   letter: str = "d") -> None:
    """Stacked bars (few stages) or a stacked area (many) of each stage's iteration time."""
    rows = _rows(breakdown)
    keys = _components(rows)
    stages = np.array([int(b.get("stage", i) or 0) for i, b in enumerate(rows)])
    values = {k: np.array([float(b.get(k) or 0) for b in rows]) for k in keys}
    total = sum(values.values()) if values else np.zeros(len(rows))
    handles = []
    t = (summary or {}).get("iteration_time_s")
    t = float(t) if isinstance(t, (int, float)) and t > 0 else float(np.max(total, initial=1.0))
    if len(rows) <= MANY:
        y = np.arange(len(rows))
        left = np.zeros(len(rows))
        for k in keys:
            colour, label, hatch = BREAKDOWN_STYLE.get(k, ("#bbbbbb", k.replace("_", " "), ""))
            ax.barh(y, values[k], left=left, color=colour, hatch=hatch, edgecolor=IDLE_EDGE if hatch else "white",
                    linewidth=0.5, height=0.7)
            handles.append(Patch(facecolor=colour, hatch=hatch, edgecolor=IDLE_EDGE if hatch else colour, label=label))
            left += values[k]
        ax.set_yticks(y)
        ax.set_yticklabels([f"stage {s}" for s in stages], fontsize=8)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.axvline(t, color="black", ls="--", lw=0.8)
        ax.set_xlim(0, max(t, float(np.max(total, initial=0.0))) * 1.02)
        unit = time_axis(ax.xaxis, t)
        ax.set_xlabel(f"time ({unit})")
    else:
        base = np.zeros(len(rows))
        for k in keys:
            colour, label, hatch = BREAKDOWN_STYLE.get(k, ("#bbbbbb", k.replace("_", " "), ""))
            ax.fill_between(stages, base, base + values[k], step="mid", facecolor=colour, hatch=hatch,
                            edgecolor=IDLE_EDGE if hatch else colour, linewidth=0.0)
            handles.append(Patch(facecolor=colour, hatch=hatch, edgecolor=IDLE_EDGE if hatch else colour, label=label))
            base = base + values[k]
        ax.axhline(t, color="black", ls="--", lw=0.8)
        ax.set_xlim(stages.min() - 0.5, stages.max() + 0.5)
        ax.set_ylim(0, max(t, float(base.max(initial=0.0))) * 1.05)
        unit = time_axis(ax.yaxis, t)
        ax.set_ylabel(f"time ({unit})")
        ax.set_xlabel("pipeline stage")
    handles.append(Line2D([], [], color="black", ls="--", lw=0.8, label="iteration time"))
    side.legend(handles=handles, fontsize=8, loc="upper left", frameon=False)
    how = "one bar per stage" if len(rows) <= MANY else f"{len(rows)} stages as a stacked area"
    ax.set_title(f"({letter}) where each stage's iteration time goes ({how})", loc="left", fontsize=10)


def draw_bubble(ax: plt.Axes, side: plt.Axes, breakdown: list[dict], summary: dict | None,
                config: dict | None, letter: str = "e") -> None:
    """Each stage's bubble share, the mean over stages and the closed form."""
    rows = _rows(breakdown)
    stages = np.array([int(b.get("stage", i) or 0) for i, b in enumerate(rows)])
    total = np.array([sum(float(b.get(k) or 0) for k in _components(rows)) for b in rows])
    bubble = np.array([float(b.get("bubble") or 0) for b in rows])
    share = np.where(total > 0, bubble / np.where(total > 0, total, 1.0), 0.0) * 100
    colour = "#777777"
    if len(rows) <= MANY:
        ax.bar(stages, share, color="#cccccc", edgecolor=IDLE_EDGE, hatch="////", width=0.7)
    else:
        ax.plot(stages, share, color=colour, lw=1.2, marker="." if len(rows) <= 128 else None)
    handles: list = [Patch(facecolor="#cccccc", edgecolor=IDLE_EDGE, hatch="////", label="simulated, per stage")]
    mean = (summary or {}).get("bubble_fraction")
    if isinstance(mean, (int, float)):
        ax.axhline(mean * 100, color="black", lw=1.0)
        handles.append(Line2D([], [], color="black", lw=1.0, label=f"simulated mean {mean:.1%}"))
    theory, formula = theoretical_bubble(config, summary)
    if theory is not None:
        ax.axhline(theory * 100, color="#C0392B", lw=1.2, ls="--")
        handles.append(Line2D([], [], color="#C0392B", lw=1.2, ls="--", label=f"theory {theory:.1%}"))
    ax.set_xlabel("pipeline stage")
    ax.set_ylabel("bubble (% of iteration)")
    ax.set_ylim(0, max(float(share.max(initial=0.0)), (theory or 0) * 100, 1.0) * 1.15)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"({letter}) pipeline bubble per stage against the closed form: {formula}", loc="left", fontsize=10)
    side.legend(handles=handles, fontsize=8, loc="upper left", frameon=False)
