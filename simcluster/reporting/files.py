"""Everything a run writes to its folder, and re-drawing a finished run from it.

Files (CONTRACT.md, "What a run writes" and its additions): ``summary.json``,
``config.json``, ``details.json``, ``timeline.parquet`` (when pyarrow is importable; CSV on
request), ``gantt.png`` (:mod:`~simcluster.reporting.gantt`), ``schedule.png``
(:mod:`~simcluster.reporting.schedule`), ``utilization.png``, ``memory.png``, ``trace.json``
(the Perfetto overview, bounded to a window by default), ``traces/rank<N>.json[.gz]`` (one
Kineto trace per simulated rank, :mod:`~simcluster.reporting.kineto`) and ``report.html``.
Which of them a run writes is chosen by ``outputs`` (:data:`OUTPUTS`); ``report --window``
writes ``gantt-<start>-<end>.png`` beside the full chart.

Determinism: the tables' bytes are :mod:`simcluster.reporting.tables`' (JSON and the timeline,
re-exported here), the pictures' are their modules'.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from simcluster.reporting.tables import (FLOAT_COLUMNS, INT_COLUMNS, STRING_COLUMNS, TIMELINE_COLUMNS, as_frame,
                                         have_pyarrow, normalize_timeline, read_json, read_timeline, to_jsonable,
                                         write_json, write_timeline)

__all__ = ["DRAWN_FILES", "DRAWN_OUTPUTS", "FLOAT_COLUMNS", "IMAGE_FILES", "INT_COLUMNS", "OUTPUTS", "STRING_COLUMNS",
           "TIMELINE_COLUMNS", "as_frame", "draw_all", "have_pyarrow", "normalize_timeline", "read_json",
           "read_timeline", "redraw", "to_jsonable", "window_name", "write_json", "write_run", "write_timeline"]

IMAGE_FILES = ("gantt.png", "schedule.png", "utilization.png", "memory.png")
DRAWN_FILES = IMAGE_FILES + ("trace.json", "report.html")
#: What ``write_run(outputs=...)`` may write (``--outputs`` of the run command).
OUTPUTS = ("summary", "timeline", "plots", "trace", "html")
DRAWN_OUTPUTS = ("plots", "trace", "html")
#: GPU intervals in the per-rank traces over all ranks, when bounded (GPT-3 175B on 1,024 GPUs has
#: ~115k: its traces hold the whole iteration).
RANK_TRACE_BUDGET = 120_000


Progress = Callable[[Path, float], None]


def window_name(window: tuple[float, float]) -> str:
    """``gantt-<start>-<end>.png`` for a window in seconds (6 significant digits)."""
    return f"gantt-{window[0]:.6g}-{window[1]:.6g}.png"


def _timed(path: Path, progress: Progress | None, make: Callable[[], Any]) -> Any:
    t = time.perf_counter()
    out = make()
    if progress is not None:
        progress(path, time.perf_counter() - t)
    return out


#: The plots a forked drawing child draws, while this process draws :data:`HERE` and writes the
#: traces (and, on a thread, the timeline file): about half the work each on the 1T run
#: (schedule 0.9 + utilization 0.75 + memory 0.4 CPU-s there; Gantt 0.65 + traces 1.3 here).
#: One child, not one per plot: the machine has two cores, and with the scheduler's
#: autogroups a busy machine gives a run's processes one share however many there are, so
#: more children would only add their overhead.
CHILD = ("schedule.png", "utilization.png", "memory.png")
HERE = ("gantt.png",)


def _plots(run_dir: Path, names: tuple[str, ...], timeline: pd.DataFrame, summary: dict, config: dict,
           details: dict, gpu: Any) -> list[tuple[str, float]]:
    """Draw the plots ``names`` (``(path, seconds)`` each)."""
    from simcluster.reporting.gantt import draw_gantt
    from simcluster.reporting.memory import draw_memory
    from simcluster.reporting.schedule import draw_schedule
    from simcluster.reporting.utilization import draw_utilization

    draws: dict[str, Callable[..., Any]] = {
        "gantt.png": lambda *a: draw_gantt(*a, gpu=gpu), "memory.png": draw_memory, "schedule.png": draw_schedule,
        "utilization.png": lambda *a: draw_utilization(*a, gpu=gpu)}
    out = []
    for name in names:
        t = time.perf_counter()
        draws[name](run_dir / name, timeline, summary, config, details)
        out.append((str(run_dir / name), time.perf_counter() - t))
    return out


def draw_all(run_dir: Path, timeline: pd.DataFrame, summary: dict, config: dict, details: dict, *,
             outputs: Iterable[str] = OUTPUTS, trace_scope: str = "bounded", progress: Progress | None = None,
             write_table: Callable[[], Path] | None = None) -> list[Path]:
    """(Re)draw the plots, the traces and the page of ``outputs`` (see :data:`OUTPUTS`) in ``run_dir``;
    returns the paths written (all complete). ``trace_scope``: ``bounded`` (default) or ``full``.

    Two cores at work: the plots of :data:`CHILD` are drawn by a forked child
    (:mod:`simcluster.reporting.parallel`; in this process, at the end, where forking is not
    possible) while this process draws those of :data:`HERE` and writes the traces;
    ``write_table`` (the timeline file) and the trace files' compression run on a thread
    (pyarrow and zlib release the GIL). The page comes last: it embeds the plots.
    """
    from simcluster.reporting import gantt, memory, parallel, schedule, utilization  # noqa: F401 (imported once, before forking)
    from simcluster.reporting.shares import gpu_arrays

    run_dir = Path(run_dir)
    wanted = _check(outputs)
    gpu = gpu_arrays(timeline) if "plots" in wanted else None  # the children draw from these arrays
    plots = "plots" in wanted
    side = parallel.start(lambda: _plots(run_dir, CHILD, timeline, summary, config, details, gpu)) \
        if plots else None  # forked before any thread starts
    try:
        with ThreadPoolExecutor(max_workers=1) as io:
            table = io.submit(_timed, run_dir / "timeline", progress, write_table) if write_table else None
            here = _plots(run_dir, HERE, timeline, summary, config, details, gpu) if plots else []
            written, info = _traces(run_dir, timeline, summary, config, details, wanted, trace_scope, progress, io)
            if table is not None:
                written.insert(0, table.result())
        for path, seconds in here + (side.join() if side is not None else []):
            written.append(Path(path))
            if progress is not None:
                progress(Path(path), seconds)
    except BaseException:
        if side is not None:
            side.cancel()
        raise
    if "html" in wanted:
        from simcluster.reporting.html import write_html

        _timed(run_dir / "report.html", progress, lambda: write_html(run_dir / "report.html", summary, config, details,
                                                                      traces=info))
        written.append(run_dir / "report.html")
    return written


def _traces(run_dir: Path, timeline: pd.DataFrame, summary: dict, config: dict, details: dict, wanted: set[str],
            trace_scope: str, progress: Progress | None, executor: Executor) -> tuple[list[Path], dict[str, Any]]:
    """This process's share of :func:`draw_all`: ``trace.json`` and ``traces/``."""
    from simcluster.reporting.kineto import write_rank_traces
    from simcluster.reporting.style import iteration_end, rank_infos
    from simcluster.reporting.trace import write_trace
    from simcluster.reporting.tracefmt import choose_window, gpu_table
    from simcluster.reporting.utilization import link_capacities

    written: list[Path] = []
    info: dict[str, Any] = {}
    if "trace" in wanted:
        table = gpu_table(timeline)
        caps = link_capacities(details, config)
        t0, t1, bounded = _timed(run_dir / "trace.json", progress, lambda: write_trace(
            run_dir / "trace.json", timeline, summary, config, details, scope=trace_scope, table=table, caps=caps,
            executor=executor))
        info["trace_window"] = (t0, t1, bounded)
        written.append(run_dir / "trace.json")
        t_iter = iteration_end(timeline, summary)
        k0, k1, kb = choose_window(table.start, t_iter, None if trace_scope == "full" else RANK_TRACE_BUDGET)
        note = (f"the first {k1:.6g} s of the {t_iter:.6g} s iteration ({RANK_TRACE_BUDGET:,} GPU intervals over all "
                "ranks); write_run(..., trace_scope='full') writes the whole iteration") if kb else None
        paths = _timed(run_dir / "traces", progress, lambda: write_rank_traces(
            run_dir / "traces", table, rank_infos(timeline, details), k0, k1,
            world=int(summary.get("num_gpus") or 1), config=config, bounded_note=note, executor=executor))
        info["rank_traces"] = (k0, k1, kb, [p.name for p in paths])
        written += paths
    return written, info


