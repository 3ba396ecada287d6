"""The results table of a sweep: one row per point, in expansion order, and its files.

Columns: ``point`` (the point's number), the swept keys (dotted, as written; list values
as JSON), every summary.json figure (the contract's first, then any others by name), ``status`` (ok | invalid | error), ``message`` (why invalid, the error, or
that an ok point does not fit in memory), ``wall_s`` (seconds its simulation took; 0 for
invalid points) and ``config_hash`` (its key in the store). Rows are in the order of
:func:`simcluster.sweep.grid.expand`, whatever order the points finished in, so two runs
of one sweep write the same file except for ``wall_s``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

#: summary.json keys the contract fixes, in its order.
CONTRACT_SUMMARY_KEYS = (
    "num_gpus", "iteration_time_s", "tokens_per_s", "model_tflops_per_gpu", "hardware_tflops_per_gpu",
    "mfu", "hfu", "bubble_fraction", "exposed_comm_fraction", "compute_utilization",
    "peak_memory_bytes", "memory_capacity_bytes", "fits_in_memory",
)
TAIL_COLUMNS = ("status", "message", "wall_s", "config_hash")


@dataclass
class PreparedPoint:
    """A point of the sweep after validation: its number, values, store key and workload
    (None when invalid, with the reason in ``invalid``)."""

    index: int
    values: dict[str, Any]
    key: str
    spec: Any | None = None
    invalid: str | None = None


def cell(value: Any) -> Any:
    """A swept value as a table cell: lists and mappings as JSON text."""
    return json.dumps(value) if isinstance(value, (list, dict, tuple)) else value


def results_table(keys: list[str], points: list[PreparedPoint], records: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per point; points without a record (not finished) get status ``pending``."""
    extra = {k for p in points for k in (records.get(p.key, {}).get("summary") or {})}
    summary_keys = list(CONTRACT_SUMMARY_KEYS) + sorted(extra - set(CONTRACT_SUMMARY_KEYS))
    rows = []
    for p in points:
        rec = records.get(p.key) or {"status": "pending", "message": "", "summary": None, "wall_s": None}
        summary = rec.get("summary") or {}
        row: dict[str, Any] = {"point": p.index}
        row.update({k: cell(p.values.get(k)) for k in keys})
        row.update({k: summary.get(k) for k in summary_keys})
        row.update(status=rec.get("status"), message=rec.get("message") or "", wall_s=rec.get("wall_s"), config_hash=p.key)
        rows.append(row)
    columns = ["point", *keys, *summary_keys, *TAIL_COLUMNS]
    table = pd.DataFrame(rows, columns=columns)
    for col in summary_keys:  # integers and flags stay so where some points have no figures
        present = [row[col] for row in rows if row[col] is not None]
        if present and all(isinstance(v, bool) for v in present):
            table[col] = table[col].astype("boolean")
        elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            table[col] = table[col].astype("Int64")
    return table


def fits(table: pd.DataFrame) -> pd.Series:
    """Per row: True when the point ran and fits in memory (False when it does not or did not run)."""
    return table["fits_in_memory"].astype("boolean").fillna(False).astype(bool)


def ranked(table: pd.DataFrame, rank_by: str, larger_is_better: bool = True) -> pd.DataFrame:
    """The ok points that fit in memory, best first (ties: lower point number first)."""
    ok = table[(table["status"] == "ok") & fits(table)]
    ok = ok[pd.to_numeric(ok[rank_by], errors="coerce").notna()]
    ok = ok.assign(_m=pd.to_numeric(ok[rank_by]))
    ok = ok.sort_values(["_m", "point"], ascending=[not larger_is_better, True], kind="mergesort")
    return ok.drop(columns="_m")


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _parquet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding more than one kind of value (e.g. 4 and "auto") as text."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object:
            kinds = {type(v) for v in out[col] if v is not None and not (isinstance(v, float) and v != v)}
            if len(kinds) > 1:
                out[col] = out[col].map(lambda v: None if v is None else str(v))
    return out


def write_results(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``results.csv`` and, when pyarrow is importable, ``results.parquet``; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "results.csv"]
    _atomic_write(written[0], lambda p: table.to_csv(p, index=False, lineterminator="\n"))
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return written
    parquet = out_dir / "results.parquet"
    _atomic_write(parquet, lambda p: _parquet_safe(table).to_parquet(p, index=False))
    return written + [parquet]
