"""Everything a run writes to its folder, and re-drawing a finished run from it.

Files (CONTRACT.md, "What a run writes"): ``summary.json``, ``config.json``,
``details.json``, ``timeline.parquet`` (when pyarrow is importable) or ``timeline.csv``,
``gantt.png`` and ``gantt.svg``, ``utilization.png``, ``memory.png``, ``trace.json``, ``report.html``.

Determinism: JSON with sorted keys, indent 2, a trailing newline, non-finite numbers as
``null``; the CSV writes floats in their shortest round-trip form (``repr``), so reading it
back gives the same values bit for bit and the same DataFrame gives the same bytes.
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
    "start_s", "end_s", "flops", "bytes",
)
STRING_COLUMNS = ("resource", "stream", "task", "kind", "phase")
INT_COLUMNS = ("rank", "task_id", "stage", "microbatch", "layer")
FLOAT_COLUMNS = ("start_s", "end_s", "flops", "bytes")
IMAGE_FILES = ("gantt.png", "utilization.png", "memory.png")
DRAWN_FILES = ("gantt.png", "gantt.svg", "utilization.png", "memory.png", "trace.json", "report.html")


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


def normalize_timeline(timeline: Any) -> pd.DataFrame:
    """The timeline with the schema's columns first (missing ones filled with defaults), a fresh index
    and the schema's dtypes; extra columns follow in their order."""
    df = as_frame(timeline).reset_index(drop=True).copy()
    for c in TIMELINE_COLUMNS:
        if c not in df:
            df[c] = "" if c in STRING_COLUMNS else (-1 if c in INT_COLUMNS else 0.0)
    for c in STRING_COLUMNS:
        df[c] = df[c].astype(str)
    for c in INT_COLUMNS:
        df[c] = pd.to_numeric(df[c], errors="coerce").fillna(-1).astype("int64")
    for c in FLOAT_COLUMNS:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    extra = [c for c in df.columns if c not in TIMELINE_COLUMNS]
    return df[list(TIMELINE_COLUMNS) + extra]


def write_timeline(run_dir: Path, timeline: Any) -> Path:
    """Write ``timeline.parquet`` (pyarrow importable) or ``timeline.csv``; return its path.

    The other format's stale file, if any, is removed so that :func:`read_timeline` reads this one.
    """
    run_dir = Path(run_dir)
    df = normalize_timeline(timeline)
    if have_pyarrow():
        path, stale = run_dir / "timeline.parquet", run_dir / "timeline.csv"
        df.to_parquet(path, index=False, engine="pyarrow", compression="snappy")
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


def draw_all(run_dir: Path, timeline: pd.DataFrame, summary: dict, config: dict, details: dict,
             window: tuple[float, float] | None = None) -> None:
    """(Re)draw the files of :data:`DRAWN_FILES` in ``run_dir``.

    ``window`` (seconds) limits the Gantt chart (PNG and SVG) to that part of the iteration;
    the other plots always show the whole iteration.
    """
    from simcluster.reporting.gantt import draw_gantt
    from simcluster.reporting.html import write_html
    from simcluster.reporting.memory import draw_memory
    from simcluster.reporting.trace import write_trace
    from simcluster.reporting.utilization import draw_utilization

    run_dir = Path(run_dir)
    draw_gantt(run_dir / "gantt.png", timeline, summary, config, details, window=window,
               svg_path=run_dir / "gantt.svg")
    draw_utilization(run_dir / "utilization.png", timeline, summary, config, details)
    draw_memory(run_dir / "memory.png", timeline, summary, config, details)
    write_trace(run_dir / "trace.json", timeline, summary, config, details)
    write_html(run_dir / "report.html", summary, config, details, window=window)


def write_run(run_dir: Path, timeline: Any, summary: dict, config: dict, details: dict | None = None) -> None:
    """Write everything a run produces into ``run_dir`` (created if needed).

    ``summary.json``, ``config.json``, ``details.json``, the timeline, then the drawn files
    (see :func:`draw_all`). The plots are drawn from the same normalized timeline that is
    saved, so :func:`redraw` reproduces them.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    summary = to_jsonable(summary or {})
    config = to_jsonable(config or {})
    details = to_jsonable(details or {})
    write_json(run_dir / "summary.json", summary)
    write_json(run_dir / "config.json", config)
    write_json(run_dir / "details.json", details)
    frame = normalize_timeline(timeline)
    write_timeline(run_dir, frame)
    draw_all(run_dir, frame, summary, config, details)


def redraw(run_dir: Path, window: tuple[float, float] | None = None) -> None:
    """Re-read a finished run's saved files and regenerate its plots, trace and page (no simulation).

    ``window``: see :func:`draw_all`. Raises ``FileNotFoundError`` when the folder has no
    timeline or no ``summary.json``.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run folder")
    summary = read_json(run_dir / "summary.json")
    if summary is None:
        raise FileNotFoundError(f"{run_dir}: no summary.json")
    timeline = read_timeline(run_dir)
    config = read_json(run_dir / "config.json", {}) or {}
    details = read_json(run_dir / "details.json", {}) or {}
    draw_all(run_dir, timeline, summary, config, details, window=window)
