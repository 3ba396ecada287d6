"""``trace.json``: the timeline in Chrome's trace event format (opens in Perfetto / chrome://tracing).

Layout, as PyTorch's profiler writes it (``{"traceEvents": [...], "displayTimeUnit": "ms"}``):

- one process per simulated GPU, ``pid`` = the rank, named by its label; one more process
  named ``network`` (``pid`` = largest rank + 1) holding one thread per link;
- one thread per stream (``tid`` = a small integer, ``thread_name`` = the stream name); when
  intervals on one stream overlap (links shared by several transfers), the extra ones go to
  overflow threads ``<stream> #2``, ``#3``..., so no two complete events on a thread overlap;
- complete events (``ph: "X"``) with ``ts``/``dur`` in microseconds (rounded to the
  nanosecond), ``name`` = task, ``cat`` = phase, ``args`` = {layer, microbatch, stage, flops,
  bytes, kind, task_id};
- flow arrows (``ph: "s"``/``"f"``) from each pipeline send to the first compute task of the
  same microbatch on the receiving stage that starts after the send ends;
- counter events (``ph: "C"``) with each GPU's compute utilization in 200 bins.

Events come in a fixed order and keys are sorted, so the same timeline gives the same bytes.
Reference: "Trace Event Format", Google (Duncan, Sahel), docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from simcluster.reporting.style import (
    gpu_rows,
    iteration_end,
    link_rows,
    rank_infos,
    stream_sort_key,
)
from simcluster.reporting.utilization import compute_utilization_matrix, time_bins

US = 1e6


def _us(x: np.ndarray) -> np.ndarray:
    """Seconds to microseconds rounded to the nanosecond."""
    return np.round(np.asarray(x, float) * US, 3)


def _int(v: object) -> int:
    """An int from a possibly-float/NaN label (NaN -> -1)."""
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return -1
    return int(f) if f == f else -1


def _num(v: object) -> float | int:
    """A JSON-safe number (NaN/inf -> 0, integral floats -> int)."""
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0
    if not np.isfinite(f):
        return 0
    return int(f) if f.is_integer() and abs(f) < 2**53 else f


def _assign_tracks(ts: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Greedy interval partitioning: track index per interval, no overlap on any track.

    ``ts``/``end`` must be sorted by ``ts``. Touching intervals (end == next start) share a track.
    """
    track_end: list[float] = []
    out = np.zeros(len(ts), dtype=int)
    for i, (s, e) in enumerate(zip(ts, end)):
        for k, te in enumerate(track_end):
            if s >= te:
                track_end[k] = e
                out[i] = k
                break
        else:
            track_end.append(e)
            out[i] = len(track_end) - 1
    return out


def _meta(pid: int, tid: int | None, name: str, value: object) -> dict:
    """A metadata (``ph: "M"``) event."""
    key = "sort_index" if name.endswith("sort_index") else "name"
    ev: dict = {"ph": "M", "pid": pid, "name": name, "args": {key: value}}
    if tid is not None:
        ev["tid"] = tid
    return ev


def _complete_events(rows: pd.DataFrame, pid: int, tid: int) -> list[dict]:
    """``ph: "X"`` events of rows already sorted by start."""
    ts = _us(rows["start_s"].to_numpy())
    end = _us(rows["end_s"].to_numpy())
    dur = np.round(np.maximum(end - ts, 0.0), 3)
    cols = {c: rows[c].to_numpy() if c in rows else np.full(len(rows), -1) for c in
            ("task", "phase", "kind", "layer", "microbatch", "stage", "flops", "bytes", "task_id", "stream")}
    out = []
    for i in range(len(rows)):
        out.append({
            "ph": "X", "pid": pid, "tid": tid, "ts": float(ts[i]), "dur": float(dur[i]),
            "name": str(cols["task"][i]), "cat": str(cols["phase"][i]),
            "args": {
                "kind": str(cols["kind"][i]), "layer": _int(cols["layer"][i]), "microbatch": _int(cols["microbatch"][i]),
                "stage": _int(cols["stage"][i]), "flops": _num(cols["flops"][i]), "bytes": _num(cols["bytes"][i]),
                "task_id": _int(cols["task_id"][i]), "stream": str(cols["stream"][i]),
            },
        })
    return out


def _stream_threads(rows: pd.DataFrame, pid: int, streams: list[str], tid0: int) -> tuple[list[dict], list[dict], dict, int]:
    """Metadata and X events for the streams of one process; also ``{(stream, track): tid}``."""
    meta: list[dict] = []
    events: list[dict] = []
    tids: dict[tuple[str, int], int] = {}
    tid = tid0
    for stream in streams:
        srows = rows[rows["stream"].astype(str) == stream].sort_values(["start_s", "end_s", "task_id"], kind="mergesort")
        tracks = _assign_tracks(_us(srows["start_s"].to_numpy()), _us(srows["end_s"].to_numpy()))
        for k in range(int(tracks.max()) + 1 if len(tracks) else 1):
            tids[(stream, k)] = tid
            meta.append(_meta(pid, tid, "thread_name", stream if k == 0 else f"{stream} #{k + 1}"))
            meta.append(_meta(pid, tid, "thread_sort_index", tid))
            events += _complete_events(srows[tracks == k], pid, tid)
            tid += 1
    return meta, events, tids, tid


