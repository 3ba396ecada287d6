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
(d) when ``details["breakdown"]`` is present, where each stage's iteration goes: compute,
    recompute, exposed TP / DP / pipeline communication, bubble and optimizer (one stacked
    bar per stage, a stacked area past 16 stages; :mod:`simcluster.reporting.breakdown`);
(e) each stage's bubble against the summary's mean and the schedule's closed form.

A panel with nothing to show is left out and the others lettered in order: the link panels
(b, c) when no link carried anything (one GPU), the bubble when there is no pipeline.

Time axes are labelled in µs, ms or s as the iteration's length suits.
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

from simcluster.reporting.bins import (  # noqa: E402, F401 (re-exported: the tests and trace use them)
    busy_fraction_per_bin,
    bytes_per_bin,
    merge_intervals,
    time_bins,
)
from simcluster.reporting.shares import BUSY, GpuRows, gpu_arrays, text_codes  # noqa: E402
from simcluster.reporting.breakdown import MANY, draw_bubble, draw_breakdown  # noqa: E402
from simcluster.reporting.style import (  # noqa: E402
    LINK_COLOURS,
    hbar_axes,
    iteration_end,
    link_rows,
    rank_infos,
    panel_grid,
    time_axis,
    workload_name,
)

DEFAULT_BINS = 200
LINE_STYLES = ("-", "--", ":", "-.")


def compute_utilization_matrix(
    timeline: pd.DataFrame, ranks: list[int], edges: np.ndarray, gpu: GpuRows | None = None
) -> np.ndarray:
    """Rows: ``ranks``; columns: bins; values: share of the bin the compute stream is busy (host work, the GPU
    idle meanwhile, is not: ``compute_utilization``'s rule)."""
    arrays = gpu if gpu is not None else gpu_arrays(timeline)
    out = np.zeros((len(ranks), len(edges) - 1))
    host = BUSY.index("host")
    for i, r in enumerate(ranks):
        s, e, cls = arrays.of(r)
        busy = (cls < len(BUSY)) & (cls != host)
        if busy.any():
            out[i] = busy_fraction_per_bin(s[busy], e[busy], edges)
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


def link_bins(timeline: pd.DataFrame, edges: np.ndarray) -> dict[str, tuple[str, float, np.ndarray]]:
    """Per recorded link: ``(class, bytes carried, bytes per bin)`` (one pass, by category codes)."""
    links = link_rows(timeline, ["resource", "stream", "start_s", "end_s", "bytes"])
    if links.empty:
        return {}
    codes, names = text_codes(links["resource"])
    s_codes, s_text = text_codes(links["stream"])  # through the categories: no per-row strings
    st, en, nb = (links[c].to_numpy(dtype=float) for c in ("start_s", "end_s", "bytes"))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    out: dict[str, tuple[str, float, np.ndarray]] = {}
    for i in sorted(range(len(names)), key=names.__getitem__):
        name, sel = names[i], order[bounds[i]:bounds[i + 1]]
        if len(sel):
            out[name] = (s_text[s_codes[sel[0]]], float(nb[sel].sum()), bytes_per_bin(st[sel], en[sel], nb[sel], edges))
    return out


def link_class_series(
    timeline: pd.DataFrame, details: dict | None, edges: np.ndarray, config: dict | None = None,
    caps: dict[str, float] | None = None, per_link: dict | None = None,
) -> tuple[dict[str, np.ndarray], bool]:
    """Per link class, the mean per-link series over the bins.

    Returns ``(series, as_fraction)``: fractions of capacity when every link of every
    class has a known capacity, else bytes/s per link.
    """
    per_link = link_bins(timeline, edges) if per_link is None else per_link
    if not per_link:
        return {}, False
    caps = link_capacities(details, config) if caps is None else caps
    as_fraction = bool(caps) and all(name in caps for name in per_link)
    width = np.diff(edges)
    series: dict[str, np.ndarray] = {}
    count: dict[str, int] = {}
    for name, (cls, _, b) in sorted(per_link.items()):
        rate = np.where(width > 0, b / np.where(width > 0, width, 1.0), 0.0)
        series[cls] = series.get(cls, np.zeros(len(width))) + (rate / caps[name] if as_fraction else rate)
        count[cls] = count.get(cls, 0) + 1
    return {c: v / count[c] for c, v in sorted(series.items())}, as_fraction


def hottest_links(timeline: pd.DataFrame, details: dict | None, caps: dict[str, float], t_end: float,
                  edges: np.ndarray, top: int = 12, per_link: dict | None = None) -> list[dict]:
    """The ``top`` links by mean utilization, the busiest of every link class among them:
    ``{link, cls, mean, peak}`` (fractions; ``peak``, the busiest bin's, is None for links
    only ``details`` knows)."""
    found: dict[str, dict] = {}
    for e in (details or {}).get("link_utilization") or []:
        if isinstance(e, dict) and isinstance(e.get("mean_utilization"), (int, float)):
            found[str(e.get("link"))] = dict(link=str(e.get("link")), cls=str(e.get("cls", "")),
                                             mean=float(e["mean_utilization"]), peak=None)
    width = np.diff(edges)
    per_link = link_bins(timeline, edges) if per_link is None else per_link
    for name, (cls, total, b) in sorted(per_link.items()):
        cap = caps.get(name)
        if not cap or t_end <= 0:
            continue
        short = name[len("link:"):]
        found[short] = dict(link=short, cls=cls, mean=total / (cap * t_end),
                            peak=float((b / np.where(width > 0, width, 1.0)).max()) / cap)
    ranked = sorted(found.values(), key=lambda e: (-e["mean"], e["link"]))
    best_of_class = list({e["cls"]: e for e in reversed(ranked)}.values())  # each class's busiest
    chosen = best_of_class[:top]
    chosen += [e for e in ranked if e not in chosen][: top - len(chosen)]
    return sorted(chosen, key=lambda e: (-e["mean"], e["link"]))


