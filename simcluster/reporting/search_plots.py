"""Plots of a layout search (``ranking.csv`` as a DataFrame).

``agreement.png``: the analytical estimate of the objective against the simulated one, one
dot per simulated candidate (red crosses: the simulator says it does not fit), the line
y = x, Spearman's rank correlation in the title. ``pareto.png`` (when ``--gpus`` is a range):
the objective against GPU count: tier 1's best estimate at every GPU count (grey line),
every simulated layout (dots), and the simulated Pareto front (no layout on fewer GPUs does
better) as a step line.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

from simcluster.reporting.sweep_plots import BEST_COLOUR, FITS_COLOUR, OOM_COLOUR  # noqa: E402

LABELS = {"tokens_per_s": "tokens/s", "tokens_per_dollar": "tokens per dollar"}


def _fits(table: pd.DataFrame) -> pd.Series:
    return table["fits_in_memory"].astype("boolean").fillna(False).astype(bool)


def plot_agreement(table: pd.DataFrame, metric: str, path: Path, rho: float) -> Path | None:
    """Estimated vs simulated ``metric`` of the simulated candidates."""
    rows = table[(table["status"] == "ok") & (table["role"] == "candidate")]
    if rows.empty:
        return None
    est = pd.to_numeric(rows[f"est_{metric}"], errors="coerce")
    sim = pd.to_numeric(rows[metric], errors="coerce")
    ok = _fits(rows)
    fig, ax = plt.subplots(figsize=(6.2, 5.2), dpi=110)
    ax.scatter(est[ok], sim[ok], s=22, color=FITS_COLOUR, label="simulated layout", zorder=3)
    if (~ok).any():
        ax.scatter(est[~ok], sim[~ok], s=30, marker="x", color=OOM_COLOUR, label="does not fit (simulator)", zorder=3)
    lo = min(est.min(), sim.min())
    hi = max(est.max(), sim.max())
    pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#888888", lw=1, ls="--", label="y = x", zorder=1)
    best = sim[ok].idxmax() if ok.any() else None
    if best is not None:
        ax.scatter([est[best]], [sim[best]], s=90, facecolors="none", edgecolors=BEST_COLOUR, lw=1.5,
                   label="best (simulated)", zorder=4)
    label = LABELS.get(metric, metric)
    ax.set_xlabel(f"{label}, analytical estimate")
    ax.set_ylabel(f"{label}, simulated")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    title = "analytical vs simulated"
    if math.isfinite(rho):
        title += f" (Spearman {rho:.2f}, {len(rows)} layouts)"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_pareto(table: pd.DataFrame, front: pd.DataFrame, metric: str, path: Path) -> Path | None:
    """``metric`` against GPU count: tier 1's best per count, simulated layouts, the simulated front."""
    rows = table[(table["status"] == "ok")]
    fig, ax = plt.subplots(figsize=(7.0, 4.6), dpi=110)
    if not front.empty:
        front = front.sort_values("gpus")
        ax.plot(front["gpus"], front["score"], color="#9a9a9a", lw=1, marker=".", ms=3,
                label="best analytical estimate per GPU count", zorder=1)
    if not rows.empty:
        gpus = pd.to_numeric(rows["num_gpus"], errors="coerce")
        sim = pd.to_numeric(rows[metric], errors="coerce")
        ok = _fits(rows)
        ax.scatter(gpus[ok], sim[ok], s=20, color=FITS_COLOUR, label="simulated layout", zorder=3)
        pts = sorted(zip(gpus[ok], sim[ok]))
        xs, ys, best = [], [], -math.inf
        for g, v in pts:
            if v > best:
                xs.append(g)
                ys.append(v)
                best = v
        if xs:
            ax.step(xs, ys, where="post", color=BEST_COLOUR, lw=1.5, label="Pareto front (simulated)", zorder=2)
    ax.set_xlabel("GPUs")
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_title(f"{LABELS.get(metric, metric)} against GPU count", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
