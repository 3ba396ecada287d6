"""A run's tables on disk: JSON with deterministic bytes, and the timeline as parquet or CSV.

Determinism: JSON with sorted keys, indent 2, a trailing newline, non-finite numbers as
``null``; the CSV writes floats in their shortest round-trip form (``repr``), so reading it
back gives the same values bit for bit and the same DataFrame gives the same bytes. The
timeline's columns (:data:`TIMELINE_COLUMNS`) are CONTRACT.md's.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TIMELINE_COLUMNS = (
    "resource", "rank", "stream", "task", "task_id", "kind", "phase", "stage", "microbatch", "layer",
    "start_s", "end_s", "flops", "bytes", "released_by",
)
STRING_COLUMNS = ("resource", "stream", "task", "kind", "phase")
INT_COLUMNS = ("rank", "task_id", "stage", "microbatch", "layer", "released_by")
FLOAT_COLUMNS = ("start_s", "end_s", "flops", "bytes")


def have_pyarrow() -> bool:
    """Whether pyarrow can be imported (then the timeline is written as parquet)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def to_jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types: numpy scalars/arrays, paths, sets, dataclasses, pydantic models;
    NaN and infinities become ``None``."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [to_jsonable(v) for v in sorted(obj, key=repr)]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (str, type(None))):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "model_dump"):  # pydantic v2
        return to_jsonable(obj.model_dump())
    if hasattr(obj, "to_dict"):
        return to_jsonable(obj.to_dict())
    return str(obj)


def write_json(path: Path, obj: Any) -> None:
    """Deterministic JSON: sorted keys, indent 2, UTF-8, trailing newline."""
    text = json.dumps(to_jsonable(obj), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def read_json(path: Path, default: Any = None) -> Any:
    """A JSON file's content, or ``default`` when it does not exist."""
    path = Path(path)
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def as_frame(timeline: Any) -> pd.DataFrame:
    """The DataFrame underneath a timeline: a DataFrame itself, or an object with ``.df``/``.frame``/``.data``
    or ``to_frame()``/``to_pandas()``, or anything ``pd.DataFrame`` accepts (records, dict of columns)."""
    if isinstance(timeline, pd.DataFrame):
        return timeline
    for attr in ("df", "frame", "data"):
        v = getattr(timeline, attr, None)
        if isinstance(v, pd.DataFrame):
            return v
    for meth in ("to_frame", "to_pandas", "to_dataframe"):
        f = getattr(timeline, meth, None)
        if callable(f):
            return f()
    return pd.DataFrame(timeline)


def _canonical_text(col: pd.Series) -> pd.Series:
    """A text column as a categorical whose categories are its used values, sorted (returned as
    is, without a copy, when it already is one: the engine's columns)."""
    if isinstance(col.dtype, pd.CategoricalDtype) and pd.api.types.is_string_dtype(col.cat.categories.dtype):
        cats = col.cat.categories
        codes = col.cat.codes.to_numpy()
        if (codes < 0).any():
            col = col.cat.add_categories([""]).fillna("") if "" not in cats else col.fillna("")
        used = np.bincount(col.cat.codes.to_numpy(), minlength=len(col.cat.categories)) > 0
        if not used.all():
            col = col.cat.remove_unused_categories()
        if not col.cat.categories.is_monotonic_increasing:
            col = col.cat.reorder_categories(sorted(col.cat.categories))
        return col
    values = col.astype(str).where(col.notna(), "") if len(col) else col.astype(str)
    return pd.Series(pd.Categorical(values, categories=sorted(pd.unique(values.to_numpy()))), index=col.index,
                     name=col.name)


def normalize_timeline(timeline: Any) -> pd.DataFrame:
    """The timeline with the schema's columns first (missing ones filled with defaults), a fresh index
    and the schema's dtypes (text columns categorical); extra columns follow in their order.

    A timeline that already has that form (the engine's) comes back without copying its data.
    """
    df = as_frame(timeline)
    if not isinstance(df.index, pd.RangeIndex) or df.index.start != 0 or df.index.step != 1:
        df = df.reset_index(drop=True)
    cols: dict[str, pd.Series] = {}
    n = len(df)
    for c in TIMELINE_COLUMNS:
        if c in df:
            col = df[c]
        else:
            col = pd.Series([""] * n if c in STRING_COLUMNS else ([-1] * n if c in INT_COLUMNS else [0.0] * n),
                            index=df.index, name=c)
        if c in STRING_COLUMNS:
            col = _canonical_text(col)
        elif c in INT_COLUMNS and col.dtype != np.int64:
            col = pd.to_numeric(col, errors="coerce").fillna(-1).astype("int64")
        elif c in FLOAT_COLUMNS and col.dtype != np.float64:
            col = pd.to_numeric(col, errors="coerce").astype("float64")
        cols[c] = col
    for c in df.columns:
        if c not in cols:
            cols[str(c)] = df[c]
    return pd.concat(cols, axis=1) if cols else df  # copy-on-write: no data is copied


def write_timeline(run_dir: Path, timeline: Any, fmt: str = "auto") -> Path:
    """Write the timeline; return its path. ``fmt``: ``auto`` (Parquet when pyarrow is importable,
    else CSV), ``parquet`` or ``csv``. The other format's stale file, if any, is removed so that
    :func:`read_timeline` reads this one. Parquet is written in row groups, so that writing
    a million rows does not hold a second copy of them."""
    run_dir = Path(run_dir)
    df = normalize_timeline(timeline)
    parquet = fmt == "parquet" or (fmt == "auto" and have_pyarrow())
    if parquet:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path, stale = run_dir / "timeline.parquet", run_dir / "timeline.csv"
        step = 256_000
        schema = pa.Schema.from_pandas(df.iloc[:0], preserve_index=False)
        # dictionary pages only where values repeat (text, small integers, flops and bytes per task):
        # trying them on the unique times and ids costs half the writing and makes the file bigger
        repeat = [c for c in df.columns if c not in ("start_s", "end_s", "task_id")]
        # min/max statistics for the numbers (what readers filter on); those of the text columns
        # cost a quarter of the writing
        numeric = [c for c in df.columns if c not in STRING_COLUMNS]
        with pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=repeat,
                              write_statistics=numeric) as w:
            for a in range(0, max(len(df), 1), step):
                w.write_table(pa.Table.from_pandas(df.iloc[a : a + step], schema=schema, preserve_index=False))
    else:
        path, stale = run_dir / "timeline.csv", run_dir / "timeline.parquet"
        # float_format=None writes repr(): shortest string that reads back to the same double
        df.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
    if stale.exists():
        stale.unlink()
    return path


def read_timeline(run_dir: Path) -> pd.DataFrame:
    """Read a run's timeline back (parquet preferred when both exist and pyarrow is importable)."""
    run_dir = Path(run_dir)
    pq, csv = run_dir / "timeline.parquet", run_dir / "timeline.csv"
    if pq.exists() and (have_pyarrow() or not csv.exists()):
        return normalize_timeline(pd.read_parquet(pq))
    if not csv.exists():
        raise FileNotFoundError(f"{run_dir}: no timeline.csv or timeline.parquet")
    header = pd.read_csv(csv, nrows=0).columns
    dtypes = {c: str for c in header if c in STRING_COLUMNS}
    na = {c: ["", "nan", "NaN"] for c in header if c not in STRING_COLUMNS}
    df = pd.read_csv(csv, dtype=dtypes, keep_default_na=False, na_values=na)
    return normalize_timeline(df)

