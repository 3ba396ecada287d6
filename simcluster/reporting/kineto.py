"""``traces/rank<N>.json`` (``.json.gz`` past a size): one Kineto-style trace per simulated rank.

Written as PyTorch's profiler writes a rank's trace, so that tools reading those traces
(HolisticTraceAnalysis: ``TraceAnalysis(trace_dir=RUN_DIR/traces)``, Perfetto) read them:

- top level: ``distributedInfo`` (``backend``, ``rank``: the real rank the simulated one
  stands for, ``world_size``: every GPU of the layout) first, ``deviceProperties``,
  ``schemaVersion``, ``displayTimeUnit``, ``simcluster`` (what the file holds: window, the
  ranks this one stands for), then ``traceEvents``, one per line;
- a host process (pid 1,000,000 + rank) whose main thread holds ``ProfilerStep#0``
  (``cat: user_annotation``) over the profiled window, and a GPU process (pid = the local
  device index, as Kineto) with one thread per CUDA stream: compute (stream 7), then
  tensor-parallel, context-parallel, pipeline and data-parallel NCCL streams;
- host work (phase ``host``: DeepSpeed ZeRO-3's per-rank loops, the GPU idle) as ``cpu_op`` events on
  the python main thread, not as kernels; every kernel's ``cudaLaunchKernel`` (``cat: cuda_runtime``,
  the kernel's ``correlation``) on that thread (:meth:`_Writer.launches`);
- on the compute stream, nested slices: ``ProfilerStep#0`` → microbatch pass
  (``forward mb3``, ``backward mb3`` with its recompute, ``weight_grad mb3``, ``chunk c`` when
  interleaved) → layer (``layer 12``) as ``gpu_user_annotation``, → kernels (``cat: kernel``,
  the simulated task's name; args ``device``, ``stream``, ``correlation``, ``External id``,
  phase, microbatch, layer, flops);
- communication as NCCL kernels (``ncclDevKernel_AllReduce (tp.all_reduce fwd.attn L3)``),
  args as PyTorch writes them: ``Collective name``, ``In msg nelems``, ``Out msg nelems``,
  ``Group size``, ``dtype``, ``Process Group Name``, ``Process Group Description``,
  ``Process Group Ranks``, plus ``bytes``;
- two zero-length kernels mark the window's ends on the compute stream, so a tool that
  measures a rank from its first to its last kernel measures the iteration (every rank's
  iteration starts at 0 and ends with the slowest rank's last task).

HolisticTraceAnalysis then finds the summary's figures: its temporal breakdown's idle,
compute and non-compute shares are ``bubble_fraction`` + ``host_wait_fraction``,
``compute_utilization`` and ``exposed_comm_fraction`` per rank (within its rounding to whole
microseconds).
"""

from __future__ import annotations

import json
import re
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from simcluster.plan.steps import HOST_PHASE
from simcluster.reporting.schedule import _chunks
from simcluster.reporting.tracefmt import GpuTable, collective_of, ints, overflow_tracks, rank_groups, us, write_json_text

HOST_PID = 1_000_000
STREAM_TID = {"compute": 7, "tp": 100, "cp": 200, "pp-fwd": 300, "pp-bwd": 400, "dp": 500}
PASS = {"forward": "forward", "recompute": "backward", "backward": "backward", "weight_grad": "weight_grad"}
DTYPE = {"bf16": ("BFloat16", 2), "fp16": ("Half", 2), "fp32": ("Float", 4), "fp8": ("BFloat16", 2)}
GROUP_DESC = {"tp": "tensor parallel", "cp": "context parallel", "dp": "data parallel", "pp": "pipeline peer",
              "embedding": "first and last pipeline stage (tied embedding)"}
GZIP_TOTAL = 16e6  # gzip every rank's file when the folder would pass this many bytes
EVENT_BYTES = 450  # about what one interval costs in the file (kernel, its launch, its share of annotations)
FILE_RE = re.compile(r"^rank\d+\.json(\.gz)?$")


