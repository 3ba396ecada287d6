"""``trace.json``: the timeline in Chrome's trace event format (opens in Perfetto / chrome://tracing).

Layout, as PyTorch's profiler writes it (``{"traceEvents": [...], "displayTimeUnit": "ms"}``):

- one process per simulated GPU, ``pid`` = the rank, named by its label; one more process
  named ``network`` (``pid`` = largest rank + 1) holding one thread per link;
- one thread per stream (``tid`` = a small integer, ``thread_name`` = the stream name); when
  intervals on one stream overlap (links shared by several transfers), the extra ones go to
  overflow threads ``<stream> #2``, ``#3``..., so no two complete events on a thread overlap;
- complete events (``ph: "X"``) with ``ts``/``dur`` in microseconds (rounded to the
  nanosecond), ``name`` = task, ``cat`` = phase, ``args`` = {layer, microbatch, stage, flops,
  bytes, kind, task_id} and, on communication streams, ``group``: the real ranks of the
  collective's group (Megatron's grid: tensor innermost, then context, data, pipeline) or
  the pipeline peer;
- link events carry only ``bytes``; when the timeline has more than
  :data:`LINK_DETAIL_LIMIT` link intervals (GPT-3 175B on 1,024 GPUs has 118k), each
  transfers close together on a link are coalesced into busy periods, the fewest merges
  that bring the link events under the limit (``args.transfers`` says how many,
  ``args.busy_us`` how long the link carried data), which keeps that trace near 25 MB;
- flow arrows (``ph: "s"``/``"f"``) from each pipeline send to the first compute task of the
  same microbatch on the receiving stage that starts after the send ends;
- counter events (``ph: "C"``) with each GPU's compute utilization in 200 bins, and on
  the network process each link class's mean utilization.

Top-level ``schemaVersion``, ``deviceProperties`` and ``distributedInfo`` follow PyTorch's
Kineto traces so that tools reading those (e.g. Holistic Trace Analysis) find them.
Events come in a fixed order and keys are sorted, so the same timeline gives the same bytes.
Reference: "Trace Event Format", Google (Duncan, Sahel), docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from simcluster.plan.grid import RankGrid
from simcluster.reporting.style import (
    gpu_rows,
    iteration_end,
    link_rows,
    rank_infos,
    stream_sort_key,
)
from simcluster.reporting.utilization import (
    compute_utilization_matrix,
    link_class_series,
    merge_intervals,
    time_bins,
)

US = 1e6
LINK_DETAIL_LIMIT = 20_000


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


def _complete_events(rows: pd.DataFrame, pid: int, tid: int, group: str | None = None) -> list[dict]:
    """``ph: "X"`` events of rows already sorted by start (link rows: ``args`` = bytes only)."""
    ts = _us(rows["start_s"].to_numpy())
    end = _us(rows["end_s"].to_numpy())
    dur = np.round(np.maximum(end - ts, 0.0), 3)
    cols = {c: rows[c].to_numpy() if c in rows else np.full(len(rows), -1) for c in
            ("task", "phase", "kind", "layer", "microbatch", "stage", "flops", "bytes", "task_id", "transfers",
             "busy_us")}
    out = []
    for i in range(len(rows)):
        if cols["kind"][i] == "link":
            args: dict = {"bytes": _num(round(float(cols["bytes"][i]), 3))}
            if _int(cols["transfers"][i]) > 1:
                args["transfers"] = _int(cols["transfers"][i])
                args["busy_us"] = _num(cols["busy_us"][i])
            out.append({"ph": "X", "pid": pid, "tid": tid, "ts": float(ts[i]), "dur": float(dur[i]),
                        "name": str(cols["task"][i]) or "transfer", "cat": "link", "args": args})
            continue
        args = {
            "kind": str(cols["kind"][i]), "layer": _int(cols["layer"][i]), "microbatch": _int(cols["microbatch"][i]),
            "stage": _int(cols["stage"][i]), "flops": _num(cols["flops"][i]), "bytes": _num(cols["bytes"][i]),
            "task_id": _int(cols["task_id"][i]),
        }
        if group:
            args["group"] = group
        out.append({"ph": "X", "pid": pid, "tid": tid, "ts": float(ts[i]), "dur": float(dur[i]),
                    "name": str(cols["task"][i]), "cat": str(cols["phase"][i]), "args": args})
    return out


def _ranks_text(ranks: list[int]) -> str:
    """``0–7`` for a contiguous run, ``0, 8, …, 120 (16 ranks, stride 8)`` otherwise."""
    if len(ranks) == 1:
        return str(ranks[0])
    stride = ranks[1] - ranks[0]
    if stride == 1:
        return f"{ranks[0]}–{ranks[-1]}"
    if len(ranks) <= 4:
        return ", ".join(map(str, ranks))
    return f"{ranks[0]}, {ranks[1]}, …, {ranks[-1]} ({len(ranks)} ranks, stride {stride})"


def stream_groups(config: dict | None, rank: int) -> dict[str, str]:
    """Per communication stream of ``rank``, the real ranks it talks to, from ``config["parallelism"]``
    (empty when the config does not say); groups from the plan's rank grid."""
    par = (config or {}).get("parallelism") or {}
    try:
        grid = RankGrid(int(par.get("tensor") or 1), int(par.get("context") or 1), int(par.get("data") or 1),
                        int(par.get("pipeline") or 1))
    except (TypeError, ValueError):
        return {}
    if not 0 <= rank < grid.size:
        return {}
    out: dict[str, str] = {}
    for dim, size, group in (("tp", grid.t, grid.tp_group), ("cp", grid.c, grid.cp_group),
                             ("dp", grid.d, grid.dp_group)):
        if size > 1:
            out[dim] = f"{dim} group: ranks {_ranks_text(list(group(rank)))}"
    pp, per = grid.coords(rank)[3], grid.per_stage
    if pp + 1 < grid.p:
        out["pp-fwd"] = f"pipeline: rank {rank} → {rank + per} (activations)"
    if pp > 0:
        out["pp-bwd"] = f"pipeline: rank {rank} → {rank - per} (gradients)"
    return out