@contextmanager
def older_objects_frozen() -> Iterator[None]:
    """Keep the cyclic garbage collector off the objects that exist now (the simulation's task
    graph, topology, timeline) while the reports are written, then hand them back.

    Writing the reports allocates millions of short-lived objects; every collection of the
    oldest generation would otherwise walk the whole simulation again (~0.2 CPU-s on the
    1T run), and a forked drawing child (:mod:`simcluster.reporting.parallel`) would copy
    every page whose objects it walks. New objects are still collected. Nothing happens
    when something else has frozen objects already (``gc.get_freeze_count()``).
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _check(outputs: Iterable[str]) -> set[str]:
    wanted = {str(o).strip() for o in outputs if str(o).strip()}
    unknown = wanted - set(OUTPUTS)
    if unknown:
        raise ValueError(f"unknown outputs {sorted(unknown)}; choose from {', '.join(OUTPUTS)}")
    return wanted


def write_run(run_dir: Path, timeline: Any, summary: dict, config: dict, details: dict | None = None, *,
              outputs: Iterable[str] = OUTPUTS, timeline_format: str = "auto", trace_scope: str = "bounded",
              progress: Progress | None = None) -> list[Path]:
    """Write what a run produces into ``run_dir`` (created if needed); returns the paths written.

    ``summary.json``, ``config.json`` and ``details.json`` always (``redraw`` needs them); then
    the ``outputs`` asked for (default all of :data:`OUTPUTS`): ``timeline`` (``timeline_format``:
    ``auto`` = Parquet when pyarrow is importable, ``parquet`` or ``csv``), ``plots``, ``trace``
    (``trace.json`` and ``traces/``; ``trace_scope`` ``bounded`` or ``full``) and ``html``.
    ``progress(path, seconds)`` is called after each file (the CLI prints it).
    """
    with older_objects_frozen():
        return _write_run(Path(run_dir), timeline, summary, config, details, outputs=_check(outputs),
                          timeline_format=timeline_format, trace_scope=trace_scope, progress=progress)


def _write_run(run_dir: Path, timeline: Any, summary: dict, config: dict, details: dict | None, *,
               outputs: set[str], timeline_format: str, trace_scope: str, progress: Progress | None
               ) -> list[Path]:
    """:func:`write_run`'s work."""
    wanted = outputs
    run_dir.mkdir(parents=True, exist_ok=True)
    summary = to_jsonable(summary or {})
    config = to_jsonable(config or {})
    details = to_jsonable(details or {})
    written = []
    for name, obj in (("summary.json", summary), ("config.json", config), ("details.json", details)):
        write_json(run_dir / name, obj)
        written.append(run_dir / name)
    frame = normalize_timeline(timeline)
    table = (lambda: write_timeline(run_dir, frame, timeline_format)) if "timeline" in wanted else None
    return written + draw_all(run_dir, frame, summary, config, details, outputs=wanted - {"summary", "timeline"},
                              trace_scope=trace_scope, progress=progress, write_table=table)


