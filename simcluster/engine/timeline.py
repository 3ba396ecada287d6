"""Build the timeline DataFrame from simulated start/end times, column by column with numpy.

One row per simulated interval: a plain task gives one row per rank it
occupies; a fused task gives one row per part, at the part's offsets from the
task's start (tasks sharing a parts template are expanded together with
numpy). Links: the busy intervals of recorded links, and the intervals of the
collectives inside fused tasks, which ran alone on their links (their bytes
and busy time are booked on the link statistics here).

Nothing is built one row at a time: each attribute of the plain tasks is read
once into an array (text as category codes, ``pd.factorize``), repeated for
tasks on several ranks, and the frame is joined from the columns.
"""

from __future__ import annotations

from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Mapping, Sequence, Union

import numpy as np
import pandas as pd

from simcluster.lowering.task import Part, Task

if TYPE_CHECKING:
    from simcluster.engine.network import Links

TIMELINE_COLUMNS = ["resource", "rank", "stream", "task", "task_id", "kind", "phase", "stage",
                    "microbatch", "layer", "start_s", "end_s", "flops", "bytes", "released_by"]
_INT = ("rank", "task_id", "stage", "microbatch", "layer", "released_by")
_FLOAT = ("start_s", "end_s", "flops", "bytes")
_PARTS_MAX = 1 << 20  # parts per fused task (orders rows inside a task)


class _Coded:
    """A text column's values as category codes: ``cats[codes[i]]`` is row i's text."""

    __slots__ = ("cats", "codes")

    def __init__(self, cats: list[str], codes: np.ndarray):
        self.cats, self.codes = cats, codes


#: A column's value for the n rows of one ``_Columns.add``: one value for all, or one per row.
_Value = Union[np.ndarray, _Coded, str, int, float]


def _factorize(values: list[str]) -> _Coded:
    codes, uniques = pd.factorize(np.array(values, dtype=object))
    return _Coded([str(u) for u in uniques], codes.astype(np.int32))


class _Columns:
    """Column-wise accumulation: lists of numpy arrays joined once at the end.

    Text columns become pandas categoricals (a few distinct names over millions
    of rows), built from codes without materialising one string per row.
    """

    def __init__(self, with_order: bool):
        self.names = TIMELINE_COLUMNS + (["_ord"] if with_order else [])
        # per column: arrays; text: coded arrays, or (text, n) for a constant over n rows
        self.cols: dict[str, list[np.ndarray | _Coded | tuple[str, int]]] = {c: [] for c in self.names}

    def add(self, n: int, **values: _Value) -> None:
        for c in self.names:
            v = values[c]
            if isinstance(v, (np.ndarray, _Coded)):
                self.cols[c].append(v)
            elif c in _INT or c == "_ord":
                self.cols[c].append(np.full(n, v, dtype=np.int64))
            elif c in _FLOAT:
                self.cols[c].append(np.full(n, v, dtype=float))
            else:
                assert isinstance(v, str), (c, v)
                self.cols[c].append((v, n))  # a constant text value for n rows

    def numeric(self, c: str) -> np.ndarray:
        """A numeric column as one array."""
        parts = [p for p in self.cols.pop(c) if isinstance(p, np.ndarray)]
        dtype = float if c in _FLOAT else np.int64
        return np.concatenate(parts) if parts else np.array([], dtype=dtype)

    def text(self, c: str) -> tuple[list[str], np.ndarray]:
        """A text column as (sorted categories, int32 codes)."""
        parts = self.cols.pop(c)
        values: set[str] = set()
        for p in parts:
            if isinstance(p, tuple):
                values.add(p[0])
            elif isinstance(p, _Coded):
                values.update(p.cats)
            else:
                values.update(p.tolist())
        cats = sorted(values)
        index = {v: i for i, v in enumerate(cats)}
        codes: list[np.ndarray] = []
        for p in parts:
            if isinstance(p, tuple):
                codes.append(np.full(p[1], index[p[0]], dtype=np.int32))
            elif isinstance(p, _Coded):
                remap = np.array([index[v] for v in p.cats], dtype=np.int32)
                codes.append(remap[p.codes] if len(remap) else p.codes)
            else:
                codes.append(pd.Categorical(p, categories=cats).codes.astype(np.int32))
        return cats, (np.concatenate(codes) if codes else np.array([], dtype=np.int32))


