"""What the two trace writers share: the GPU rows as arrays, the bounded window, JSON text.

Both writers (:mod:`simcluster.reporting.trace`, the Perfetto overview, and
:mod:`simcluster.reporting.kineto`, one Kineto trace per rank) write their JSON by hand,
one event per line: the text of every name is escaped once per distinct name, numbers are
formatted with fixed precision (microseconds to the nanosecond), so the same timeline
always gives the same bytes and a million events take about a second.

Bounded by default: :func:`choose_window` keeps the iteration from its start up to the
instant when a budget of GPU intervals is spent (the whole iteration when it fits); the
files say which window they hold and how to get the whole iteration.
"""

from __future__ import annotations

import gzip
import json
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simcluster.plan.grid import RankGrid

US = 1e6


@dataclass
class TextColumn:
    """A text column as integer codes and the JSON text (quoted, escaped) of each code."""

    codes: np.ndarray
    text: list[str]
    json: list[str]

    def value(self, i: int) -> str:
        return self.text[self.codes[i]]

    def equals(self, text: str, rows: np.ndarray | slice) -> np.ndarray:
        """Whether each of ``rows`` holds ``text`` (a code of -1, a missing value, holds nothing)."""
        hit = np.array([t == text for t in self.text] + [False])
        return hit[self.codes[rows]]


def text_column(col: pd.Series) -> TextColumn:
    """Codes and texts of a categorical or plain text column."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        text = [str(c) for c in col.cat.categories]
    else:
        codes, uniques = pd.factorize(col.astype(str), sort=True)
        text = [str(u) for u in uniques]
    return TextColumn(np.asarray(codes), text, [json.dumps(t, ensure_ascii=False) for t in text])


@dataclass
class GpuTable:
    """The timeline's GPU rows sorted by (rank, start, end, task_id), as arrays."""

    rank: np.ndarray
    start: np.ndarray
    end: np.ndarray
    layer: np.ndarray
    microbatch: np.ndarray
    stage: np.ndarray
    task_id: np.ndarray
    flops: np.ndarray
    nbytes: np.ndarray
    stream: TextColumn
    task: TextColumn
    phase: TextColumn
    kind: TextColumn
    spans: dict[int, slice]


def gpu_table(timeline: pd.DataFrame) -> GpuTable:
    """Sort the GPU rows once; every writer slices them per rank."""
    if timeline.empty:
        idx = np.zeros(0, dtype=np.int64)
    else:
        rank = timeline["rank"].to_numpy()
        idx = np.flatnonzero(rank >= 0)
        keys = (timeline["task_id"].to_numpy()[idx], timeline["end_s"].to_numpy()[idx],
                timeline["start_s"].to_numpy()[idx], rank[idx])
        idx = idx[np.lexsort(keys)]

    def num(c: str, dtype: type) -> np.ndarray:  # only the columns the writers read, rows taken once
        return timeline[c].to_numpy(dtype=dtype)[idx] if len(idx) else np.zeros(0, dtype=dtype)

    def text(c: str) -> TextColumn:
        col = timeline[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            whole = text_column(col)
            return TextColumn(whole.codes[idx], whole.text, whole.json)
        return text_column(col.iloc[idx])

    rank = num("rank", np.int64)
    cuts = np.flatnonzero(np.diff(rank)) + 1
    bounds = np.concatenate([[0], cuts, [len(rank)]]).astype(int)
    spans = {int(rank[a]): slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a}
    return GpuTable(rank, num("start_s", float), num("end_s", float), num("layer", np.int64),
                    num("microbatch", np.int64), num("stage", np.int64), num("task_id", np.int64),
                    num("flops", float), num("bytes", float), text("stream"), text("task"), text("phase"), text("kind"),
                    spans)


def choose_window(starts: np.ndarray, t_end: float, budget: int | None) -> tuple[float, float, bool]:
    """``(t0, t1, bounded)``: the whole iteration when at most ``budget`` intervals start in it
    (or ``budget`` is None), else from 0 to the start of the ``budget``-th interval."""
    if budget is None or len(starts) <= budget:
        return 0.0, t_end, False
    s = np.sort(starts)
    t1 = float(s[budget])
    return 0.0, (t1 if t1 > 0 else t_end), t1 > 0


def us(x: float) -> str:
    """Seconds as microseconds with nanosecond precision, trailing zeros kept (deterministic)."""
    return f"{x * US:.3f}"


def num(v: float) -> str:
    """A JSON number: integral values as integers, others in shortest round-trip form."""
    f = float(v)
    if not np.isfinite(f):
        return "0"
    return str(int(f)) if f.is_integer() and abs(f) < 2**53 else repr(f)


def ints(values: np.ndarray) -> list[str]:
    """Numbers as JSON text: integral values as integers, others in shortest round-trip form."""
    return [str(int(v)) if v == int(v) and abs(v) < 2**53 else repr(v)
            for v in np.nan_to_num(np.asarray(values, float), posinf=0.0, neginf=0.0).tolist()]


def write_json_text(path: Path, head: dict, events: list[str], gzip_it: bool,
                    executor: Executor | None = None) -> Path:
    """Write ``{**head, "traceEvents": [events...]}`` with one event per line (``head`` first, so
    tools that read the first lines, like HolisticTraceAnalysis's rank lookup, find it);
    gzip to ``path`` + ``.gz`` when asked. With an ``executor`` the compression and the write
    run there (zlib and file writes release the GIL). Returns the path written."""
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False, sort_keys=True)},")
    lines.append('"traceEvents": [')
    text = "\n".join(lines) + "\n" + ",\n".join(events) + "\n]}\n"
    out = path.with_name(path.name + ".gz") if gzip_it else path
    if executor is not None:
        executor.submit(_write_bytes, out, text, gzip_it)
    else:
        _write_bytes(out, text, gzip_it)
    return out