def build_trace(timeline: pd.DataFrame, summary: dict | None = None, config: dict | None = None,
                details: dict | None = None, bins: int = 200) -> dict:
    """The trace as a JSON-ready dict (see the module docstring)."""
    infos = rank_infos(timeline, details)
    g = gpu_rows(timeline)
    meta: list[dict] = []
    events: list[dict] = []
    where: dict[tuple[int, str], list[tuple[float, float, int]]] = {}
    for order, info in enumerate(infos):
        rows = g[g["rank"] == info.rank]
        meta.append(_meta(info.rank, None, "process_name", f"GPU {info.rank}: {info.label}"))
        meta.append(_meta(info.rank, None, "process_sort_index", order))
        streams = sorted(set(rows["stream"].astype(str)), key=stream_sort_key)
        m, ev, _, _ = _stream_threads(rows, info.rank, streams, 0)
        meta += m
        events += ev
    net_pid = (max(i.rank for i in infos) + 1) if infos else 0
    links = link_rows(timeline)
    if len(links):
        meta.append(_meta(net_pid, None, "process_name", "network"))
        meta.append(_meta(net_pid, None, "process_sort_index", len(infos)))
        tid = 0
        for name, lrows in links.groupby("resource", sort=True):
            lrows = lrows.assign(stream=str(name)[len("link:"):] + f" ({lrows['stream'].iloc[0]})")
            m, ev, _, tid = _stream_threads(lrows, net_pid, [str(lrows["stream"].iloc[0])], tid)
            meta += m
            events += ev

    flows = _flow_events(events, infos)
    counters = _counter_events(timeline, summary, infos, bins)
    return {"traceEvents": meta + events + flows + counters, "displayTimeUnit": "ms",
            "otherData": {"generator": "simcluster", "time_unit": "us"}}


def _flow_events(events: list[dict], infos: list) -> list[dict]:
    """Arrows from each pipeline send to the next compute task of its microbatch on the receiving stage."""
    stage_of = {i.rank: i.stage for i in infos}
    stages = sorted({s for s in stage_of.values() if s >= 0})
    if len(stages) < 2:
        return []
    compute_by_stage: dict[tuple[int, int], list[dict]] = {}
    for ev in events:
        if ev["pid"] in stage_of and ev["cat"] in ("forward", "backward", "recompute", "weight_grad") and ev["args"]["microbatch"] >= 0:
            compute_by_stage.setdefault((stage_of[ev["pid"]], ev["args"]["microbatch"]), []).append(ev)
    out: list[dict] = []
    fid = 0
    for ev in events:
        a = ev["args"]
        if ev["cat"] != "pp_comm" or a["kind"] != "send" or ev["pid"] not in stage_of:
            continue
        src = stage_of[ev["pid"]] if a["stage"] < 0 else a["stage"]
        if src not in stages:
            continue
        backward = a["stream"] == "pp-bwd" or (a["stream"] != "pp-fwd" and "bwd" in ev["name"].lower())
        dst = stages[(stages.index(src) + (-1 if backward else 1)) % len(stages)]
        want = ("backward", "recompute", "weight_grad") if backward else ("forward",)
        send_end = ev["ts"] + ev["dur"]
        cands = [c for c in compute_by_stage.get((dst, a["microbatch"]), []) if c["cat"] in want and c["ts"] >= send_end - 1e-3]
        if not cands:
            continue
        tgt = min(cands, key=lambda c: (c["ts"], c["pid"], c["tid"]))
        fid += 1
        out.append({"ph": "s", "id": fid, "pid": ev["pid"], "tid": ev["tid"], "ts": ev["ts"], "name": "pipeline p2p",
                    "cat": "pp_flow"})
        out.append({"ph": "f", "bp": "e", "id": fid, "pid": tgt["pid"], "tid": tgt["tid"], "ts": tgt["ts"],
                    "name": "pipeline p2p", "cat": "pp_flow"})
    return out


def _counter_events(timeline: pd.DataFrame, summary: dict | None, infos: list, bins: int) -> list[dict]:
    """Per GPU, a ``compute utilization`` counter sampled at each bin's start (and 0 at the end)."""
    if not infos:
        return []
    t_end = iteration_end(timeline, summary)
    edges = time_bins(t_end, bins)
    mat = compute_utilization_matrix(timeline, [i.rank for i in infos], edges)
    ts = _us(edges)
    out = []
    for i, info in enumerate(infos):
        for k in range(len(edges) - 1):
            out.append({"ph": "C", "pid": info.rank, "ts": float(ts[k]), "name": "compute utilization",
                        "args": {"busy %": round(float(mat[i, k]) * 100.0, 3)}})
        out.append({"ph": "C", "pid": info.rank, "ts": float(ts[-1]), "name": "compute utilization",
                    "args": {"busy %": 0.0}})
    return out


def write_trace(path: Path, timeline: pd.DataFrame, summary: dict | None = None, config: dict | None = None,
                details: dict | None = None) -> None:
    """Write ``trace.json`` at ``path`` (compact, sorted keys, deterministic)."""
    trace = build_trace(timeline, summary, config, details)
    Path(path).write_text(json.dumps(trace, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
