"""``trace.json``: an overview of the run in Chrome's trace event format, for Perfetto.

Every simulated GPU in one file (the per-rank Kineto traces for analysis tools are in
``traces/``, :mod:`simcluster.reporting.kineto`):

- one process per simulated GPU, ``pid`` = its rank, named by its label; one thread per
  stream (``compute``, ``tp``, ``cp``, ``pp-fwd``, ``pp-bwd``, ``dp``), intervals that overlap
  on a stream going to overflow threads (``dp #2``); complete events (``ph: "X"``, ``ts``/``dur``
  in microseconds to the nanosecond), ``name`` = task, ``cat`` = phase, ``args`` = kind, layer,
  microbatch, stage, flops, bytes, task_id and, on communication streams, the group;
- flow arrows from each pipeline send to the first pass of its microbatch on the
  receiving stage that starts after it;
- counter tracks: each GPU's compute utilization (host work, phase ``host``, is not busy), and on the ``network`` process
  (``pid`` = the world size + 1, so it never collides with a rank) each recorded link's
  utilization (% of its capacity, GB/s where unknown): links are counters, not slices;
- bounded by default: from the iteration's start until :data:`BUDGET` GPU intervals have
  begun (the whole iteration when they fit); ``otherData.window_s`` and ``otherData.bounded``
  say what the file holds, and ``trace_scope="full"`` writes the whole iteration.

Events come in a fixed order with fixed number formats: the same timeline gives the same bytes.
Reference: "Trace Event Format", Google (Duncan, Sahel), docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU.
"""

from __future__ import annotations

import json
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import pandas as pd

from simcluster.plan.steps import HOST_PHASE
from simcluster.reporting.bins import busy_fraction_per_bin, bytes_per_bin
from simcluster.reporting.shares import text_codes
from simcluster.reporting.style import iteration_end, link_rows, rank_infos, stream_sort_key
from simcluster.reporting.tracefmt import (
    GpuTable,
    choose_window,
    gpu_table,
    ints,
    num,
    overflow_tracks,
    rank_groups,
    us,
    write_json_text,
)

BUDGET = 40_000  # GPU intervals in a bounded trace.json
COUNTER_EVENTS = 40_000  # link counter samples, over all links


def _ranks_text(ranks: list[int]) -> str:
    """``0–7`` for a contiguous run, ``0, 8, …, 120 (16 ranks, stride 8)`` otherwise."""
    if not ranks:
        return ""
    if len(ranks) == 1:
        return str(ranks[0])
    stride = ranks[1] - ranks[0]
    if stride == 1 and ranks[-1] - ranks[0] == len(ranks) - 1:
        return f"{ranks[0]}–{ranks[-1]}"
    if len(ranks) <= 4:
        return ", ".join(map(str, ranks))
    return f"{ranks[0]}, {ranks[1]}, …, {ranks[-1]} ({len(ranks)} ranks, stride {stride})"


def stream_groups(config: dict | None, rank: int) -> dict[str, str]:
    """Per communication stream of ``rank``, the real ranks it talks to, in words."""
    g = rank_groups(config, rank)
    out = {k: f"{k} group: ranks {_ranks_text(g[k])}" for k in ("tp", "cp", "dp") if len(g.get(k, [])) > 1}
    if g:
        per = g["pp-fwd"][1] - rank
        stage, p = rank // per, int(((config or {}).get("parallelism") or {}).get("pipeline") or 1)
        if stage + 1 < p:
            out["pp-fwd"] = f"pipeline: rank {rank} → {rank + per} (activations)"
        if stage > 0:
            out["pp-bwd"] = f"pipeline: rank {rank} → {rank - per} (gradients)"
    return out


