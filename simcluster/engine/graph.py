"""What each task unblocks, as flat arrays (compressed sparse rows), built with numpy.

A task is blocked by the task before it on each of its streams and by its dependencies
(:class:`~simcluster.lowering.task.TaskGraph`). The engine needs, per task ``a``, the
tasks it unblocks, in a fixed order, and per task the number of its blockers:

- ``succ[off[a]:off[a + 1]]``: first the task after ``a`` on each stream it occupies, in
  sorted (rank, stream) order, then the tasks that list ``a`` among their dependencies,
  in id order; a task appears once however many of these relations it has with ``a``
  (it is counted down once, at its first place);
- ``blockers[b]``: how many distinct tasks ``b`` waits for.

One record per edge in a flat ``array`` (4-byte ids while they fit) and one offset per
task, rather than a Python list per task: at 16,384 GPUs the graph has 15 million tasks, and a list object for each, laid
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


def _flat(seqs: Sequence[Sequence[int]], dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """The concatenation of ``seqs`` and their lengths."""
    lens = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    flat: np.ndarray = np.fromiter(chain.from_iterable(seqs), dtype=dtype, count=int(lens.sum()))
    return flat, lens


def unblocking(tg: TaskGraph) -> tuple["array[int]", "array[int]", list[int], list[int]]:
    """``(succ, off, blockers, firsts)`` of ``tg`` (see the module); ``firsts``: the first
    task of each non-empty stream, in sorted (rank, stream) order.

    Ids are 32-bit while they fit and temporaries are dropped as soon as they are used:
    at 8,192 GPUs the edges are 11 million, and every 64-bit copy of them is 90 MB of
    fresh pages for the kernel to map.
    """
    n = len(tg.tasks)
    small = n < 2**31 - 1
    ids: type = np.int32 if small else np.int64
    queues = [q for q in (tg.streams[k] for k in sorted(tg.streams)) if q]
    firsts = [q[0] for q in queues]
    flat, lens = _flat(queues, ids)
    del queues
    # consecutive pairs inside each queue: position i and i + 1 unless i ends its queue
    follows = np.ones(len(flat), dtype=bool)
    follows[np.cumsum(lens) - 1] = False
    follows = follows[:-1]
    deps, counts = _flat(list(map(attrgetter("deps"), tg.tasks)), ids)
    src = np.concatenate((flat[:-1][follows], deps))
    dst = np.concatenate((flat[1:][follows], np.repeat(np.arange(n, dtype=ids), counts)))
    del flat, follows, deps, counts
    # each (a, b) once, at its first place (stream relations come before dependencies)
    code = src.astype(np.int64)
    code *= max(n, 1)
    code += dst
    by_code = np.argsort(code, kind="stable")
    code = code[by_code]
    repeats = by_code[1:][code[1:] == code[:-1]]  # an entry equal to the one before it
    del code, by_code
    if len(repeats):
        keep = np.ones(len(src), dtype=bool)
        keep[repeats] = False
        src, dst = src[keep], dst[keep]
        del keep
    order = np.argsort(src, kind="stable")
    off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=off[1:])
    del src
    blockers = np.bincount(dst, minlength=n).tolist()
    succ = array("i" if small else "q")
    succ.frombytes(dst[order].data.cast("B"))
    offsets = array("q")
    offsets.frombytes(off.data.cast("B"))
    return succ, offsets, blockers, firsts
