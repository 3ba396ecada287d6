"""Plots of a sweep's results table (``results.csv`` as a DataFrame).

``throughput.png``: the ranking metric (tokens/s by default) against each swept key, one
panel per key: every finished point as a dot (a red cross when it does not fit in
memory), a line through the best point that fits at each value, and the number of
invalid or failed points under each value. ``heatmap.png``: the best metric over the
first two swept keys (the best over any other keys), cells marked OOM when every layout
there ran out of memory, ``invalid`` or ``error`` when none ran, the best cell framed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from matplotlib.ticker import EngFormatter, PercentFormatter  # noqa: E402

from simcluster.reporting.style import text_colour_on  # noqa: E402

FITS_COLOUR = "#0072B2"
OOM_COLOUR = "#D55E00"
BEST_COLOUR = "#222222"
NONE_COLOUR = "#e6e6e6"
METRIC_LABELS = {
    "tokens_per_s": "tokens/s",
    "mfu": "MFU",
    "model_tflops_per_gpu": "model TFLOP/s per GPU",
    "iteration_time_s": "iteration time (s)",
}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def format_metric(metric: str, value: float) -> str:
    """A short label for a value of ``metric`` (``1.23M``, ``41.2%``, ``12.3 s``)."""
    if value is None or not math.isfinite(value):
        return "—"
    if metric == "mfu":
        return f"{value:.1%}"
    if metric == "iteration_time_s":
        return f"{value:.3g} s"
    text = EngFormatter(places=2, sep="")(value)  # three significant digits: 1.37M, 883k, 12.5k
    digits = len(text.split(".")[0].lstrip("-"))
    return EngFormatter(places=max(0, 3 - digits), sep="")(value)


def _formatter(metric: str):
    return PercentFormatter(1.0) if metric == "mfu" else EngFormatter(sep="")


def _categories(table: pd.DataFrame, key: str) -> list[Any]:
    """The values of ``key`` in the order they first appear (the sweep's order)."""
    return list(dict.fromkeys(table[key].tolist()))


def _fits(table: pd.DataFrame) -> pd.Series:
    return table["fits_in_memory"].astype("boolean").fillna(False).astype(bool)


def _ok(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    ok = table[table["status"] == "ok"].copy()
    ok["_metric"] = pd.to_numeric(ok[metric], errors="coerce")
    ok["_fits"] = _fits(ok)
    return ok[ok["_metric"].notna()]


def _best(values: pd.Series, larger_is_better: bool) -> float:
    return float(values.max() if larger_is_better else values.min())


def plot_throughput(table: pd.DataFrame, keys: list[str], metric: str, path: Path, title: str,
                    larger_is_better: bool = True) -> Path | None:
    """Draw ``throughput.png``; None (nothing drawn) when no key is swept or no point ran."""
    ok = _ok(table, metric)
    if not keys or ok.empty:
        return None
    ncols = min(len(keys), 3)
    nrows = math.ceil(len(keys) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.8 * ncols, 3.9 * nrows), squeeze=False, sharey=True)
    for ax, key in zip(axes.flat, keys):
        cats = _categories(table, key)
        pos = {c: i for i, c in enumerate(cats)}
        for cat, rows in ok.groupby(key, sort=False):
            rows = rows.sort_values("point")
            n = len(rows)
            offsets = np.linspace(-0.28, 0.28, n) if n > 1 else np.zeros(1)
            x = pos[cat] + offsets
            fits = rows["_fits"].to_numpy()
            ax.scatter(x[fits], rows["_metric"].to_numpy()[fits], s=18, color=FITS_COLOUR, alpha=0.65,
                       edgecolors="none", zorder=2)
            ax.scatter(x[~fits], rows["_metric"].to_numpy()[~fits], s=26, color=OOM_COLOUR, marker="x",
                       linewidths=1.2, zorder=2)
        best = [(pos[c], _best(r.loc[r["_fits"], "_metric"], larger_is_better))
                for c, r in ok.groupby(key, sort=False) if r["_fits"].any()]
        if best:
            best.sort()
            ax.plot([b[0] for b in best], [b[1] for b in best], "-o", color=BEST_COLOUR, lw=1.4, ms=4, zorder=3)
        labels = []
        for c in cats:
            rows = table[table[key] == c]
            bad = int((rows["status"] != "ok").sum())
            labels.append(f"{c}\n{bad} invalid/error" if bad else str(c))
        ax.set_xticks(range(len(cats)), labels=labels, fontsize=8)
        ax.set_xlim(-0.6, len(cats) - 0.4)
        ax.set_xlabel(key)
        ax.grid(axis="y", alpha=0.3)
        ax.yaxis.set_major_formatter(_formatter(metric))
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(metric_label(metric))
    handles = [
        plt.Line2D([], [], ls="", marker="o", color=FITS_COLOUR, alpha=0.65, label="fits in memory"),
        plt.Line2D([], [], ls="", marker="x", color=OOM_COLOUR, label="does not fit in memory"),
        plt.Line2D([], [], ls="-", marker="o", ms=4, color=BEST_COLOUR, label="best that fits"),
    ]
    fig.legend(handles=handles, loc="upper right", ncols=3, fontsize=8, frameon=False)
    fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _cell_states(table: pd.DataFrame, ok: pd.DataFrame, ky: str, kx: str, metric: str,
                 larger_is_better: bool) -> tuple[list, list, np.ndarray, list[list[str]]]:
    ys, xs = _categories(table, ky), _categories(table, kx)
    values = np.full((len(ys), len(xs)), np.nan)
    states = [["" for _ in xs] for _ in ys]
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            rows = table[(table[ky] == y) & (table[kx] == x)]
            ran = ok[(ok[ky] == y) & (ok[kx] == x)]
            fitting = ran[ran["_fits"]]
            if not fitting.empty:
                values[i, j] = _best(fitting["_metric"], larger_is_better)
            elif not ran.empty:
                states[i][j] = "OOM"
            elif (rows["status"] == "error").any():
                states[i][j] = "error"
            elif (rows["status"] == "invalid").any():
                states[i][j] = "invalid"
            else:
                states[i][j] = "—"
    return ys, xs, values, states


def plot_heatmap(table: pd.DataFrame, keys: list[str], metric: str, path: Path, title: str,
                 larger_is_better: bool = True) -> Path | None:
    """Draw ``heatmap.png`` over ``keys[0]`` (rows) × ``keys[1]`` (columns); None with fewer keys."""
    if len(keys) < 2 or table.empty:
        return None
    ky, kx = keys[0], keys[1]
    ok = _ok(table, metric)
    ys, xs, values, states = _cell_states(table, ok, ky, kx, metric, larger_is_better)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.15 * len(xs) + 2.6), max(3.2, 0.62 * len(ys) + 1.8)))
    cmap = plt.get_cmap("viridis" if larger_is_better else "viridis_r").with_extremes(bad=NONE_COLOUR)
    finite = values[np.isfinite(values)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin * 0.95 - 1e-12, vmax * 1.05 + 1e-12
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for i in range(len(ys)):
        for j in range(len(xs)):
            if np.isfinite(values[i, j]):
                colour = text_colour_on(to_hex(cmap(image.norm(values[i, j]))))
                ax.text(j, i, format_metric(metric, values[i, j]), ha="center", va="center", fontsize=8, color=colour)
            else:
                state = states[i][j]
                if state == "OOM":
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="#fbe3d6", edgecolor=OOM_COLOUR,
                                           hatch="xx", lw=0.0, alpha=0.9))
                ax.text(j, i, state, ha="center", va="center", fontsize=8,
                        color=OOM_COLOUR if state == "OOM" else "#555555", fontweight="bold" if state == "OOM" else None,
                        bbox=dict(facecolor="white", edgecolor="none", pad=1.5) if state == "OOM" else None)
    if finite.size:
        bi, bj = np.unravel_index(np.nanargmax(values) if larger_is_better else np.nanargmin(values), values.shape)
        ax.add_patch(Rectangle((bj - 0.5, bi - 0.5), 1, 1, fill=False, edgecolor="#d62728", lw=2.5))
    ax.set_xticks(range(len(xs)), labels=[str(x) for x in xs])
    ax.set_yticks(range(len(ys)), labels=[str(y) for y in ys])
    ax.set_xlabel(kx)
    ax.set_ylabel(ky)
    bar = fig.colorbar(image, ax=ax, format=_formatter(metric))
    bar.set_label(f"best {metric_label(metric)} that fits")
    others = [k for k in keys if k not in (kx, ky)]
    sub = f"best over {', '.join(others)}" if others else ""
    ax.set_title(f"{title}\n{sub}" if sub else title, fontsize=10, loc="left")
    handles = [Patch(facecolor="#fbe3d6", edgecolor=OOM_COLOUR, hatch="xx", label="OOM: ran, none fits"),
               Patch(facecolor=NONE_COLOUR, label="invalid / error / filtered out"),
               Patch(fill=False, edgecolor="#d62728", lw=2, label="best")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.14 if len(xs) < 8 else -0.2),
              ncols=3, fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