def _gpu_events(table: GpuTable, rank: int, order: int, label: str, t0: float, t1: float,
                groups: dict[str, str]) -> tuple[list[str], list[tuple]]:
    """Metadata and X events of one GPU; also ``(stream, tid, start, end, row)`` of its events."""
    sl = table.spans.get(rank, slice(0, 0))
    idx = np.arange(sl.start or 0, sl.stop or 0)
    idx = idx[(table.start[idx] < t1) | ((table.start[idx] == t1) & (table.end[idx] == t1))]
    lines = [f'{{"ph": "M", "pid": {rank}, "name": "process_name", "args": {{"name": {json.dumps(f"GPU {rank}: {label}")}}}}}',
             f'{{"ph": "M", "pid": {rank}, "name": "process_sort_index", "args": {{"sort_index": {order}}}}}']
    where: list[tuple] = []
    streams = np.array(table.stream.text, dtype=object)[table.stream.codes[idx]] if len(idx) else np.zeros(0, object)
    tid = 0
    for stream in sorted(set(streams.tolist()), key=stream_sort_key):
        rows = idx[streams == stream]
        s, e = table.start[rows], np.minimum(table.end[rows], t1)
        tracks = overflow_tracks(s, e)
        group = groups.get(stream)
        g = f', "group": {json.dumps(group)}' if group else ""
        for k in range(int(tracks.max(initial=0)) + 1):
            name = stream if k == 0 else f"{stream} #{k + 1}"
            lines.append(f'{{"ph": "M", "pid": {rank}, "tid": {tid}, "name": "thread_name", "args": {{"name": "{name}"}}}}')
            lines.append(f'{{"ph": "M", "pid": {rank}, "tid": {tid}, "name": "thread_sort_index", "args": {{"sort_index": {tid}}}}}')
            on = tracks == k
            rk, a, b = rows[on], s[on], e[on]
            a_us, b_us = np.round(a * 1e6, 3), np.round(b * 1e6, 3)  # round the ends, so slices that
            ts = [f"{v:.3f}" for v in a_us.tolist()]  # touch in the timeline touch in the trace
            du = [f"{v:.3f}" for v in np.maximum(b_us - a_us, 0.0).tolist()]
            tj, pj, kj = table.task.json, table.phase.json, table.kind.json
            lines += [
                f'{{"ph": "X", "pid": {rank}, "tid": {tid}, "ts": {t}, "dur": {d}, "name": {tj[tc]}, "cat": {pj[pc]}, '
                f'"args": {{"kind": {kj[kc]}, "layer": {ly}, "microbatch": {m}, "stage": {st}, "flops": {fl}, '
                f'"bytes": {nb}, "task_id": {ti}{g}}}}}'
                for t, d, tc, pc, kc, ly, m, st, fl, nb, ti in zip(
                    ts, du, table.task.codes[rk].tolist(), table.phase.codes[rk].tolist(),
                    table.kind.codes[rk].tolist(), table.layer[rk].tolist(), table.microbatch[rk].tolist(),
                    table.stage[rk].tolist(), ints(table.flops[rk]), ints(table.nbytes[rk]),
                    table.task_id[rk].tolist())]
            where += [(stream, tid, x, y, r) for x, y, r in zip(a.tolist(), b.tolist(), rk.tolist())]
            tid += 1
    return lines, where


