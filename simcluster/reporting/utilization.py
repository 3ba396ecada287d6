"""``utilization.png``: compute utilization per GPU, link utilization, per-stage breakdown.

Panels, top to bottom:

(a) a heat map of each simulated GPU's compute-stream utilization over time, time-weighted
    per bin (the share of the bin the compute stream is busy);
(b) link utilization per link class over time: the bytes each recorded link carries, spread
    evenly over each interval and binned, as a percentage of the link's capacity, averaged
    over the class's links (GB/s per link when a capacity is unknown). Capacities come
    from ``details["link_utilization"][i]["capacity_bytes_per_s"]`` and, for links it does
    not list, from the topology rebuilt from ``config["cluster"]``;
(c) the hottest links: mean utilization over the iteration of the busiest links
    (``details["link_utilization"]`` plus every link in the timeline), with the busiest
    time bin's utilization as a tick;
(d) when ``details["breakdown"]`` is present, one stacked bar per pipeline stage splitting
    the iteration into compute, recompute, exposed TP / DP / pipeline communication,
    bubble and optimizer (they add up to the iteration time).
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
    BREAKDOWN_STYLE,
    IDLE_EDGE,
    LINK_COLOURS,
    gpu_rows,
    iteration_end,
    link_rows,
    rank_infos,
    workload_name,
)

DEFAULT_BINS = 200
LINE_STYLES = ("-", "--", ":", "-.")


def merge_intervals(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of intervals ``[starts[i], ends[i])`` as sorted, disjoint intervals."""
    if len(starts) == 0:
        return np.zeros(0), np.zeros(0)
    order = np.lexsort((ends, starts))
    s, e = np.asarray(starts, float)[order], np.asarray(ends, float)[order]
    run_end = np.maximum.accumulate(e)
    # a new merged interval begins where the start passes every earlier end
    new = np.ones(len(s), bool)
    new[1:] = s[1:] > run_end[:-1]
    idx = np.flatnonzero(new)
    out_s = s[idx]
    out_e = np.append(run_end[idx[1:] - 1], run_end[-1])
    return out_s, out_e