def redraw(run_dir: Path, window: tuple[float, float] | None = None, *, outputs: Iterable[str] = DRAWN_OUTPUTS,
           trace_scope: str = "bounded", progress: Progress | None = None) -> list[Path]:
    """Re-read a finished run's saved files and regenerate its plots, traces and page (no
    simulation); returns the paths written.

    With ``window`` (seconds), only the Gantt chart of that part of the iteration is drawn, as
    ``gantt-<start>-<end>.png`` beside the full chart (nothing else is touched). Raises
    ``FileNotFoundError`` when the folder has no timeline or no ``summary.json``, ``ValueError``
    when the window lies outside the iteration.
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
    if window is not None:
        from simcluster.reporting.gantt import draw_gantt
        from simcluster.reporting.style import iteration_end

        a, b = float(window[0]), min(float(window[1]), iteration_end(timeline, summary))
        if not b > a:
            raise ValueError(f"window {window} lies outside the iteration (0 to {b:.6g} s)")
        path = run_dir / window_name((a, b))
        _timed(path, progress, lambda: draw_gantt(path, timeline, summary, config, details, window=(a, b)))
        return [path]
    with older_objects_frozen():
        return draw_all(run_dir, timeline, summary, config, details, outputs=outputs, trace_scope=trace_scope,
                        progress=progress)