def _flows(table: GpuTable, where: dict[int, list[tuple]], stage_of: dict[int, int]) -> list[str]:
    """Arrows from each pipeline send to the first pass of its microbatch on the receiving stage."""
    rank_of_stage: dict[int, int] = {}
    for r, st in sorted(stage_of.items()):
        rank_of_stage.setdefault(st, r)
    targets: dict[tuple[int, int, bool], tuple[np.ndarray, list[tuple]]] = {}
    for r, evs in where.items():
        comp = [ev for ev in evs if ev[0] == "compute" and table.microbatch[ev[4]] >= 0]
        for bwd in (False, True):
            want = ("backward", "recompute", "weight_grad") if bwd else ("forward",)
            by_mb: dict[int, list[tuple]] = {}
            for ev in comp:
                if table.phase.text[table.phase.codes[ev[4]]] in want:
                    by_mb.setdefault(int(table.microbatch[ev[4]]), []).append(ev)
            for mb, evs_mb in by_mb.items():
                evs_mb.sort(key=lambda ev: ev[2])
                targets[(r, mb, bwd)] = (np.array([ev[2] for ev in evs_mb]), evs_mb)
    out, fid = [], 0
    for r, evs in sorted(where.items()):
        for stream, tid, a, b, row in evs:
            if stream not in ("pp-fwd", "pp-bwd"):
                continue
            bwd = stream == "pp-bwd"
            dst = rank_of_stage.get(stage_of.get(r, -1) + (-1 if bwd else 1))
            hit = targets.get((dst, int(table.microbatch[row]), bwd)) if dst is not None else None
            if hit is None:
                continue
            k = int(np.searchsorted(hit[0], b - 1e-9))
            if k >= len(hit[1]):
                continue
            tgt = hit[1][k]
            fid += 1
            out.append(f'{{"ph": "s", "id": {fid}, "pid": {r}, "tid": {tid}, "ts": {us(a)}, "name": "pipeline p2p", "cat": "pp_flow"}}')
            out.append(f'{{"ph": "f", "bp": "e", "id": {fid}, "pid": {dst}, "tid": {tgt[1]}, "ts": {us(tgt[2])}, '
                       f'"name": "pipeline p2p", "cat": "pp_flow"}}')
    return out