def _join(gpu: _Columns, links: _Columns) -> pd.DataFrame:
    """GPU rows in task order, then link rows by (start, link): one column at a time, so the
    peak memory is the frame plus one column, not several copies of the frame."""
    g_order = np.argsort(gpu.numeric("_ord"), kind="stable")
    l_start = links.numeric("start_s")
    l_cats, l_codes = links.text("resource")
    l_order = np.lexsort((l_codes, l_start))  # start, then link name (categories are sorted)
    data: dict[str, np.ndarray | pd.Categorical[str]] = {}
    for c in TIMELINE_COLUMNS:
        if c in _INT or c in _FLOAT:
            a = gpu.numeric(c)
            b = l_start if c == "start_s" else links.numeric(c)
            data[c] = np.concatenate([a[g_order], b[l_order]])
            continue
        a_cats, a_codes = gpu.text(c)
        b_cats, b_codes = (l_cats, l_codes) if c == "resource" else links.text(c)
        cats = sorted(set(a_cats) | set(b_cats))
        at = {v: i for i, v in enumerate(cats)}
        index = np.array([at[v] for v in a_cats], dtype=np.int32)
        index_b = np.array([at[v] for v in b_cats], dtype=np.int32)
        codes = np.concatenate([index[a_codes[g_order]] if len(a_cats) else a_codes,
                                index_b[b_codes[l_order]] if len(b_cats) else b_codes])
        data[c] = pd.Categorical.from_codes(codes, categories=pd.Index(cats))
    return pd.DataFrame(data, copy=False)  # the columns as they are: no second copy of the frame


def _add_plain(gpu: _Columns, plain: list[Task], start: np.ndarray, end: np.ndarray, released: np.ndarray) -> None:
    """The rows of tasks without parts, one per rank they occupy, in task then rank order."""
    m = len(plain)
    if not m:
        return
    def ints(attr: str) -> np.ndarray:
        return np.fromiter(map(attrgetter(attr), plain), dtype=np.int64, count=m)

    def floats(attr: str) -> np.ndarray:
        return np.fromiter(map(attrgetter(attr), plain), dtype=float, count=m)

    nr = np.fromiter(map(len, map(attrgetter("ranks"), plain)), dtype=np.int64, count=m)
    rows = int(nr.sum())
    ids = ints("id")
    ranks = np.fromiter(chain.from_iterable(map(attrgetter("ranks"), plain)), dtype=np.int64, count=rows)
    every = bool((nr == 1).all())

    def rep(a: np.ndarray) -> np.ndarray:
        return a if every else np.repeat(a, nr)

    def coded(attr: str) -> _Coded:
        c = _factorize(list(map(attrgetter(attr), plain)))
        return c if every else _Coded(c.cats, np.repeat(c.codes, nr))

    u, inv = np.unique(ranks, return_inverse=True)
    gpu.add(rows, resource=_Coded([f"gpu{r}" for r in u.tolist()], inv.astype(np.int32)), rank=ranks,
            stream=coded("stream"), task=coded("name"), task_id=rep(ids), kind=coded("kind"),
            phase=coded("phase"), stage=rep(ints("stage")), microbatch=rep(ints("microbatch")),
            layer=rep(ints("layer")), start_s=rep(start[ids]), end_s=rep(end[ids]),
            flops=rep(floats("flops")), bytes=rep(floats("nbytes")), released_by=rep(released[ids]),
            _ord=rep(ids * _PARTS_MAX))