def _span(s: np.ndarray, e: np.ndarray) -> tuple[list[str], list[str]]:
    """``ts`` and ``dur`` strings of events from s to e: both ends rounded to the nanosecond first, so an
    event ending with its parent ends at the same printed time (rounding ts and dur apart can differ by 1 ns)."""
    s_ns = np.rint(np.asarray(s, float) * 1e9)
    d_ns = np.maximum(np.rint(np.asarray(e, float) * 1e9) - s_ns, 0.0)
    return [f"{v / 1e3:.3f}" for v in s_ns.tolist()], [f"{v / 1e3:.3f}" for v in d_ns.tolist()]


class _Writer:
    """Events of one rank, as JSON lines."""

    def __init__(self, pid: int, device: int) -> None:
        self.pid, self.device, self.lines, self.corr = pid, device, [], 0
        self.pending: list[tuple[np.ndarray, ...]] = []  # kernels written, awaiting their launch events

    def x(self, tid: int, cat: str, name_json: str, s: float, e: float, args: str = "") -> None:
        """One complete event."""
        self.xs(tid, cat, [name_json], np.array([s]), np.array([e]), [args] if args else None)

    def xs(self, tid: int, cat: str, names: list[str], s: np.ndarray, e: np.ndarray,
           args: list[str] | None = None, pid: int | None = None) -> None:
        """Complete events, one per element (``args``: the text inside each ``args`` object), on the GPU
        process unless ``pid`` says another."""
        ts, dur = _span(s, e)
        head = f'{{"ph": "X", "cat": "{cat}", "name": '
        mid = f', "pid": {self.pid if pid is None else pid}, "tid": {tid}, "ts": '
        if args is None:
            self.lines += [f'{head}{n}{mid}{a}, "dur": {d}}}' for n, a, d in zip(names, ts, dur)]
        else:
            self.lines += [f'{head}{n}{mid}{a}, "dur": {d}, "args": {{{g}}}}}' for n, a, d, g in zip(names, ts, dur, args)]

    def kernels(self, tids: list[int] | int, names: list[str], s: np.ndarray, e: np.ndarray, extra: list[str]) -> None:
        """Kernels with the device, stream and correlation args Kineto writes, then ``extra``; each with its
        ``cudaLaunchKernel`` on the host thread (:meth:`launches`)."""
        n = len(names)
        tid_list = tids if isinstance(tids, list) else [tids] * n
        corr = range(self.corr + 1, self.corr + n + 1)
        self.corr += n
        ts, du = _span(s, e)
        self.lines += [f'{{"ph": "X", "cat": "kernel", "name": {nm}, "pid": {self.pid}, "tid": {t}, "ts": {a}, '
                       f'"dur": {d}, "args": {{"device": {self.device}, "stream": {t}, "correlation": {c}, '
                       f'"External id": {c}{x}}}}}'
                       for nm, t, a, d, c, x in zip(names, tid_list, ts, du, corr, extra)]
        self.pending.append((np.asarray(tid_list, dtype=np.int64), np.asarray(s, float), np.asarray(corr, dtype=np.int64)))

    def launches(self, host_pid: int, host_e: np.ndarray) -> None:
        """One zero-length ``cudaLaunchKernel`` (``cat: cuda_runtime``, the kernel's ``correlation``) per kernel
        written, on the python main thread: the host enqueues a stream's kernel while the one before it runs
        (at that one's start), and not before the end of host work that ended before the kernel started
        (``host_e``: the ends of the rank's host operators). HolisticTraceAnalysis's idle-time breakdown calls a
        stream's gap "host wait" when the next kernel was launched after the previous one ended: exactly the
        gaps a host operator ends in."""
        if not self.pending:
            return
        tid, s, corr = (np.concatenate(a) for a in zip(*self.pending))
        self.pending = []
        order = np.lexsort((s, tid))
        tid, s, corr = tid[order], s[order], corr[order]
        prev = np.concatenate(([-np.inf], s[:-1]))
        prev[np.concatenate(([True], tid[1:] != tid[:-1]))] = -np.inf  # each stream's first kernel
        ends = np.concatenate(([-np.inf], np.sort(np.asarray(host_e, float))))
        host_done = ends[np.searchsorted(ends, s, side="right") - 1]  # the last host operator over by its start
        launch = np.minimum(np.maximum(np.maximum(prev, host_done), s.min() if len(s) else 0.0), s)
        at, _ = _span(launch, launch)
        self.lines += [f'{{"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": {host_pid}, '
                       f'"tid": 1, "ts": {a}, "dur": 0.000, "args": {{"correlation": {c}, "External id": {c}}}}}'
                       for a, c in zip(at, corr.tolist())]