def _counters(table: GpuTable, ranks: list[int], links: pd.DataFrame, caps: dict[str, float], t0: float, t1: float,
              net_pid: int) -> list[str]:
    """Compute utilization per GPU; utilization (or GB/s) per link."""
    out: list[str] = []
    edges = np.linspace(t0, t1, int(np.clip(COUNTER_EVENTS // max(len(ranks), 1), 10, 200)) + 1)
    ts = [us(x) for x in edges.tolist()]
    is_compute = np.array([t == "compute" for t in table.stream.text] + [False])
    for r in ranks:
        sl = table.spans.get(r, slice(0, 0))
        comp = is_compute[table.stream.codes[sl]] & ~table.phase.equals(HOST_PHASE, sl)  # host work: the GPU idle
        frac = busy_fraction_per_bin(table.start[sl][comp], table.end[sl][comp], edges) * 100
        head = f'{{"ph": "C", "pid": {r}, "ts": '
        out += [f'{head}{t}, "name": "compute utilization", "args": {{"busy %": {round(v, 3)}}}}}'
                for t, v in zip(ts, frac.tolist() + [0.0])]
    if links.empty:
        return out
    codes, texts = text_codes(links["resource"])  # through the categories: no per-row strings
    s_codes, s_text = text_codes(links["stream"])
    present = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=len(texts)))
    names = sorted((texts[c], int(c)) for c in present)
    n_bins = int(np.clip(COUNTER_EVENTS // max(len(names), 1), 10, 200))
    edges = np.linspace(t0, t1, n_bins + 1)
    width = np.diff(edges)
    ts = [us(x) for x in edges[:-1].tolist()]
    st, en, nb = (links[c].to_numpy(dtype=float) for c in ("start_s", "end_s", "bytes"))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(texts) + 1))
    for name, c in names:
        sel = order[bounds[c]:bounds[c + 1]]
        rate = bytes_per_bin(st[sel], en[sel], nb[sel], edges) / width
        cap = caps.get(name)
        key, val = ("% of capacity", rate / cap * 100) if cap else ("GB/s", rate / 1e9)
        label = json.dumps(f"{name[len('link:'):]} ({s_text[s_codes[sel[0]]]})")
        head, mid = f'{{"ph": "C", "pid": {net_pid}, "ts": ', f', "name": {label}, "args": {{"{key}": '
        out += [f"{head}{t}{mid}{round(v, 3)}}}}}" for t, v in zip(ts, val.tolist())]
    return out


def build_trace_text(timeline: pd.DataFrame, summary: dict | None = None, config: dict | None = None,
                     details: dict | None = None, *, scope: str = "bounded", table: GpuTable | None = None,
                     caps: dict[str, float] | None = None) -> tuple[dict, list[str], tuple[float, float, bool]]:
    """``(head, event lines, (t0, t1, bounded))`` of the trace (see the module docstring)."""
    from simcluster.reporting.utilization import link_capacities

    table = table if table is not None else gpu_table(timeline)
    infos = rank_infos(timeline, details)
    t_iter = iteration_end(timeline, summary)
    t0, t1, bounded = choose_window(table.start, t_iter, None if scope == "full" else BUDGET)
    world = int((summary or {}).get("num_gpus") or len(infos) or 1)
    lines: list[str] = []
    where: dict[int, list[tuple]] = {}
    for order, info in enumerate(infos):
        m, w = _gpu_events(table, info.rank, order, info.label, t0, t1, stream_groups(config, info.rank))
        lines += m
        where[info.rank] = w
    net_pid = max(world, max((i.rank for i in infos), default=0)) + 1
    links = link_rows(timeline)
    if len(links):
        links = links[(links["start_s"] < t1) & (links["end_s"] > t0)]
        lines.append(f'{{"ph": "M", "pid": {net_pid}, "name": "process_name", "args": {{"name": "network (link utilization)"}}}}')
        lines.append(f'{{"ph": "M", "pid": {net_pid}, "name": "process_sort_index", "args": {{"sort_index": {len(infos)}}}}}')
    lines += _flows(table, where, {i.rank: i.stage for i in infos})
    caps = link_capacities(details, config) if caps is None else caps
    lines += _counters(table, [i.rank for i in infos], links, caps, t0, t1, net_pid)
    other = {"generator": "simcluster", "time_unit": "us", "workload": str((config or {}).get("name", "")),
             "window_s": [t0, t1], "iteration_s": t_iter,
             "bounded": (f"the first {t1:.6g} s of the {t_iter:.6g} s iteration ({BUDGET:,} GPU intervals); "
                         "write_run(..., trace_scope='full') writes the whole iteration") if bounded
             else "the whole iteration",
             "per_rank_traces": "traces/rank<N>.json[.gz]: Kineto-style, for HolisticTraceAnalysis"}
    head = {"schemaVersion": 1, "displayTimeUnit": "ms", "otherData": other,
            "distributedInfo": {"backend": "simulated", "world_size": world}}
    device = ((config or {}).get("cluster") or {}).get("device")
    if isinstance(device, dict):
        head["deviceProperties"] = [{"id": i.rank, "name": str(device.get("name", "")),
                                     "totalGlobalMem": num(device.get("memory_bytes") or 0)} for i in infos]
    return head, lines, (t0, t1, bounded)


def build_trace(timeline: pd.DataFrame, summary: dict | None = None, config: dict | None = None,
                details: dict | None = None, scope: str = "bounded") -> dict:
    """The trace as a JSON-ready dict (parsed from the text the writer writes)."""
    head, lines, _ = build_trace_text(timeline, summary, config, details, scope=scope)
    return {**head, "traceEvents": [json.loads(x) for x in lines]}


def write_trace(path: Path, timeline: pd.DataFrame, summary: dict | None = None, config: dict | None = None,
                details: dict | None = None, *, scope: str = "bounded", table: GpuTable | None = None,
                caps: dict[str, float] | None = None, executor: Executor | None = None) -> tuple[float, float, bool]:
    """Write ``trace.json`` at ``path``; returns the window it holds ``(t0, t1, bounded)``."""
    head, lines, window = build_trace_text(timeline, summary, config, details, scope=scope, table=table, caps=caps)
    write_json_text(Path(path), head, lines, gzip_it=False, executor=executor)
    return window