def utilization_panels(link_series: bool, hot_links: int, stages: int, config: dict | None) -> list[str]:
    """The panels drawn, top to bottom (lettered a, b, ... in this order): the heat map always; the link
    classes and the hottest links when a link carried something (not on one GPU); the breakdown when there
    are ``stages`` rows of it, and the bubble beside it only with a pipeline."""
    links = link_series or hot_links > 0
    pipelined = stages > 1 or int(((config or {}).get("parallelism") or {}).get("pipeline") or 1) > 1
    return ["heat"] + (["links"] if links else []) + (["hot"] if hot_links else []) + (
        ["breakdown"] + (["bubble"] if pipelined else []) if stages else [])


def draw_utilization(
    path: Path,
    timeline: pd.DataFrame,
    summary: dict | None = None,
    config: dict | None = None,
    details: dict | None = None,
    bins: int = DEFAULT_BINS,
    gpu: GpuRows | None = None,
) -> None:
    """Draw ``utilization.png`` at ``path`` (see the module docstring for the panels)."""
    t_end = iteration_end(timeline, summary)
    edges = time_bins(t_end, bins)
    centres = 0.5 * (edges[:-1] + edges[1:])
    infos = rank_infos(timeline, details)
    breakdown = [b for b in (details or {}).get("breakdown") or [] if isinstance(b, dict)]
    caps = link_capacities(details, config)
    per_link = link_bins(timeline, edges)
    series, as_fraction = link_class_series(timeline, details, edges, caps=caps, per_link=per_link)
    hot = hottest_links(timeline, details, caps, t_end, edges, per_link=per_link)

    n_gpu = max(len(infos), 1)
    names = utilization_panels(bool(series), len(hot), len(breakdown), config)
    links = "links" in names
    size = {"heat": min(max(1.6, 0.22 * n_gpu + 0.8), 8.0), "links": 2.6, "hot": max(1.6, 0.22 * len(hot) + 0.9),
            "breakdown": max(1.6, 0.35 * len(breakdown) + 1.0) if len(breakdown) <= MANY else 3.2, "bubble": 2.2}
    # main column for the plots, a narrow side column for colour bar and legends
    fig, panels, sides = panel_grid([size[n] for n in names])
    at = {n: i for i, n in enumerate(names)}
    letter = {n: "abcde"[i] for i, n in enumerate(names)}  # panels lettered in the order drawn
    axes = [panels[0]] + ([panels[at["links"]]] if links else [])
    for ax in axes[1:]:
        ax.sharex(axes[0])
    ax_hot = panels[at["hot"]] if hot else None
    ax_bd = panels[at["breakdown"]] if breakdown else None
    if ax_bd is not None and len(breakdown) <= MANY:
        ax_bd.sharex(axes[0])
    ax_bub = panels[at["bubble"]] if "bubble" in at else None
    fig.suptitle(f"{workload_name(config, summary)}: utilization over one iteration", fontsize=13, y=1 - 0.15 / fig.get_figheight())
    x_max = edges[-1]

    # (a) compute utilization heat map
    ax = axes[0]
    if infos:
        mat = compute_utilization_matrix(timeline, [i.rank for i in infos], edges, gpu=gpu) * 100.0
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

    colour_of: dict[str, str] = {}
    if links:
        colour_of = _draw_links(axes[1], sides[at["links"]], series, hot, as_fraction, centres, letter["links"])
    if ax_hot is not None:
        _draw_hottest(ax_hot, sides[at["hot"]], hot, colour_of, bins, letter["hot"])
    if ax_bd is not None:
        draw_breakdown(ax_bd, sides[at["breakdown"]], breakdown, summary, letter["breakdown"])
    if ax_bub is not None:
        draw_bubble(ax_bub, sides[at["bubble"]], breakdown, summary, config, letter["bubble"])
    axes[0].set_xlim(0, x_max)
    for ax in axes:
        unit = time_axis(ax.xaxis, x_max)
        ax.set_xlabel(f"time since the iteration's start ({unit})")

    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def _draw_links(ax: plt.Axes, side: plt.Axes, series: dict, hot: list[dict], as_fraction: bool,
                centres: np.ndarray, letter: str) -> dict[str, str]:
    """Link utilization (or traffic) per link class over time; returns each class's colour."""
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
    handles = [Line2D([], [], color=colour_of[c], lw=1.6, ls=dash_of[c], label=c) for c in classes]
    side.legend(handles=handles, title="link class", fontsize=8, title_fontsize=8, loc="upper left", frameon=False)
    what = "utilization" if as_fraction else "traffic"
    ax.set_title(f"({letter}) link {what} per link class (mean over the class's links in the timeline)", loc="left",
                 fontsize=10)
    return colour_of


def _draw_hottest(ax: plt.Axes, side: plt.Axes, hot: list[dict], colour_of: dict[str, str], bins: int,
                  letter: str = "c") -> None:
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
    hbar_axes(ax, [f"{h['link']} ({h['cls']})" for h in hot], "% of link capacity",
              f"({letter}) the {len(hot)} hottest links: mean utilization over the iteration", fontsize=7)
    handles = [Patch(facecolor="#bbbbbb", label="mean over the iteration\n(colour: link class)")]
    if peaks:
        handles.append(Line2D([], [], marker="|", ls="none", color="black", markersize=10,
                              label=f"busiest of {bins} time bins"))
    side.legend(handles=handles, fontsize=8, loc="upper left", frameon=False)