def rank_trace(table: GpuTable, rank: int, t0: float, t1: float, *, world: int, represents: str,
               config: dict | None, device: dict | None, bounded_note: str | None) -> tuple[dict, list[str]]:
    """``(head, event lines)`` of one rank's trace over ``[t0, t1]``."""
    gpn = int(((config or {}).get("cluster") or {}).get("gpus_per_node") or 8)
    dev = rank % max(gpn, 1)
    sl = table.spans.get(rank, slice(0, 0))
    s, e = table.start[sl], np.minimum(table.end[sl], t1)
    keep = (s < t1) & (table.end[sl] > t0) | ((s == table.end[sl]) & (s >= t0) & (s <= t1))
    idx = np.flatnonzero(keep) + (sl.start or 0)
    s, e = np.maximum(table.start[idx], t0), np.minimum(table.end[idx], t1)
    stream = np.array(table.stream.text, dtype=object)[table.stream.codes[idx]] if len(idx) else np.zeros(0, object)
    prec = str(((config or {}).get("training") or {}).get("precision") or "bf16")
    dtype, size = DTYPE.get(prec, ("BFloat16", 2))
    groups = rank_groups(config, rank)
    w = _Writer(dev, dev)
    host = HOST_PID + rank
    meta = [f'{{"ph": "M", "name": "process_name", "pid": {host}, "tid": 0, "args": {{"name": "python (simulated rank {rank})"}}}}',
            f'{{"ph": "M", "name": "process_name", "pid": {dev}, "tid": 0, "args": {{"name": "GPU {dev}"}}}}',
            f'{{"ph": "M", "name": "process_labels", "pid": {dev}, "tid": 0, "args": {{"labels": {json.dumps(represents)}}}}}',
            f'{{"ph": "M", "name": "thread_name", "pid": {host}, "tid": 1, "args": {{"name": "python main thread"}}}}']
    step = '"ProfilerStep#0"'
    w.lines.append(f'{{"ph": "X", "cat": "user_annotation", "name": {step}, "pid": {host}, "tid": 1, '
                   f'"ts": {us(t0)}, "dur": {us(t1 - t0)}, "args": {{"External id": 0}}}}')
    tid_of: dict[str, int] = {}
    for name in sorted(set(stream.tolist()), key=lambda x: (x != "compute", STREAM_TID.get(x, 10_000), x)):
        tid_of[name] = STREAM_TID.get(name, 600 + 100 * len([k for k in tid_of if k not in STREAM_TID]))
    tid_of.setdefault("compute", 7)
    on_host = (stream == "compute") & table.phase.equals(HOST_PHASE, idx)
    _host(w, table, idx[on_host], s[on_host], e[on_host], host)
    gpu = (stream == "compute") & ~on_host
    _compute(w, table, idx[gpu], s[gpu], e[gpu], t0, t1, step)
    labels = {7: "stream 7 (compute)"}
    for name, tid in tid_of.items():
        if name == "compute":
            continue
        on = stream == name
        tracks = _comm(w, table, idx[on], s[on], e[on], tid, name, groups, dtype, size)
        labels.update({tid + k: f"stream {tid + k} ({name}{f' #{k + 1}' if k else ''})" for k in range(tracks)})
    w.launches(host, e[on_host])
    for tid, label in sorted(labels.items()):
        meta.append(f'{{"ph": "M", "name": "thread_name", "pid": {dev}, "tid": {tid}, "args": {{"name": {json.dumps(label)}}}}}')
    head = {
        "schemaVersion": 1,
        "distributedInfo": {"backend": "nccl", "rank": int(rank), "world_size": int(world)},
        "deviceProperties": [{"id": dev, "name": str((device or {}).get("name", "")),
                              "totalGlobalMem": int(float((device or {}).get("memory_bytes") or 0))}],
        "displayTimeUnit": "ms",
        "traceName": f"simcluster rank {rank}",
        "simcluster": {"simulated": True, "stands_for": represents, "window_s": [t0, t1],
                       "bounded": bounded_note or "the whole iteration"},
    }
    return head, meta + w.lines


