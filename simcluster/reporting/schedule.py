"""``schedule.png``: the pipeline schedule as the GPipe, 1F1B, interleaved and zero-bubble
papers draw it, from the simulated timeline.

One row per pipeline stage (one simulated GPU of each; evenly spaced stages past
:data:`MAX_ROWS`), one box per microbatch pass at its simulated times: forward (F),
backward (B, its recompute folded in, its share marked by a lighter head) and weight gradient
(W), labelled with the microbatch where the box is wide enough; interleaved chunks are
shaded (chunk 0 darkest). Each row's warm-up (before its first backward) and cool-down
(after its last forward, and its warm-up) are tinted behind the boxes. Panels: (a) the whole iteration,
(b) the start and (c) the end zoomed so that boxes carry their numbers. The title gives the
simulated bubble beside the closed form for the schedule
(:func:`simcluster.reporting.theory.theoretical_bubble`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from simcluster.reporting.gantt import _evenly  # noqa: E402
from simcluster.reporting.shares import text_codes  # noqa: E402
from simcluster.reporting.style import (  # noqa: E402
    PHASE_STYLE,
    add_boxes,
    iteration_end,
    mix,
    rank_infos,
    text_colour_on,
    time_axis,
    workload_name,
)
from simcluster.reporting.theory import theoretical_bubble  # noqa: E402

MAX_ROWS = 64
MAX_LABELS = 220  # per panel: each label costs ~1.5 ms to draw
ZOOM_UNITS = 28  # passes of the first (last) stage a zoom panel shows
KINDS = {"forward": "F", "recompute": "B", "backward": "B", "weight_grad": "W"}
COLOURS = {"F": PHASE_STYLE["forward"][0], "B": PHASE_STYLE["backward"][0], "W": PHASE_STYLE["weight_grad"][0]}
WARM, COOL = "#fff4c2", "#e8e0f5"


def passes(timeline: pd.DataFrame) -> pd.DataFrame:
    """One row per microbatch pass of every rank: runs of compute rows with one
    (kind, microbatch, chunk); columns rank, kind, microbatch, chunk, start_s, end_s and
    recompute_end_s = start_s + the recompute time inside the pass (its recompute is
    interleaved with the backward layer by layer; the head of the box shows its share)."""
    cols = ["rank", "kind", "microbatch", "chunk", "start_s", "end_s", "recompute_end_s"]
    if timeline.empty:
        return pd.DataFrame(columns=cols)
    codes, texts = text_codes(timeline["phase"])  # through the categories: no per-row strings
    s_codes, s_texts = text_codes(timeline["stream"])
    sel = (timeline["rank"].to_numpy() >= 0) & (timeline["microbatch"].to_numpy() >= 0)
    sel &= np.array([t == "compute" for t in s_texts] + [False])[s_codes]
    sel &= np.array([t in KINDS for t in texts] + [False])[codes]
    idx = np.flatnonzero(sel)
    if not len(idx):
        return pd.DataFrame(columns=cols)
    col = {c: timeline[c].to_numpy()[idx] for c in ("rank", "microbatch", "layer", "start_s", "end_s")}
    order = np.lexsort((col["end_s"], col["start_s"], col["rank"]))  # stable: ties keep the timeline's order
    rows = {c: v[order] for c, v in col.items()}
    codes = codes[idx][order]
    rank = rows["rank"]
    layer = rows["layer"]
    kind = np.array([KINDS.get(t, "F") for t in texts] or ["F"])[codes]
    kind_no = np.array(["FBW".index(KINDS.get(t, "F")) for t in texts] or [0])[codes]
    recompute = np.array([t == "recompute" for t in texts] or [False])[codes]
    chunk = _chunks(rank, layer, rows["microbatch"] * 4 + kind_no)
    mb = rows["microbatch"]
    start, end = rows["start_s"], rows["end_s"]
    new = np.ones(len(rank), dtype=bool)
    new[1:] = (rank[1:] != rank[:-1]) | (kind[1:] != kind[:-1]) | (mb[1:] != mb[:-1]) | (chunk[1:] != chunk[:-1])
    idx = np.flatnonzero(new)
    rc = np.where(recompute, end - start, 0.0)
    out = pd.DataFrame({
        "rank": rank[idx], "kind": pd.Series(kind[idx], dtype=object),  # object: no arrow strings to iterate
        "microbatch": mb[idx], "chunk": chunk[idx],
        "start_s": start[idx], "end_s": np.maximum.reduceat(end, idx),
        "recompute_end_s": start[idx] + np.add.reduceat(rc, idx),
    })
    return out


def _chunks(rank: np.ndarray, layer: np.ndarray, group: np.ndarray | None = None) -> np.ndarray:
    """Each row's model chunk on its rank: the contiguous run of layers it falls in (a stage's
    chunks hold non-adjacent layer ranges). Rows without a layer (embedding, head) take the
    chunk of the next row with one when that row belongs to the same ``group`` (microbatch
    pass), else of the previous row."""
    out = np.zeros(len(rank), dtype=np.int64)
    group = np.zeros(len(rank), dtype=np.int64) if group is None else group
    for r in np.unique(rank):
        on = np.flatnonzero(rank == r)
        lay = layer[on]
        known = np.unique(lay[lay >= 0])
        if len(known) == 0:
            continue
        starts = known[np.concatenate([[True], np.diff(known) > 1])]
        c = np.where(lay >= 0, np.searchsorted(starts, lay, side="right") - 1, -1)
        pos = np.arange(len(c))
        has = c >= 0
        prev = np.maximum.accumulate(np.where(has, pos, -1))
        nxt = np.minimum.accumulate(np.where(has, pos, len(c))[::-1])[::-1]
        g = group[on]
        use_next = (nxt < len(c)) & ((prev < 0) | (g[np.minimum(nxt, len(c) - 1)] == g))
        src = np.where(has, pos, np.where(use_next, nxt, prev))
        out[on] = c[np.clip(src, 0, len(c) - 1)]
    return out


def _rows(timeline: pd.DataFrame, details: dict | None) -> tuple[list, int]:
    """``(infos of the drawn rows, number of stages)``: one GPU per stage, evenly spaced past MAX_ROWS."""
    first: dict[int, object] = {}
    for i in rank_infos(timeline, details):
        first.setdefault(i.stage, i)
    per_stage = list(first.values())
    return _evenly(per_stage, MAX_ROWS), len(per_stage)


def _colour(kind: str, chunk: int, v: int) -> str:
    """A pass's colour: its kind's, lighter for later chunks of an interleaved schedule."""
    return mix(COLOURS[kind], amount=min(0.55, 0.55 * chunk / max(v - 1, 1))) if v > 1 else COLOURS[kind]


def _draw_panel(ax: plt.Axes, units: pd.DataFrame, rows: list, t0: float, t1: float, width_px: float,
                v: int, labels: bool) -> list[tuple[int, str, int]]:
    """Boxes of ``units`` inside ``[t0, t1]``; returns the ``(rank, kind, microbatch)`` of those
    that carry their number."""
    y_of = {info.rank: k for k, info in enumerate(rows)}
    u = units[(units["end_s"] > t0) & (units["start_s"] < t1) & units["rank"].isin(list(y_of))]
    px = (t1 - t0) / width_px
    ys = u["rank"].map(y_of).to_numpy(dtype=float)
    kind = u["kind"].to_numpy()
    start, end = u["start_s"].to_numpy(), u["end_s"].to_numpy()
    tint: dict[str, list[tuple[float, float, float]]] = {WARM: [], COOL: []}  # (x0, x1, y): one artist each
    yi = ys.astype(np.int64)
    row_first_b, row_last_f, row_last = np.full(len(rows), np.inf), np.full(len(rows), -np.inf), \
        np.full(len(rows), -np.inf)
    b, f = kind == "B", kind == "F"
    np.minimum.at(row_first_b, yi[b], start[b])
    np.maximum.at(row_last_f, yi[f], end[f])
    np.maximum.at(row_last, yi, end)
    for y in np.unique(yi).tolist():  # warm-up: before the row's first B; cool-down: after its last F
        first_b = row_first_b[y] if np.isfinite(row_first_b[y]) else np.nan
        last_f = row_last_f[y] if np.isfinite(row_last_f[y]) else np.nan
        last = row_last[y]
        y = float(y)
        if np.isfinite(first_b) and first_b > t0:
            tint[WARM].append((t0, first_b, y))
        cool = max(last_f, first_b) if np.isfinite(first_b) else last_f  # after the warm-up, always
        if np.isfinite(cool) and cool < last:
            tint[COOL].append((cool, last, y))
    for colour, boxes in tint.items():
        if boxes:
            x0, x1, yy = np.array(boxes, dtype=float).T
            add_boxes(ax, x0, x1, yy - 0.5, yy + 0.5, colour, zorder=0)
    placed: list[tuple[int, str, int]] = []
    wide = len(u) > 0 and float(np.median(end - start)) > 3 * px
    chunk = u["chunk"].to_numpy()
    rc_end = u["recompute_end_s"].to_numpy()
    for k in ("F", "B", "W"):
        for c in np.unique(chunk):
            on = (kind == k) & (chunk == c)
            if not on.any():
                continue
            colour = _colour(k, int(c), v)
            add_boxes(ax, start[on], end[on], ys[on] - 0.4, ys[on] + 0.4, colour,
                      edge="white" if wide else "none", linewidth=0.4 if wide else 0.0)
            rc = on & (rc_end > start)
            if rc.any():
                add_boxes(ax, start[rc], rc_end[rc], ys[rc] - 0.4, ys[rc] + 0.4, mix(colour, amount=0.45), zorder=3)
    if not labels:
        return placed
    width = (np.minimum(u["end_s"].to_numpy(), t1) - np.maximum(u["start_s"].to_numpy(), t0)) / px
    text = u["microbatch"].astype(int).astype(str).to_numpy()
    fits = np.flatnonzero(width >= 6.5 * np.char.str_len(text.astype(str)) + 4)
    if len(fits) > MAX_LABELS:  # evenly over the panel's boxes, so that every row keeps some
        fits = fits[np.linspace(0, len(fits) - 1, MAX_LABELS).round().astype(int)]
    for (rank, kind, chunk, s, e), t in zip(u.iloc[fits][["rank", "kind", "chunk", "start_s", "end_s"]]
                                           .itertuples(index=False), text[fits]):
        colour = _colour(str(kind), int(chunk), v)
        ax.text((max(s, t0) + min(e, t1)) / 2, y_of[int(rank)], t, ha="center", va="center", fontsize=6.5,
                color=text_colour_on(colour), zorder=4, clip_on=True)
        placed.append((int(rank), str(kind), int(t)))
    return placed


def _zoom_windows(units: pd.DataFrame, rows: list) -> list[tuple[float, float, str]]:
    """The start (until every drawn row has run a few passes past its first backward, and
    the first row at least :data:`ZOOM_UNITS`) and the end (from a few passes before the
    earliest last forward of a drawn row, at least as long as the start)."""
    u = units[units["rank"].isin([r.rank for r in rows])].sort_values("start_s")
    if u.empty or len(u) <= ZOOM_UNITS * 2:
        return []
    t_b = 0.0
    for rank, g in u.groupby("rank", sort=False):
        kinds = g["kind"].to_numpy()
        first_b = int(np.argmax(kinds == "B")) if (kinds == "B").any() else len(kinds) - 1
        k = min(len(g) - 1, first_b + 3 if int(rank) != rows[0].rank else max(first_b + 3, ZOOM_UNITS - 1))
        t_b = max(t_b, float(g["end_s"].iloc[k]))
    t_end = float(u["end_s"].max())
    typical = float((u["end_s"] - u["start_s"]).median())
    last_f = u[u["kind"] == "F"].groupby("rank")["start_s"].max()
    t_c = float(last_f.min()) - 4 * typical if len(last_f) else t_end - t_b
    t_c = max(0.0, min(t_c, t_end - t_b))
    out = []
    if t_b <= 0.5 * t_end:  # a zoom into most of the iteration shows nothing (a)'s does not
        out.append((0.0, t_b, "(b) the start: warm-up"))
    if t_end - t_c <= 0.5 * t_end:
        out.append((t_c, t_end, "(c) the end: cool-down"))
    return out


def draw_schedule(path: Path, timeline: pd.DataFrame, summary: dict | None = None, config: dict | None = None,
                  details: dict | None = None) -> list[tuple[int, int, str, int]]:
    """Draw ``schedule.png`` at ``path``; returns the labelled boxes as
    ``(panel, rank, kind, microbatch)`` (panel 0: the whole iteration)."""
    t_iter = iteration_end(timeline, summary)
    units = passes(timeline)
    rows, n_stages = _rows(timeline, details)
    if not rows or units.empty:
        fig = plt.figure(figsize=(16, 2.0), dpi=100)
        fig.text(0.5, 0.5, f"{workload_name(config, summary)}: no microbatch passes in the timeline to draw",
                 ha="center", va="center", fontsize=11)
        fig.savefig(path, dpi=100, metadata={"Software": None})
        plt.close(fig)
        return []
    par = (config or {}).get("parallelism") or {}
    v = max(1, int(par.get("virtual_stages") or 1))
    n = max(len(rows), 1)
    row_px = float(np.clip(640 / n, 5, 20))
    windows = [(0.0, t_iter, "(a) the whole iteration")] + _zoom_windows(units, rows)
    heights = [n * row_px + 60] * len(windows)
    fig_h = (sum(heights) + 150) / 100
    fig = plt.figure(figsize=(16, fig_h), dpi=100)
    gs = fig.add_gridspec(len(windows), 1, height_ratios=heights, left=0.11, right=0.84, top=1 - 0.95 / fig_h,
                          bottom=0.5 / fig_h, hspace=0.5 * 100 / max(np.mean(heights), 1))
    width_px = 16 * 100 * 0.73
    placed: list[tuple[int, int, str, int]] = []
    for k, (a, b, title) in enumerate(windows):
        ax = fig.add_subplot(gs[k, 0])
        placed += [(k, *box) for box in _draw_panel(ax, units, rows, a, b, width_px, v, labels=True)]
        ax.set_xlim(a, b)
        ax.set_ylim(n - 0.5, -0.5)
        step = max(1, int(np.ceil(n / 32)))
        ax.set_yticks(range(0, n, step))
        ax.set_yticklabels([f"stage {rows[i].stage}" for i in range(0, n, step)], fontsize=7 if n > 16 else 8)
        unit = time_axis(ax.xaxis, b - a)
        ax.set_xlabel(f"time since the iteration's start ({unit})", fontsize=8)
        ax.set_title(title, loc="left", fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
    _header(fig, summary, config, n_stages, len(rows), fig_h)
    _legend(fig, units, v)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return placed


def _header(fig: plt.Figure, summary: dict | None, config: dict | None, n_stages: int, n_rows: int,
            fig_h: float) -> None:
    """Title: workload, schedule, simulated and theoretical bubble."""
    par = (config or {}).get("parallelism") or {}
    sched = str(par.get("schedule") or "1f1b")
    theory, formula = theoretical_bubble(config, summary)
    sim = (summary or {}).get("bubble_fraction")
    parts = [f"{workload_name(config, summary)}: {sched} pipeline schedule, {n_stages} stages" if n_stages > 1 else
             f"{workload_name(config, summary)}: microbatch order, no pipeline (one stage)"]
    if n_rows < n_stages:
        parts.append(f"(showing {n_rows} evenly spaced)")
    line2 = []
    if isinstance(sim, (int, float)):
        line2.append(f"simulated bubble {sim:.1%} of the iteration (mean over stages)")
    line2.append(f"theory {theory:.1%}: {formula}" if theory is not None else formula)
    fig.text(0.11, 1 - 0.3 / fig_h, " ".join(parts), fontsize=12, ha="left", va="center")
    fig.text(0.11, 1 - 0.55 / fig_h, " · ".join(line2), fontsize=9, ha="left", va="center", color="#333333")


def _legend(fig: plt.Figure, units: pd.DataFrame, v: int) -> None:
    """Pass kinds, recompute, chunks, warm-up and cool-down."""
    kinds = set(units["kind"]) if len(units) else set()
    h = [Patch(facecolor=COLOURS[k], label=label) for k, label in
         (("F", "F: forward"), ("B", "B: backward"), ("W", "W: weight gradient")) if k in kinds]
    if len(units) and (units["recompute_end_s"] > units["start_s"]).any():
        h.append(Patch(facecolor=mix(COLOURS["B"], amount=0.45), label="recompute share of B"))
    for c in range(1, v):
        h.append(Patch(facecolor=mix(COLOURS["F"], amount=min(0.55, 0.55 * c / max(v - 1, 1))),
                       label=f"chunk {c} (lighter)"))
    h += [Patch(facecolor=WARM, label="warm-up: before first B"),
          Patch(facecolor=COOL, label="cool-down: after last F")]
    fig.legend(handles=h, loc="upper left", bbox_to_anchor=(0.845, 0.97), fontsize=8, frameon=False,
               title="numbers: microbatch", title_fontsize=8)
