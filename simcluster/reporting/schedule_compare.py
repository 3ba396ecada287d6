"""``schedules.png`` of a sweep that varies ``parallelism.schedule``: the schedules side by side.

For each schedule the sweep tried, its best point that ran (by the sweep's ranking metric)
is drawn as the pipeline papers draw a schedule: the plan's order of passes on every stage
(:func:`simcluster.plan.build_plan`), timed with the plan's own per-layer costs and free
communication (forward, backward with its recompute, weight gradient; interleaved chunks
shaded), all on one time axis so their lengths compare. Beside each: the simulated bubble,
throughput and iteration time from ``results.csv`` and the schedule's closed-form bubble.
Nothing is simulated again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from simcluster.reporting.schedule import COLOURS, _colour  # noqa: E402
from simcluster.reporting.style import add_boxes, text_colour_on, time_axis  # noqa: E402
from simcluster.reporting.text import fmt_pct, fmt_seconds  # noqa: E402
from simcluster.reporting.theory import theoretical_bubble  # noqa: E402

KEY = "parallelism.schedule"
MAX_ROWS = 32


def ideal_passes(plan: Any) -> pd.DataFrame:
    """Every stage's passes (stage, kind, microbatch, chunk, start, end) with the plan's costs and
    free communication: a pass starts when its stage is free and its input is ready (the previous
    chunk's forward, the next chunk's backward, its own backward for W)."""
    layer = plan.blocks.layer
    rc = layer.fwd_s if plan.spec.training.recompute == "full" else 0.0
    split = plan.shape.split_w
    per = {"F": layer.fwd_s, "B": layer.bwd_s - (layer.wgrad_s if split else 0.0), "W": layer.wgrad_s}
    p, K = plan.p, plan.p * plan.v
    dur = {(kind, k): per[kind] * max(len(plan.chunks[k]), 1) for kind in per for k in range(K)}
    for k in range(K):  # the recompute of the chunk's layers that run again (all, or partial recompute's)
        dur[("B", k)] += rc * (max(len(plan.chunks[k]), 1) if plan.recomputed is None
                               else len(plan.recomputed.intersection(plan.chunks[k])))
    done: dict[tuple[str, int, int], float] = {}
    free = [0.0] * p
    pos = [0] * p
    rows: list[tuple[int, str, int, int, float, float]] = []
    orders = plan.orders
    remaining = sum(len(o) for o in orders)
    while remaining:
        moved = False
        for s in range(p):
            while pos[s] < len(orders[s]):
                kind, mb, chunk = orders[s][pos[s]]
                k = chunk * p + s
                if kind == "F":
                    dep = ("F", k - 1, mb) if k > 0 else None
                elif kind == "B":
                    dep = ("B", k + 1, mb) if k < K - 1 else ("F", k, mb)
                else:
                    dep = ("B", k, mb)
                if dep is not None and dep not in done:
                    break
                start = max(free[s], done.get(dep, 0.0) if dep else 0.0)
                end = start + dur[(kind, k)]
                done[(kind, k, mb)] = free[s] = end
                rows.append((s, kind, mb, chunk, start, end))
                pos[s] += 1
                remaining -= 1
                moved = True
        if not moved:
            raise RuntimeError("schedule order deadlocks with free communication")
    return pd.DataFrame(rows, columns=["stage", "kind", "microbatch", "chunk", "start_s", "end_s"])


def _point_spec(row: pd.Series, info: dict) -> Any:
    """The workload of one sweep point, rebuilt from the base file and its values."""
    from simcluster.spec import load_workload
    from simcluster.spec.sweep import yaml_value

    def plain(v: Any) -> Any:
        return v.item() if hasattr(v, "item") else v

    items = list((info.get("set") or {}).items()) + [(k, plain(row[k])) for k in info["keys"]]
    return load_workload(info["base"], overrides=[f"{k}={yaml_value(v)}" for k, v in items])


def best_per_schedule(table: pd.DataFrame, info: dict) -> list[pd.Series]:
    """The best point that ran of each schedule value (by the ranking metric)."""
    ok = table[table["status"] == "ok"].copy()
    if ok.empty or KEY not in ok:
        return []
    metric = info["rank_by"]
    ok["_m"] = pd.to_numeric(ok[metric], errors="coerce")
    by = ["_m", "point"] if "point" in ok else ["_m"]
    ok = ok.sort_values(by, ascending=[not info["larger_is_better"]] + [True] * (len(by) - 1), kind="mergesort")
    return [g.iloc[0] for _, g in ok.groupby(KEY, sort=True)]


def plot_schedule_comparison(table: pd.DataFrame, info: dict, path: Path) -> Path | None:
    """Draw ``schedules.png`` when the sweep varies ``parallelism.schedule`` (two values or more
    that ran); returns its path, or None when there is nothing to compare."""
    from simcluster.plan import build_plan

    if KEY not in info.get("keys", []):
        return None
    best = best_per_schedule(table, info)
    if len(best) < 2:
        return None
    drawn = []
    for row in best:
        try:
            spec = _point_spec(row, info)
            plan = build_plan(spec)
            drawn.append((row, spec, plan, ideal_passes(plan)))
        except Exception as exc:  # noqa: BLE001 - a point that cannot be re-planned is left out, said below
            drawn.append((row, None, None, str(exc)))
    t_max = max(float(u["end_s"].max()) for *_, u in drawn if isinstance(u, pd.DataFrame))
    heights = [max(1.2, 0.22 * min(plan.p, MAX_ROWS) + 0.9) if plan is not None else 0.8 for _, _, plan, _ in drawn]
    fig, axes = plt.subplots(len(drawn), 1, figsize=(15, sum(heights) + 1.2), squeeze=False,
                             gridspec_kw={"height_ratios": heights, "hspace": 0.9 / max(np.mean(heights), 0.5),
                                          "left": 0.1, "right": 0.86, "top": 1 - 0.7 / (sum(heights) + 1.2),
                                          "bottom": 0.45 / (sum(heights) + 1.2)})
    for ax, (row, spec, plan, units) in zip(axes[:, 0], drawn):
        _panel(ax, row, info, spec, plan, units, t_max)
    fig.suptitle(f"{info['name']}: the schedules side by side (best point of each by {info['rank_by']}; "
                 "ideal timing: the plan's costs, free communication)", fontsize=11, x=0.1, ha="left")
    kinds = [Patch(facecolor=COLOURS[k], label=label) for k, label in (("F", "F: forward"), ("B", "B: backward"),
                                                                      ("W", "W: weight gradient"))]
    kinds.append(Patch(facecolor=_colour("F", 1, 2), label="later chunk (lighter)"))
    fig.legend(handles=kinds, loc="upper left", bbox_to_anchor=(0.865, 0.97), fontsize=8, frameon=False,
               title="numbers: microbatch", title_fontsize=8)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


def _panel(ax: plt.Axes, row: pd.Series, info: dict, spec: Any, plan: Any, units: Any, t_max: float) -> None:
    """One schedule: its ideal passes and its simulated figures."""
    name = str(row[KEY])
    if plan is None:
        ax.text(0.01, 0.5, f"{name}: could not be re-planned ({units})", transform=ax.transAxes, fontsize=9)
        ax.axis("off")
        return
    config = {"parallelism": {"pipeline": plan.p, "virtual_stages": plan.v, "schedule": name}}
    theory, formula = theoretical_bubble(config, {"microbatches": plan.m})
    sim = pd.to_numeric(pd.Series([row.get("bubble_fraction")]), errors="coerce").iloc[0]
    it = pd.to_numeric(pd.Series([row.get("iteration_time_s")]), errors="coerce").iloc[0]
    tps = pd.to_numeric(pd.Series([row.get("tokens_per_s")]), errors="coerce").iloc[0]
    others = ", ".join(f"{k.rsplit('.', 1)[-1]}={row[k]}" for k in info["keys"] if k != KEY)
    ax.set_title(f"{name} (point {row.get('point', '?')}{', ' + others if others else ''}): simulated bubble "
                 f"{fmt_pct(sim)}, theory {fmt_pct(theory) if theory is not None else '—'}; iteration "
                 f"{fmt_seconds(it)}, {tps:,.0f} tokens/s", loc="left", fontsize=9)
    stages = list(range(plan.p))
    if len(stages) > MAX_ROWS:
        stages = sorted({int(round(i * (plan.p - 1) / (MAX_ROWS - 1))) for i in range(MAX_ROWS)})
    y_of = {s: i for i, s in enumerate(stages)}
    u = units[units["stage"].isin(stages)]
    ys = u["stage"].map(y_of).to_numpy(dtype=float)
    px = t_max / (15 * 100 * 0.76)
    for (kind, chunk), g in u.groupby(["kind", "chunk"], sort=True):
        on = ((u["kind"] == kind) & (u["chunk"] == chunk)).to_numpy()
        add_boxes(ax, g["start_s"], g["end_s"], ys[on] - 0.4, ys[on] + 0.4, _colour(str(kind), int(chunk), plan.v),
                  edge="white", linewidth=0.3)
    width = ((u["end_s"] - u["start_s"]) / px).to_numpy()
    for (s, kind, mb, chunk, a, b), w in zip(u.itertuples(index=False), width):
        if w >= 6.5 * len(str(mb)) + 4:
            ax.text((a + b) / 2, y_of[s], str(mb), ha="center", va="center", fontsize=6,
                    color=text_colour_on(_colour(str(kind), int(chunk), plan.v)))
    ax.set_xlim(0, t_max)
    ax.set_ylim(len(stages) - 0.5, -0.5)
    step = max(1, int(np.ceil(len(stages) / 16)))
    ax.set_yticks(range(0, len(stages), step))
    ax.set_yticklabels([f"stage {stages[i]}" for i in range(0, len(stages), step)], fontsize=7)
    unit = time_axis(ax.xaxis, t_max)
    ax.set_xlabel(f"ideal time ({unit}): the plan's pass costs, communication free", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