def coalesce_links(links: pd.DataFrame, limit: int = LINK_DETAIL_LIMIT) -> pd.DataFrame:
    """At most about ``limit`` link events: per link, transfers that overlap, touch or are
    separated by less than the shortest gap that brings the count under ``limit`` are merged
    into one busy period (bytes summed; ``transfers`` = how many, ``busy_us`` = the time
    the link actually carried data)."""
    per_link = []
    for name, rows in links.groupby("resource", sort=True):
        rows = rows.sort_values(["start_s", "end_s"], kind="mergesort")
        st, en = rows["start_s"].to_numpy(), rows["end_s"].to_numpy()
        run_end = np.maximum.accumulate(en)
        gap = np.concatenate([[np.inf], st[1:] - run_end[:-1]])  # <= 0: overlapping or touching
        per_link.append((name, rows, st, run_end, gap))
    gaps = np.sort(np.concatenate([g[1:] for *_, g in per_link])) if per_link else np.zeros(0)
    excess = len(gaps) + len(per_link) - limit
    tol = max(0.0, float(gaps[excess - 1])) if 0 < excess <= len(gaps) else 0.0
    out = []
    for name, rows, st, run_end, gap in per_link:
        block = np.cumsum(gap > tol)
        s0, e0 = merge_intervals(st, run_end)  # the union, for busy time
        busy = np.diff(np.concatenate([[0.0], np.cumsum(e0 - s0)]))
        agg = pd.DataFrame({"start_s": st, "end_s": run_end, "bytes": rows["bytes"].to_numpy(), "block": block})
        agg = agg.groupby("block").agg(start_s=("start_s", "min"), end_s=("end_s", "max"), bytes=("bytes", "sum"),
                                       transfers=("bytes", "size"))
        # the union's pieces all fall inside one block: sum their lengths per block
        piece_block = block[np.searchsorted(st, s0, side="left")]
        agg["busy_us"] = np.round(pd.Series(busy).groupby(piece_block).sum().reindex(agg.index).to_numpy() * US, 3)
        agg["resource"], agg["stream"], agg["kind"] = str(name), str(rows["stream"].iloc[0]), "link"
        agg["task"] = [f"{n} transfers" if n > 1 else "transfer" for n in agg["transfers"]]
        agg["task_id"], agg["rank"], agg["phase"] = -1, -1, ""
        out.append(agg.reset_index(drop=True))
    return pd.concat(out, ignore_index=True) if out else links


