"""The final ranking: simulated figures next to the analytical estimates, and how well they agree.

``ranking.csv`` has one row per simulated layout, best first by the objective (layouts that
fit in memory first, then those that do not, then those that failed): ``rank``, ``role``
(``candidate`` from tier 1, ``baseline`` the workload's own layout, ``reference`` the best
estimate with the workload's own tensor/pipeline/data/context degrees), ``layout`` (a short
label), the layout keys, every summary.json figure, ``breakdown_*_s`` (the simulator's
per-stage breakdown, averaged over stages), the objective's value, the analytical
estimate (``est_*``) and its rank among the candidates, ``status``, ``message``, ``wall_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from simcluster.search.estimate import PARTS, Estimate
from simcluster.search.layout import Layout
from simcluster.spec.workload import SEARCH_KEYS
from simcluster.sweep.export import CONTRACT_SUMMARY_KEYS, fits

OBJECTIVES = {"throughput": "tokens_per_s", "cost": "tokens_per_dollar"}
TOP = 10


@dataclass
class Entry:
    """A layout sent to the simulator: why, and what tier 1 said of it."""

    layout: Layout
    role: str  # candidate | baseline | reference
    estimate: Estimate
    score: float  # the objective from the estimate (larger is better)
    est_rank: int | None  # rank in tier 1's ranking (candidates only)


def objective_value(objective: str, tokens_per_s: float, gpus: int, price: float | None) -> float:
    """tokens/s, or tokens per dollar at ``price`` per GPU-hour."""
    if objective == "throughput":
        return tokens_per_s
    return tokens_per_s * 3600.0 / (gpus * price) if price else float("nan")


def ranking_table(entries: list[Entry], sims: pd.DataFrame, objective: str, tokens: float,
                  price: float | None) -> pd.DataFrame:
    """Join the simulations (the sweep's table, in ``entries``' order) with the estimates."""
    metric = OBJECTIVES[objective]
    rows = []
    for entry, (_, sim) in zip(entries, sims.iterrows()):
        lay = entry.layout
        row: dict[str, Any] = {"role": entry.role, "layout": lay.label(), **lay.values()}
        for col in sims.columns:
            if col not in SEARCH_KEYS and col not in ("point", "config_hash"):
                row[col] = sim[col]
        tps = pd.to_numeric(pd.Series([sim.get("tokens_per_s")]), errors="coerce").iloc[0]
        if objective == "cost":
            row[metric] = objective_value(objective, tps, lay.gpus, price)
        est = entry.estimate
        row.update({"est_iteration_time_s": est.iteration_time_s, "est_tokens_per_s": tokens / est.iteration_time_s,
                    f"est_{metric}": entry.score, "est_peak_memory_bytes": est.peak_memory_bytes,
                    "est_fits_in_memory": est.fits_in_memory, "est_rank": entry.est_rank})
        row.update({f"est_{part}_s": getattr(est, part) for part in PARTS})
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    ok = table["status"] == "ok"
    good = ok & fits(table)
    table["_group"] = np.where(good, 0, np.where(ok, 1, 2))
    table["_m"] = pd.to_numeric(table[metric], errors="coerce").fillna(-math.inf)
    table = table.sort_values(["_group", "_m"], ascending=[True, False], kind="mergesort").drop(columns=["_group", "_m"])
    table.insert(0, "rank", range(1, len(table) + 1))
    return _order(table, metric)


def _order(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    head = ["rank", "role", "layout", *SEARCH_KEYS]
    summary = [c for c in CONTRACT_SUMMARY_KEYS if c in table.columns]
    if metric not in summary and metric in table.columns:
        summary.append(metric)
    tail = ["status", "message", "wall_s"]
    est = [c for c in table.columns if c.startswith("est_")]
    rest = [c for c in table.columns if c not in head + summary + tail + est]
    return table[head + summary + sorted(rest) + est + [c for c in tail if c in table.columns]]


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); nan with fewer than 3 pairs."""
    if len(a) < 3:
        return float("nan")
    ra, rb = pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclass
class Agreement:
    """How tier 1's ranking of the simulated candidates compares with the simulator's."""

    spearman: float
    overlap: int  # of the top-n by estimate, how many are in the top-n by simulation
    top: int
    pairs: int


def agreement(table: pd.DataFrame, objective: str, top: int = TOP) -> Agreement:
    """Over the tier-1 candidates that ran: rank correlation and top-``top`` overlap."""
    metric = OBJECTIVES[objective]
    rows = table[(table["role"] == "candidate") & (table["status"] == "ok")]
    est = pd.to_numeric(rows[f"est_{metric}"], errors="coerce")
    sim = pd.to_numeric(rows[metric], errors="coerce").where(fits(rows), -math.inf)
    keep = est.notna() & sim.notna()
    est, sim = est[keep], sim[keep]
    n = min(top, len(est))
    by_est = set(est.sort_values(ascending=False, kind="mergesort").index[:n])
    by_sim = set(sim.sort_values(ascending=False, kind="mergesort").index[:n])
    finite = sim > -math.inf
    return Agreement(spearman(list(est[finite]), list(sim[finite])), len(by_est & by_sim), n, int(finite.sum()))