def _write_bytes(out: Path, text: str, gzip_it: bool) -> None:
    data = text.encode("utf-8")
    if gzip_it:
        with open(out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1,
                                                   mtime=0) as fh:
            fh.write(data)
    else:
        out.write_bytes(data)


COLLECTIVE = {"all_reduce": ("AllReduce", "allreduce"), "all_gather": ("AllGather", "_allgather_base"),
              "reduce_scatter": ("ReduceScatter", "_reduce_scatter_base"), "send": ("SendRecv", "send"),
              "recv": ("SendRecv", "recv"), "all_to_all": ("SendRecv", "all_to_all"),
              "broadcast": ("Broadcast", "broadcast")}


def collective_of(task: str, kind: str) -> tuple[str, str]:
    """``(NCCL kernel suffix, PyTorch collective name)`` of a communication task."""
    if kind == "send" or task.startswith("send"):
        return COLLECTIVE["send"]
    head = task.split(" ", 1)[0]
    op = head.split(".", 1)[1] if "." in head else head
    return COLLECTIVE.get(op, ("AllReduce", op or "allreduce"))


def overflow_tracks(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Per interval (sorted by start), an overflow track so that none overlaps on a track."""
    out = np.zeros(len(start), dtype=np.int64)
    if len(start) < 2 or (start[1:] >= np.maximum.accumulate(end)[:-1]).all():
        return out
    track_end: list[float] = []
    for i, (s, e) in enumerate(zip(start.tolist(), end.tolist())):
        for k, te in enumerate(track_end):
            if s >= te:
                track_end[k], out[i] = e, k
                break
        else:
            track_end.append(e)
            out[i] = len(track_end) - 1
    return out


def rank_groups(config: dict | None, rank: int) -> dict[str, list[int]]:
    """The real ranks of each of ``rank``'s communicators (Megatron's grid)."""
    par = (config or {}).get("parallelism") or {}
    try:
        grid = RankGrid(int(par.get("tensor") or 1), int(par.get("context") or 1), int(par.get("data") or 1),
                        int(par.get("pipeline") or 1))
    except (TypeError, ValueError):
        return {}
    if not 0 <= rank < grid.size:
        return {}
    per, pp = grid.per_stage, grid.coords(rank)[3]
    first = rank - pp * per
    return {"tp": list(grid.tp_group(rank)), "cp": list(grid.cp_group(rank)), "dp": list(grid.dp_group(rank)),
            "zero": list(grid.dp_group(rank)), "embedding": [first, first + (grid.p - 1) * per],
            "pp-fwd": [rank, rank + per], "pp-bwd": [rank - per, rank]}