def _add_intervals(links: _Columns, intervals: np.ndarray, topo: Links, twins: Mapping[int, Sequence[int]]) -> None:
    """The engine's link intervals as rows, one block of rows per link in id order (the
    order they closed kept). ``twins``: per link of ``intervals``, the recorded links whose
    intervals are its own (:meth:`~simcluster.engine.network.Network.recorded_twins`); each
    gets the block as views of one sorted table, concatenated once in :func:`_join`."""
    if not len(intervals):
        return
    a = np.asarray(intervals, dtype=float).reshape(-1, 4)
    ids = a[:, 0].astype(np.int64)
    order = np.argsort(ids, kind="stable")
    ids, a = ids[order], a[order]
    cuts = np.flatnonzero(np.diff(ids)) + 1
    blocks = {int(ids[lo]): (int(lo), int(hi)) for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(ids)])}
    for l, t in sorted((l, t) for t, ls in twins.items() for l in ls):
        if t not in blocks:
            continue
        lo, hi = blocks[t]
        links.add(hi - lo, resource=f"link:{topo.link_names[l]}", rank=-1, stream=topo.link_class[l],
                  task="", task_id=-1, kind="link", phase="", stage=-1, microbatch=-1, layer=-1,
                  start_s=a[lo:hi, 1], end_s=a[lo:hi, 2], flops=0.0, bytes=a[lo:hi, 3], released_by=-1)


def build_timeline(tasks: Sequence[Task], start: Sequence[float], end: Sequence[float], topo: Links,
                   link_bytes: list[float], link_busy: list[float], recorded: frozenset[int],
                   intervals: np.ndarray, twins: Mapping[int, Sequence[int]],
                   released_by: Sequence[int] | None = None) -> pd.DataFrame:
    """The timeline; also books fused collectives' bytes and busy time on ``link_*``.

    ``intervals``: link, start, end, bytes of each of the recorded links' busy intervals
    one after another, in the order the engine closed them; ``twins``: the recorded links
    each link of ``intervals`` stands for; ``released_by``: per task, the task whose end let it
    start (:class:`~simcluster.engine.simulate.SimResult`), or -1; every row of a task carries it.
    """
    start_a = np.asarray(start, dtype=float)
    end_a = np.asarray(end, dtype=float)
    rel = np.full(len(end_a), -1, dtype=np.int64) if released_by is None else np.asarray(released_by, dtype=np.int64)
    plain: list[Task] = []
    groups: dict[int, tuple[tuple[Part, ...], list[Task]]] = {}
    for t in tasks:
        if t.parts:
            groups.setdefault(id(t.parts), (t.parts, []))[1].append(t)
        else:
            plain.append(t)
    gpu = _Columns(with_order=True)
    _add_plain(gpu, plain, start_a, end_a, rel)
    links = _Columns(with_order=False)
    _add_intervals(links, intervals, topo, twins)
    for parts, ts in groups.values():
        n = len(ts)
        ids = np.fromiter((t.id for t in ts), dtype=np.int64, count=n)
        st = start_a[ids]
        # a fused task slowed by contention (engine.simulate.Contention) stretches its parts alike
        full = ts[0].duration
        k = (end_a[ids] - st) / full if full > 0 else np.ones(n)
        ranks = np.fromiter((t.ranks[0] for t in ts), dtype=np.int64, count=n)
        first = int(ranks[0])  # a template belongs to one stage: usually one simulated rank
        res: str | np.ndarray = f"gpu{first}" if (ranks == first).all() else np.array([f"gpu{r}" for r in ranks], dtype=object)
        stage = np.fromiter((t.stage for t in ts), dtype=np.int64, count=n)
        mb = np.fromiter((t.microbatch for t in ts), dtype=np.int64, count=n)
        for j, p in enumerate(parts):
            s0, s1 = st + p.start * k, st + p.end * k
            gpu.add(n, resource=res, rank=ranks, stream=p.stream, task=p.name, task_id=ids, kind=p.kind,
                    phase=p.phase, stage=stage, microbatch=mb, layer=p.layer, start_s=s0, end_s=s1,
                    flops=p.flops, bytes=p.nbytes, released_by=rel[ids], _ord=ids * _PARTS_MAX + j)
            span = (p.end - p.start) * k
            for tr in p.transfers:
                for l, w in zip(tr.links, tr.weights):
                    link_bytes[l] += n * w * tr.nbytes
                    link_busy[l] += float(span.sum())
                    if l in recorded:
                        links.add(n, resource=f"link:{topo.link_names[l]}", rank=-1,
                                  stream=topo.link_class[l], task="", task_id=-1, kind="link", phase="",
                                  stage=-1, microbatch=-1, layer=-1, start_s=s0, end_s=s1, flops=0.0,
                                  bytes=w * tr.nbytes, released_by=-1)
    return _join(gpu, links)
