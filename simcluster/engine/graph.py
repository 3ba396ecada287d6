"""What each task unblocks, as flat arrays (compressed sparse rows), built with numpy.

A task is blocked by the task before it on each of its streams and by its dependencies
(:class:`~simcluster.lowering.task.TaskGraph`). The engine needs, per task ``a``, the
tasks it unblocks, in a fixed order, and per task the number of its blockers:

- ``succ[off[a]:off[a + 1]]``: first the task after ``a`` on each stream it occupies, in
  sorted (rank, stream) order, then the tasks that list ``a`` among their dependencies,
  in id order; a task appears once however many of these relations it has with ``a``
  (it is counted down once, at its first place);
- ``blockers[b]``: how many distinct tasks ``b`` waits for.

One record per edge in two flat ``array('q')`` (8 bytes each) rather than a Python list
per task: at 16,384 GPUs the graph has 15 million tasks, and a list object for each, laid
out wherever the allocator put it, cost as much to build, walk and free as the whole
run of the engine (``docs/benchmarks.md``, "Where the engine's growth comes from").
"""

from __future__ import annotations

from array import array
from itertools import chain
from operator import attrgetter
from typing import Sequence

import numpy as np

from simcluster.lowering.task import TaskGraph


def _flat(seqs: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """The concatenation of ``seqs`` and their lengths, as int64 arrays."""
    lens = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    flat = np.fromiter(chain.from_iterable(seqs), dtype=np.int64, count=int(lens.sum()))
    return flat, lens


def unblocking(tg: TaskGraph) -> tuple["array[int]", "array[int]", list[int], list[int]]:
    """``(succ, off, blockers, firsts)`` of ``tg`` (see the module); ``firsts``: the first
    task of each non-empty stream, in sorted (rank, stream) order."""
    n = len(tg.tasks)
    queues = [tg.streams[k] for k in sorted(tg.streams)]
    queues = [q for q in queues if q]
    firsts = [q[0] for q in queues]
    flat, lens = _flat(queues)
    # consecutive pairs inside each queue: every position but a queue's last
    follows = np.ones(len(flat), dtype=bool)
    follows[np.cumsum(lens) - 1] = False
    src_stream = flat[follows]
    dst_stream = flat[np.flatnonzero(follows) + 1]
    deps, counts = _flat(list(map(attrgetter("deps"), tg.tasks)))
    src = np.concatenate((src_stream, deps))
    dst = np.concatenate((dst_stream, np.repeat(np.arange(n, dtype=np.int64), counts)))
    # each (a, b) once, at its first place (stream relations come before dependencies)
    code = src * max(n, 1) + dst
    by_code = np.argsort(code, kind="stable")
    ranked = code[by_code]
    keep = np.ones(len(code), dtype=bool)
    keep[by_code[1:][ranked[1:] == ranked[:-1]]] = False  # a repeat of the entry before it
    src, dst = src[keep], dst[keep]
    order = np.argsort(src, kind="stable")
    off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=off[1:])
    blockers = np.bincount(dst, minlength=n).tolist()
    return array("q", dst[order].tobytes()), array("q", off.tobytes()), blockers, firsts