def _cumulative(edges: np.ndarray, starts: np.ndarray, ends: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``C(t) = Σ w_i · |[s_i, e_i) ∩ [0, t)|`` evaluated at every edge (chunked to bound memory)."""
    out = np.zeros(len(edges))
    dur = ends - starts
    step = max(1, 2_000_000 // max(len(edges), 1))
    for k in range(0, len(starts), step):
        s, d, w = starts[k : k + step], dur[k : k + step], weights[k : k + step]
        out += (np.clip(edges[:, None] - s[None, :], 0.0, d[None, :]) * w[None, :]).sum(axis=1)
    return out


def busy_fraction_per_bin(starts: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of each bin ``[edges[k], edges[k+1])`` covered by the union of the intervals."""
    s, e = merge_intervals(np.asarray(starts, float), np.asarray(ends, float))
    c = _cumulative(edges, s, e, np.ones(len(s)))
    width = np.diff(edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(width > 0, np.diff(c) / width, 0.0)
    return np.clip(frac, 0.0, 1.0)


def bytes_per_bin(starts: np.ndarray, ends: np.ndarray, nbytes: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bytes carried in each bin, each interval's bytes spread evenly over it.

    Zero-length intervals put all their bytes in the bin holding their start.
    """
    starts, ends, nbytes = (np.asarray(a, float) for a in (starts, ends, nbytes))
    dur = ends - starts
    pos = dur > 0
    rate = np.zeros(len(starts))
    rate[pos] = nbytes[pos] / dur[pos]
    out = np.diff(_cumulative(edges, starts[pos], ends[pos], rate[pos]))
    if (~pos).any():
        idx = np.clip(np.searchsorted(edges, starts[~pos], side="right") - 1, 0, len(edges) - 2)
        np.add.at(out, idx, nbytes[~pos])
    return out


def time_bins(t_end: float, bins: int = DEFAULT_BINS) -> np.ndarray:
    """``bins + 1`` evenly spaced edges over ``[0, t_end]``."""
    return np.linspace(0.0, t_end if t_end > 0 else 1.0, bins + 1)


def compute_utilization_matrix(
    timeline: pd.DataFrame, ranks: list[int], edges: np.ndarray
) -> np.ndarray:
    """Rows: ``ranks``; columns: bins; values: share of the bin the compute stream is busy."""
    g = gpu_rows(timeline)
    g = g[g["stream"] == "compute"] if len(g) else g
    by_rank = {int(r): rows for r, rows in g.groupby("rank", sort=True)} if len(g) else {}
    out = np.zeros((len(ranks), len(edges) - 1))
    for i, r in enumerate(ranks):
        rows = by_rank.get(r)
        if rows is not None and len(rows):
            out[i] = busy_fraction_per_bin(rows["start_s"].to_numpy(), rows["end_s"].to_numpy(), edges)
    return out


def _topology_capacities(config: dict | None) -> dict[str, float]:
    """``{"link:<name>": bytes/s}`` of every link of the topology rebuilt from ``config["cluster"]``
    (empty when that is not possible)."""
    from types import SimpleNamespace

    def ns(x: object) -> object:
        return SimpleNamespace(**{k: ns(v) for k, v in x.items()}) if isinstance(x, dict) else x

    cluster = (config or {}).get("cluster")
    if not isinstance(cluster, dict) or "intra_node" not in cluster:
        return {}
    try:
        from simcluster.topology.build import build_topology

        topo = build_topology(ns(cluster))
        return {f"link:{n}": float(bw) for n, bw in zip(topo.link_names, topo.link_bandwidth)}
    except Exception:  # an older or hand-written config: fall back to GB/s
        return {}


def link_capacities(details: dict | None, config: dict | None = None) -> dict[str, float]:
    """Per-link capacity in bytes/s: the topology's (when ``config`` allows rebuilding it),
    overridden by ``details["link_utilization"]`` where that gives one."""
    caps = _topology_capacities(config)
    for entry in (details or {}).get("link_utilization") or []:
        for key in ("capacity_bytes_per_s", "bandwidth", "capacity"):
            v = entry.get(key) if isinstance(entry, dict) else None
            if isinstance(v, (int, float)) and v > 0:
                name = str(entry.get("link", ""))
                caps[name if name.startswith("link:") else f"link:{name}"] = float(v)
                break
    return caps


def link_class_series(
    timeline: pd.DataFrame, details: dict | None, edges: np.ndarray, config: dict | None = None,
    caps: dict[str, float] | None = None,
) -> tuple[dict[str, np.ndarray], bool]:
    """Per link class, the mean per-link series over the bins.

    Returns ``(series, as_fraction)``: fractions of capacity when every link of every
    class has a known capacity, else bytes/s per link.
    """
    links = link_rows(timeline)
    if links.empty:
        return {}, False
    caps = link_capacities(details, config) if caps is None else caps
    as_fraction = bool(caps) and all(str(r) in caps for r in links["resource"].unique())
    width = np.diff(edges)
    series: dict[str, np.ndarray] = {}
    for cls, rows in links.groupby("stream", sort=True):
        total = np.zeros(len(edges) - 1)
        names = sorted(rows["resource"].unique())
        for name, lrows in rows.groupby("resource", sort=True):
            b = bytes_per_bin(lrows["start_s"].to_numpy(), lrows["end_s"].to_numpy(), lrows["bytes"].to_numpy(), edges)
            rate = np.where(width > 0, b / np.where(width > 0, width, 1.0), 0.0)
            total += rate / caps[str(name)] if as_fraction else rate
        series[str(cls)] = total / max(len(names), 1)
    return series, as_fraction


def hottest_links(timeline: pd.DataFrame, details: dict | None, caps: dict[str, float], t_end: float,
                  edges: np.ndarray, top: int = 12) -> list[dict]:
    """The ``top`` links by mean utilization, the busiest of every link class among them:
    ``{link, cls, mean, peak}`` (fractions; ``peak``, the busiest bin's, is None for links
    only ``details`` knows)."""
    found: dict[str, dict] = {}
    for e in (details or {}).get("link_utilization") or []:
        if isinstance(e, dict) and isinstance(e.get("mean_utilization"), (int, float)):
            found[str(e.get("link"))] = dict(link=str(e.get("link")), cls=str(e.get("cls", "")),
                                             mean=float(e["mean_utilization"]), peak=None)
    width = np.diff(edges)
    for name, rows in link_rows(timeline).groupby("resource", sort=True):
        cap = caps.get(str(name))
        if not cap or t_end <= 0:
            continue
        b = bytes_per_bin(rows["start_s"].to_numpy(), rows["end_s"].to_numpy(), rows["bytes"].to_numpy(), edges)
        short = str(name)[len("link:"):]
        found[short] = dict(link=short, cls=str(rows["stream"].iloc[0]), mean=float(rows["bytes"].sum()) / (cap * t_end),
                            peak=float((b / np.where(width > 0, width, 1.0)).max()) / cap)
    ranked = sorted(found.values(), key=lambda e: (-e["mean"], e["link"]))
    best_of_class = list({e["cls"]: e for e in reversed(ranked)}.values())  # each class's busiest
    chosen = best_of_class[:top]
    chosen += [e for e in ranked if e not in chosen][: top - len(chosen)]
    return sorted(chosen, key=lambda e: (-e["mean"], e["link"]))


def draw_utilization(
    path: Path,
    timeline: pd.DataFrame,
    summary: dict | None = None,
    config: dict | None = None,
    details: dict | None = None,
    bins: int = DEFAULT_BINS,
) -> None:
    """Draw ``utilization.png`` at ``path`` (see the module docstring for the panels)."""
    t_end = iteration_end(timeline, summary)
    edges = time_bins(t_end, bins)
    centres = 0.5 * (edges[:-1] + edges[1:])
    infos = rank_infos(timeline, details)
    breakdown = [b for b in (details or {}).get("breakdown") or [] if isinstance(b, dict)]
    caps = link_capacities(details, config)
    series, as_fraction = link_class_series(timeline, details, edges, caps=caps)
    hot = hottest_links(timeline, details, caps, t_end, edges)

    n_gpu = max(len(infos), 1)
    heat_h = min(max(1.6, 0.22 * n_gpu + 0.8), 8.0)
    heights = [heat_h, 2.6] + ([max(1.6, 0.22 * len(hot) + 0.9)] if hot else [])
    heights += [max(1.6, 0.35 * len(breakdown) + 1.0)] if breakdown else []
    # main column for the plots, a narrow side column for colour bar and legends
    fig = plt.figure(figsize=(13, sum(heights) + 1.6), layout="constrained")
    gs = fig.add_gridspec(len(heights), 2, height_ratios=heights, width_ratios=[1.0, 0.2])
    axes = [fig.add_subplot(gs[0, 0]), None]
    axes[1] = fig.add_subplot(gs[1, 0], sharex=axes[0])
    ax_hot = fig.add_subplot(gs[2, 0]) if hot else None
    ax_bd = fig.add_subplot(gs[len(heights) - 1, 0], sharex=axes[0]) if breakdown else None
    sides = [fig.add_subplot(gs[i, 1]) for i in range(len(heights))]
    for sd in sides:
        sd.axis("off")
    fig.suptitle(f"{workload_name(config, summary)}: utilization over one iteration", fontsize=13)
    x_max = edges[-1]

    # (a) compute utilization heat map
    ax = axes[0]
    if infos:
        mat = compute_utilization_matrix(timeline, [i.rank for i in infos], edges) * 100.0
        im = ax.imshow(
            mat, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=100,
            extent=(0.0, edges[-1], len(infos) - 0.5, -0.5),
        )
        step = max(1, int(np.ceil(len(infos) / 30)))
        ticks = list(range(0, len(infos), step))
        ax.set_yticks(ticks)
        ax.set_yticklabels([infos[i].label for i in ticks], fontsize=8 if len(infos) <= 16 else 6)
        cax = sides[0].inset_axes((0.0, 0.0, 0.08, 1.0))
        cb = fig.colorbar(im, cax=cax)
        cb.set_label("compute busy (%)")
        mean = float(mat.mean()) if mat.size else 0.0
        ax.set_title(f"(a) compute-stream utilization per simulated GPU, {len(edges) - 1} time bins "
                     f"(mean {mean:.1f} %)", loc="left", fontsize=10)
    else:
        ax.text(0.5, 0.5, "no GPU intervals", ha="center", va="center", transform=ax.transAxes)
        ax.set_title("(a) compute-stream utilization per simulated GPU", loc="left", fontsize=10)
    ax.set_xlabel("time (s)")

    # (b) link utilization per class
    ax = axes[1]
    classes = sorted(set(series) | {h["cls"] for h in hot})
    colour_of = {c: LINK_COLOURS[k % len(LINK_COLOURS)] for k, c in enumerate(classes)}
    dash_of = {c: LINE_STYLES[k % len(LINE_STYLES)] for k, c in enumerate(classes)}  # classes may coincide
    if series:
        for cls, values in series.items():
            y = values * 100.0 if as_fraction else values / 1e9
            ax.fill_between(centres, y, step="mid", color=colour_of[cls], alpha=0.12, linewidth=0)
            ax.step(centres, y, where="mid", color=colour_of[cls], lw=1.4, ls=dash_of[cls], label=cls)
        ax.set_ylabel("% of link capacity" if as_fraction else "GB/s per link")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    else:
        ax.text(0.5, 0.5, "no link intervals in the timeline", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    if classes:
        handles = [Line2D([], [], color=colour_of[c], lw=1.6, ls=dash_of[c], label=c) for c in classes]
        sides[1].legend(handles=handles, title="link class", fontsize=8, title_fontsize=8, loc="upper left",
                        frameon=False)
    what = "utilization" if as_fraction else "traffic"
    ax.set_title(f"(b) link {what} per link class (mean over the class's links in the timeline)", loc="left",
                 fontsize=10)
    ax.set_xlabel("time (s)")

    if ax_hot is not None:
        _draw_hottest(ax_hot, sides[2], hot, colour_of, bins)
    if ax_bd is not None:
        x_max = max(x_max, _draw_breakdown(ax_bd, sides[-1], breakdown, summary))
    axes[0].set_xlim(0, x_max)

    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def _draw_hottest(ax: plt.Axes, side: plt.Axes, hot: list[dict], colour_of: dict[str, str], bins: int) -> None:
    """Horizontal bars of the hottest links' mean utilization, a tick at their busiest bin's."""
    y = np.arange(len(hot))
    mean = np.array([h["mean"] for h in hot]) * 100.0
    ax.barh(y, mean, color=[colour_of.get(h["cls"], "#777777") for h in hot], height=0.7)
    peaks = [(i, h["peak"] * 100.0) for i, h in enumerate(hot) if h["peak"] is not None]
    if peaks:
        ax.scatter([p for _, p in peaks], [i for i, _ in peaks], marker="|", s=120, color="black", zorder=3)
    right = max([float(mean.max())] + [p for _, p in peaks]) if len(hot) else 1.0
    for yi, h, m in zip(y, hot, mean):
        ax.text(m, yi, f" {m:.1f} %", va="center", ha="left", fontsize=7)
    ax.set_xlim(0, max(right * 1.15, 1.0))
    ax.set_yticks(y)
    ax.set_yticklabels([f"{h['link']} ({h['cls']})" for h in hot], fontsize=7)
    ax.set_ylim(len(hot) - 0.5, -0.5)
    ax.set_xlabel("% of link capacity")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(f"(c) the {len(hot)} hottest links: mean utilization over the iteration", loc="left", fontsize=10)
    handles = [Patch(facecolor="#bbbbbb", label="mean over the iteration\n(colour: link class)")]
    if peaks:
        handles.append(Line2D([], [], marker="|", ls="none", color="black", markersize=10,
                              label=f"busiest of {bins} time bins"))
    side.legend(handles=handles, fontsize=8, loc="upper left", frameon=False)


def _draw_breakdown(ax: plt.Axes, side: plt.Axes, breakdown: list[dict], summary: dict | None) -> float:
    """One horizontal stacked bar per stage, components in :data:`BREAKDOWN_STYLE` order.

    The legend goes on ``side``; returns the longest bar (seconds).
    """
    rows = sorted(breakdown, key=lambda b: int(b.get("stage", 0) or 0))
    keys = [k for k in BREAKDOWN_STYLE if any(float(b.get(k) or 0) > 0 for b in rows)]
    extra = sorted({k for b in rows for k in b if k not in BREAKDOWN_STYLE and k != "stage"
                    and isinstance(b.get(k), (int, float)) and b.get(k) > 0})
    y = np.arange(len(rows))
    left = np.zeros(len(rows))
    handles = []
    for k in keys + extra:
        colour, label, hatch = BREAKDOWN_STYLE.get(k, ("#bbbbbb", k.replace("_", " "), ""))
        w = np.array([float(b.get(k) or 0) for b in rows])
        ax.barh(y, w, left=left, color=colour, hatch=hatch, edgecolor=IDLE_EDGE if hatch else "white",
                linewidth=0.5, height=0.7)
        handles.append(Patch(facecolor=colour, hatch=hatch, edgecolor=IDLE_EDGE if hatch else colour, label=label))
        left += w
    ax.set_yticks(y)
    ax.set_yticklabels([f"stage {b.get('stage', i)}" for i, b in enumerate(rows)], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("time (s)")
    t = (summary or {}).get("iteration_time_s")
    if isinstance(t, (int, float)) and t > 0:
        ax.axvline(t, color="black", ls="--", lw=0.8)
        handles.append(Line2D([], [], color="black", ls="--", lw=0.8, label="iteration time"))
    side.legend(handles=handles, fontsize=8, loc="upper left", frameon=False)
    ax.set_title("(d) where each stage's iteration time goes", loc="left", fontsize=10)
    return float(left.max()) if len(left) else 0.0
