"""Build the timeline DataFrame from simulated start/end times (vectorised for fused tasks).

One row per simulated interval: a plain task gives one row per rank it
occupies; a fused task gives one row per part, at the part's offsets from the
task's start (tasks sharing a parts template are expanded together with
numpy). Links: the busy intervals of recorded links, and the intervals of the
collectives inside fused tasks, which ran alone on their links (their bytes
and busy time are booked on the link statistics here).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from simcluster.lowering.task import Task

TIMELINE_COLUMNS = ["resource", "rank", "stream", "task", "task_id", "kind", "phase", "stage",
                    "microbatch", "layer", "start_s", "end_s", "flops", "bytes"]
_INT = ("rank", "task_id", "stage", "microbatch", "layer")
_FLOAT = ("start_s", "end_s", "flops", "bytes")
_PARTS_MAX = 1 << 20  # parts per fused task (orders rows inside a task)


class _Columns:
    """Column-wise accumulation: lists of numpy arrays joined once at the end.

    Text columns become pandas categoricals (a few distinct names over millions
    of rows), built from codes without materialising one string per row.
    """

    def __init__(self, with_order: bool):
        self.names = TIMELINE_COLUMNS + (["_ord"] if with_order else [])
        self.cols: dict[str, list[Any]] = {c: [] for c in self.names}

    def add(self, n: int, **values: Any) -> None:
        for c in self.names:
            v = values[c]
            if isinstance(v, np.ndarray):
                self.cols[c].append(v)
            elif c in _INT or c == "_ord":
                self.cols[c].append(np.full(n, v, dtype=np.int64))
            elif c in _FLOAT:
                self.cols[c].append(np.full(n, v, dtype=float))
            else:
                self.cols[c].append((v, n))  # a constant text value for n rows

    def column(self, c: str) -> np.ndarray | tuple[list[str], np.ndarray]:
        """A numeric column as one array, or a text column as (categories, int32 codes)."""
        parts = self.cols.pop(c)
        if c in _INT or c == "_ord" or c in _FLOAT:
            dtype = float if c in _FLOAT else np.int64
            return np.concatenate(parts) if parts else np.array([], dtype=dtype)
        values: set[str] = set()
        for p in parts:
            if isinstance(p, tuple):
                values.add(p[0])
            else:
                values.update(p.tolist())
        cats = sorted(values)
        index = {v: i for i, v in enumerate(cats)}
        codes = [np.full(p[1], index[p[0]], dtype=np.int32) if isinstance(p, tuple)
                 else pd.Categorical(p, categories=cats).codes.astype(np.int32) for p in parts]
        return cats, (np.concatenate(codes) if codes else np.array([], dtype=np.int32))


def _join(gpu: _Columns, links: _Columns) -> pd.DataFrame:
    """GPU rows in task order, then link rows by (start, link): one column at a time, so the
    peak memory is the frame plus one column, not several copies of the frame."""
    g_order = np.argsort(gpu.column("_ord"), kind="stable")
    l_start = links.column("start_s")
    l_cats, l_codes = links.column("resource")
    l_order = np.lexsort((l_codes, l_start))  # start, then link name (categories are sorted)
    data: dict[str, Any] = {}
    for c in TIMELINE_COLUMNS:
        a = gpu.column(c)
        b = (l_start if c == "start_s" else (l_cats, l_codes) if c == "resource" else links.column(c))
        if isinstance(a, np.ndarray):
            data[c] = np.concatenate([a[g_order], b[l_order]])
            continue
        cats = sorted(set(a[0]) | set(b[0]))
        index = np.array([cats.index(v) for v in a[0]], dtype=np.int32)
        index_b = np.array([cats.index(v) for v in b[0]], dtype=np.int32)
        codes = np.concatenate([index[a[1][g_order]] if len(a[0]) else a[1],
                                index_b[b[1][l_order]] if len(b[0]) else b[1]])
        data[c] = pd.Categorical.from_codes(codes, categories=cats)
    return pd.DataFrame(data)


def build_timeline(tasks: Sequence[Task], start: Sequence[float], end: Sequence[float], topo: Any,
                   link_bytes: list[float], link_busy: list[float], recorded: frozenset[int],
                   link_rows: list[tuple]) -> pd.DataFrame:
    """The timeline; also books fused collectives' bytes and busy time on ``link_*``."""
    start_a = np.asarray(start, dtype=float)
    plain: list[tuple] = []
    groups: dict[int, tuple[tuple, list[Task]]] = {}
    for t in tasks:
        if t.parts:
            groups.setdefault(id(t.parts), (t.parts, []))[1].append(t)
            continue
        s, e = start[t.id], end[t.id]
        for r in t.ranks:
            plain.append((f"gpu{r}", r, t.stream, t.name, t.id, t.kind, t.phase, t.stage,
                          t.microbatch, t.layer, s, e, t.flops, t.nbytes, t.id * _PARTS_MAX))
    gpu = _Columns(with_order=True)
    if plain:
        cols = list(zip(*plain))
        for i, c in enumerate(gpu.names):
            dtype = np.int64 if c in _INT or c == "_ord" else float if c in _FLOAT else object
            gpu.cols[c].append(np.array(cols[i], dtype=dtype))
    links = _Columns(with_order=False)
    if link_rows:
        cols = list(zip(*link_rows))
        for i, c in enumerate(links.names):
            dtype = np.int64 if c in _INT else float if c in _FLOAT else object
            links.cols[c].append(np.array(cols[i], dtype=dtype))
    for parts, ts in groups.values():
        n = len(ts)
        ids = np.fromiter((t.id for t in ts), dtype=np.int64, count=n)
        st = start_a[ids]
        ranks = np.fromiter((t.ranks[0] for t in ts), dtype=np.int64, count=n)
        first = int(ranks[0])  # a template belongs to one stage: usually one simulated rank
        res: Any = f"gpu{first}" if (ranks == first).all() else np.array([f"gpu{r}" for r in ranks], dtype=object)
        stage = np.fromiter((t.stage for t in ts), dtype=np.int64, count=n)
        mb = np.fromiter((t.microbatch for t in ts), dtype=np.int64, count=n)
        for j, p in enumerate(parts):
            s0, s1 = st + p.start, st + p.end
            gpu.add(n, resource=res, rank=ranks, stream=p.stream, task=p.name, task_id=ids, kind=p.kind,
                    phase=p.phase, stage=stage, microbatch=mb, layer=p.layer, start_s=s0, end_s=s1,
                    flops=p.flops, bytes=p.nbytes, _ord=ids * _PARTS_MAX + j)
            span = p.end - p.start
            for tr in p.transfers:
                for l, w in zip(tr.links, tr.weights):
                    link_bytes[l] += n * w * tr.nbytes
                    link_busy[l] += n * span
                    if l in recorded:
                        links.add(n, resource=f"link:{topo.link_names[l]}", rank=-1,
                                  stream=topo.link_class[l], task="", task_id=-1, kind="link", phase="",
                                  stage=-1, microbatch=-1, layer=-1, start_s=s0, end_s=s1, flops=0.0,
                                  bytes=w * tr.nbytes)
    return _join(gpu, links)