def _host(w: _Writer, table: GpuTable, idx: np.ndarray, s: np.ndarray, e: np.ndarray, pid: int) -> None:
    """Host work (DeepSpeed's per-rank loops around its list-based collectives) as CPU operators on the python
    main thread, not kernels: the GPU runs nothing meanwhile, so a kernel-level tool sees it idle."""
    if not len(idx):
        return
    tj = table.task.json
    names = [tj[c] for c in table.task.codes[idx].tolist()]
    args = [f'"External id": 0, "simulated": "host work, the GPU idle", "layer": {ly}'
            for ly in table.layer[idx].tolist()]
    w.xs(1, "cpu_op", names, s, e, args, pid=pid)


def _runs(*keys: np.ndarray) -> np.ndarray:
    """Start index of every run of equal ``keys`` (rows in order)."""
    n = len(keys[0])
    new = np.zeros(n, dtype=bool)
    new[:1] = True
    for k in keys:
        new[1:] |= k[1:] != k[:-1]
    return np.flatnonzero(new)


def _compute(w: _Writer, table: GpuTable, idx: np.ndarray, s: np.ndarray, e: np.ndarray, t0: float, t1: float,
             step: str) -> None:
    """The compute stream: ProfilerStep → microbatch pass → layer → kernel, boundary markers."""
    tid = 7
    marker = '"simcluster: iteration window boundary (zero length)"'
    lo, hi = np.floor(t0 * 1e6) / 1e6, np.ceil(t1 * 1e6) / 1e6
    w.x(tid, "gpu_user_annotation", step, lo, hi)
    w.kernels(tid, [marker, marker], np.array([lo, hi]), np.array([lo, hi]), ["", ""])
    if not len(idx):
        return
    pcode = table.phase.codes[idx]
    kind_of = np.array([{"forward": 1, "recompute": 2, "backward": 2, "weight_grad": 3}.get(p, 0)
                        for p in table.phase.text] + [0])
    kind = kind_of[pcode]
    mb, layer = table.microbatch[idx], table.layer[idx]
    in_pass = (mb >= 0) & (kind > 0)
    chunk = _chunks(np.zeros(len(idx), dtype=np.int64), layer, mb * 4 + kind)
    multi = len(np.unique(chunk[in_pass])) > 1 if in_pass.any() else False
    pk = np.where(in_pass, kind, -np.arange(1, len(idx) + 1))  # rows outside a pass each their own run
    passes = _runs(pk, mb, chunk)
    ends = np.maximum.reduceat(e, passes)
    names = ("", "forward", "backward", "weight_grad")
    sel = in_pass[passes]
    w.xs(tid, "gpu_user_annotation",
         [f'"{names[k]} mb{m}' + (f' chunk{c}"' if multi else '"') for k, m, c in
          zip(kind[passes][sel].tolist(), mb[passes][sel].tolist(), chunk[passes][sel].tolist())],
         s[passes][sel], ends[sel])
    layers = _runs(pk, mb, chunk, layer)
    lends = np.maximum.reduceat(e, layers)
    sel = in_pass[layers]
    w.xs(tid, "gpu_user_annotation",
         [f'"layer {v}"' if v >= 0 else '"embedding and head"' for v in layer[layers][sel].tolist()],
         s[layers][sel], lends[sel])
    tj = table.task.json
    names_k = [tj[c] for c in table.task.codes[idx].tolist()]
    pt = [table.phase.text[c] for c in pcode.tolist()]
    extra = [f', "phase": "{p}", "microbatch": {m}, "layer": {ly}, "flops": {f}, "task_id": {t}'
             for p, m, ly, f, t in zip(pt, mb.tolist(), layer.tolist(), ints(table.flops[idx]),
                                       table.task_id[idx].tolist())]
    w.kernels(tid, names_k, s, e, extra)