def _stream_threads(rows: pd.DataFrame, pid: int, streams: list[str], tid0: int,
                    groups: dict[str, str] | None = None) -> tuple[list[dict], list[dict], dict, int]:
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
            events += _complete_events(srows[tracks == k], pid, tid, (groups or {}).get(stream))
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
        m, ev, _, _ = _stream_threads(rows, info.rank, streams, 0, stream_groups(config, info.rank))
        meta += m
        events += ev
    net_pid = (max(i.rank for i in infos) + 1) if infos else 0
    links = link_rows(timeline)
    coalesced = len(links) > LINK_DETAIL_LIMIT
    if coalesced:
        links = coalesce_links(links)
    if len(links):
        meta.append(_meta(net_pid, None, "process_name", "network"))
        meta.append(_meta(net_pid, None, "process_sort_index", len(infos)))
        tid = 0
        for name, lrows in links.groupby("resource", sort=True):
            lrows = lrows.assign(stream=str(name)[len("link:"):] + f" ({lrows['stream'].iloc[0]})")
            m, ev, _, tid = _stream_threads(lrows, net_pid, [str(lrows["stream"].iloc[0])], tid)
            meta += m
            events += ev

    flows = _flow_events(events, infos, meta)
    counters = _counter_events(timeline, summary, infos, bins)
    if len(links):
        counters += _link_counters(timeline, summary, config, details, net_pid, bins)
    other = {"generator": "simcluster", "time_unit": "us", "workload": str((config or {}).get("name", ""))}
    if coalesced:
        other["links"] = "overlapping or touching transfers on a link coalesced into busy periods"
    trace = {"schemaVersion": 1, "traceEvents": meta + events + flows + counters, "displayTimeUnit": "ms",
             "otherData": other, "distributedInfo": {"backend": "simulated", "rank": 0,
                                                       "world_size": int((summary or {}).get("num_gpus") or len(infos))}}
    device = ((config or {}).get("cluster") or {}).get("device")
    if isinstance(device, dict):
        trace["deviceProperties"] = [{"id": i.rank, "name": str(device.get("name", "")),
                                      "totalGlobalMem": _num(device.get("memory_bytes"))} for i in infos]
    return trace


def _flow_events(events: list[dict], infos: list, meta: list[dict]) -> list[dict]:
    """Arrows from each pipeline send to the next compute task of its microbatch on the receiving stage."""
    stage_of = {i.rank: i.stage for i in infos}
    thread = {(m["pid"], m["tid"]): m["args"]["name"] for m in meta if m["name"] == "thread_name"}
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
        stream = thread.get((ev["pid"], ev["tid"]), "").split(" #")[0]
        backward = stream == "pp-bwd" or (stream != "pp-fwd" and "bwd" in ev["name"].lower())
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


def _link_counters(timeline: pd.DataFrame, summary: dict | None, config: dict | None, details: dict | None,
                   pid: int, bins: int) -> list[dict]:
    """On the network process, one counter per link class: its mean utilization (% of capacity,
    or GB/s per link when a capacity is unknown), as in utilization.png panel (b)."""
    edges = time_bins(iteration_end(timeline, summary), bins)
    series, as_fraction = link_class_series(timeline, details, edges, config)
    ts = _us(edges)
    unit = "busy %" if as_fraction else "GB/s per link"
    out = []
    for cls, values in series.items():
        y = values * 100.0 if as_fraction else values / 1e9
        name = f"{cls} link utilization"
        out += [{"ph": "C", "pid": pid, "ts": float(ts[k]), "name": name, "args": {unit: round(float(y[k]), 3)}}
                for k in range(len(y))]
        out.append({"ph": "C", "pid": pid, "ts": float(ts[-1]), "name": name, "args": {unit: 0.0}})
    return out


def write_trace(path: Path, timeline: pd.DataFrame, summary: dict | None = None, config: dict | None = None,
                details: dict | None = None) -> None:
    """Write ``trace.json`` at ``path`` (compact, sorted keys, deterministic)."""
    trace = build_trace(timeline, summary, config, details)
    Path(path).write_text(json.dumps(trace, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