def _comm(w: _Writer, table: GpuTable, idx: np.ndarray, s: np.ndarray, e: np.ndarray, tid: int, stream: str,
          groups: dict[str, list[int]], dtype: str, size: int) -> int:
    """NCCL kernels of one communication stream (overlapping ones on overflow streams ``tid + k``);
    returns how many streams it took."""
    if not len(idx):
        return 1
    codes = table.task.codes[idx]
    static: dict[int, tuple[str, str]] = {}  # per task: (kernel name, args that do not change)
    uniq, first = np.unique(codes, return_index=True)
    ranks_json: dict[str, str] = {}  # per group, its ranks as JSON (written once, not once per task)
    for code, row in zip(uniq.tolist(), idx[first].tolist()):  # each task's first row
        task = table.task.text[code]
        suffix, coll = collective_of(task, table.kind.value(row))
        key = "embedding" if stream == "dp" and "embedding" in task else (
            "zero" if table.phase.value(row) == "zero_comm" else stream)
        ranks = groups.get(key, [])
        if key not in ranks_json:
            ranks_json[key] = json.dumps(ranks)
        pg = {"pp-fwd": "pp", "pp-bwd": "pp"}.get(key, key)
        static[code] = (json.dumps(f"ncclDevKernel_{suffix} ({task})"),
                        f', "Collective name": "{coll}", "Group size": {len(ranks) or 1}, "dtype": "{dtype}", '
                        f'"Process Group Name": "{pg}", "Process Group Description": "{GROUP_DESC.get(pg, pg)}", '
                        f'"Process Group Ranks": {ranks_json[key]}')
    nbytes = table.nbytes[idx]
    nel = (np.nan_to_num(nbytes) // size).astype(np.int64).tolist()
    extra = [f'{static[c][1]}, "In msg nelems": {n}, "Out msg nelems": {n}, "bytes": {b}, "microbatch": {m}, '
             f'"layer": {ly}' for c, n, b, m, ly in zip(codes.tolist(), nel, ints(nbytes), table.microbatch[idx].tolist(),
                                                       table.layer[idx].tolist())]
    names = [static[c][0] for c in codes.tolist()]
    tracks = overflow_tracks(s, e)
    w.kernels([tid + t for t in tracks.tolist()], names, s, e, extra)
    return int(tracks.max()) + 1


def write_rank_traces(out_dir: Path, table: GpuTable, infos: list, t0: float, t1: float, *, world: int,
                      config: dict | None, bounded_note: str | None, executor: Executor | None = None) -> list[Path]:
    """Write every simulated rank's trace into ``out_dir`` (stale ``rank*.json[.gz]`` removed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.iterdir():
        if FILE_RE.match(old.name):
            old.unlink()
    device = ((config or {}).get("cluster") or {}).get("device")
    device = device if isinstance(device, dict) else {"name": str(device or "")}
    rows = sum(int(np.count_nonzero(table.start[table.spans[i.rank]] < t1)) for i in infos if i.rank in table.spans)
    gz = rows * EVENT_BYTES > GZIP_TOTAL
    out = []
    for info in infos:
        if info.rank not in table.spans:
            continue
        head, lines = rank_trace(table, info.rank, t0, t1, world=world, represents=info.label, config=config,
                                 device=device, bounded_note=bounded_note)
        out.append(write_json_text(out_dir / f"rank{info.rank}.json", head, lines, gzip_it=gz, executor=executor))
    return out
