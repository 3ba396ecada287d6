"""Chains: how a unit's ordered work becomes tasks (explicit) or parts of one task (fused).

A pipeline unit (one forward or backward pass of one model chunk for one
microbatch) is an ordered chain of compute blocks and collectives. The same
unit-building code drives either chain:

- :class:`TaskChain` adds one task per compute block per simulated member and
  one task per collective per group (a collective among several simulated
  members starts when all have reached it);
- :class:`PartsChain` records the same work as :class:`Part` offsets of a single
  fused task, costing each collective as uncontended: the sum over its phases of
  latency + nbytes / min_l(B_l / w_l) (the engine's rate for a flow alone on its
  links, mirrors included in the weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from simcluster.collectives.transfer import Transfer, uncontended_time
from simcluster.lowering.task import Part, Task, TaskGraph

# A collective in a chain: (ranks of the task, real group, mirror offsets)
Group = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]


@dataclass
class Labels:
    """Where a unit's tasks belong: stage, microbatch, model chunk, and the pass (F, B or W)."""

    stage: int
    microbatch: int
    chunk: int
    kind: str = ""


class TaskChain:
    """Adds tasks to ``tg`` for ``members`` (simulated ranks), each member's work in order."""

    def __init__(self, tg: TaskGraph, members: tuple[int, ...], labels: Labels,
                 plan: Callable[[str, tuple[int, ...], float, tuple[int, ...]], tuple[Transfer, ...]],
                 slow: dict[int, float] | None = None, shared: dict[tuple[object, ...], int] | None = None):
        self.tg, self.members, self.labels, self.plan = tg, members, labels, plan
        # collectives whose group spans several chains (full fidelity: a data-parallel group joins the
        # chains of its replicas): one task, made by the first chain, joined by the others
        self.shared = shared if shared is not None else {}
        self.slow = slow or {}  # straggler GPUs: compute slowdown factor
        self.prev: dict[int, int] = {}
        self.first: dict[int, int] = {}
        self.joins: dict[int, list[int]] = {}  # extra dependencies of each member's next chain task

    def _add(self, ranks: tuple[int, ...], extra: tuple[int, ...] = (), on_chain: bool = True,
             **kw: Any) -> int:
        deps = tuple(self.prev[r] for r in ranks if r in self.prev) if on_chain else ()
        if on_chain and self.joins:
            deps += tuple(j for r in ranks for j in self.joins.pop(r, ()))
        lb = self.labels
        t = self.tg.add(ranks=ranks, deps=deps + extra, stage=lb.stage, microbatch=lb.microbatch,
                        chunk=lb.chunk, **kw)
        if on_chain:
            for r in ranks:
                self.prev[r] = t.id
                self.first.setdefault(r, t.id)
        return t.id

    def compute(self, name: str, secs: float, flops: float, phase: str, layer: int,
                after: dict[int, int] | None = None) -> dict[int, int]:
        """A compute block per member, after the chain (and ``after[member]`` if given).

        The bulk of a full-fidelity graph (six tasks in seven): :meth:`_add`'s work written out
        with positional fields, same ids and dependencies in the same order."""
        tasks, streams, lb, slow = self.tg.tasks, self.tg.streams, self.labels, self.slow
        prev, joins, first = self.prev, self.joins, self.first
        out: dict[int, int] = {}
        for r in self.members:
            p = prev.get(r)
            deps: tuple[int, ...] = () if p is None else (p,)
            if joins:
                deps += tuple(joins.pop(r, ()))
            if after and r in after:
                deps += (after[r],)
            tid = len(tasks)
            tasks.append(Task(tid, "compute", name, (r,), "compute", deps, secs * slow.get(r, 1.0), flops, 0.0,
                              (), "", (), phase, lb.stage, lb.microbatch, layer, lb.chunk))
            streams.setdefault((r, "compute"), []).append(tid)
            prev[r] = tid
            first.setdefault(r, tid)
            out[r] = tid
        return out

    def collective(self, groups: list[Group], op: str, nbytes: float, name: str, stream: str,
                   phase: str, layer: int) -> None:
        mine = set(self.members)
        for ranks, group, mirrors in groups:
            if mine.issuperset(ranks):
                self._add(ranks, kind="collective", name=name, stream=stream,
                          transfers=self.plan(op, group, nbytes, mirrors), nbytes=nbytes, op=op,
                          group=group, phase=phase, layer=layer)
                continue
            # a group spanning several chains (full fidelity: an expert group over data-parallel
            # replicas): one task, made by the first chain, that every chain's members wait for
            lb = self.labels
            key = (name, lb.kind, lb.stage, lb.microbatch, lb.chunk, group)
            own = tuple(r for r in ranks if r in mine)
            tid = self.shared.get(key)
            if tid is None:
                tid = self.shared[key] = self._add(ranks, kind="collective", name=name, stream=stream,
                                                   transfers=self.plan(op, group, nbytes, mirrors), nbytes=nbytes,
                                                   op=op, group=group, phase=phase, layer=layer)
                continue
            task = self.tg.tasks[tid]
            task.deps = task.deps + tuple(self.prev[r] for r in own if r in self.prev) \
                + tuple(j for r in own for j in self.joins.pop(r, ()))
            for r in own:
                self.prev[r] = tid
                self.first.setdefault(r, tid)

    def join(self, ids: dict[int, int]) -> None:
        """Make each member's next chain task also wait for ``ids[member]`` (a side task)."""
        for r, tid in ids.items():
            self.joins.setdefault(r, []).append(tid)

    def side(self, groups: list[Group], op: str, nbytes: float, name: str, stream: str, phase: str,
             layer: int, after: dict[int, int] | None = None, slot: int = 0) -> dict[int, int]:
        """A collective beside the chain: ordered by its stream (and ``after``), not waited for. ``slot`` tells apart
        collectives of one unit that share a name (the embedding's and the head's, both labelled layer −1), so that
        chains joining a group across replicas (full fidelity) join the same one."""
        ids: dict[int, int] = {}
        mine = set(self.members)
        for ranks, group, mirrors in groups:
            extra = tuple(after[r] for r in ranks if after and r in after)
            lb = self.labels
            key = (name, slot, lb.kind, lb.stage, lb.microbatch, lb.chunk, group)
            if not mine.issuperset(ranks) and key in self.shared:
                tid = self.shared[key]
                task = self.tg.tasks[tid]
                task.deps = task.deps + extra
                ids.update((r, tid) for r in ranks)
                continue
            tid = self._add(ranks, extra=extra, on_chain=False, kind="collective", name=name,
                            stream=stream, transfers=self.plan(op, group, nbytes, mirrors),
                            nbytes=nbytes, op=op, group=group, phase=phase, layer=layer)
            if not mine.issuperset(ranks):
                self.shared[key] = tid
            ids.update((r, tid) for r in ranks)
        return ids


class PartsChain:
    """Records one member's unit as parts of a single fused task.

    A collective beside the chain (:meth:`side`) runs from the start of the next compute part, which
    progresses at ``1 − slowdown`` of its speed while it runs (:mod:`simcluster.costs.contention`): a
    compute of s seconds beside a collective of c ends at s + slowdown·c when c·(1 − slowdown) < s, else at
    s / (1 − slowdown); the chain goes on when both have ended, as the engine runs the same tasks."""

    def __init__(self, plan: Callable[[str, tuple[int, ...], float, tuple[int, ...]], tuple[Transfer, ...]],
                 bandwidth: Sequence[float], slowdown: float = 0.0):
        self.plan, self.bw, self.slowdown = plan, bandwidth, slowdown
        self.parts: list[Part] = []
        self.t = 0.0
        self._beside: list[dict[str, Any]] = []

    def _part(self, secs: float, **kw: Any) -> None:
        self.parts.append(Part(start=self.t, end=self.t + secs, **kw))
        self.t += secs

    def compute(self, name: str, secs: float, flops: float, phase: str, layer: int,
                after: dict[int, int] | None = None) -> dict[int, int]:
        if not self._beside:
            self._part(secs, name=name, kind="compute", stream="compute", phase=phase, layer=layer,
                       flops=flops, nbytes=0.0)
            return {}
        start, a = self.t, self.slowdown
        comm = max(kw["secs"] for kw in self._beside)
        end = start + (secs + a * comm if comm * (1 - a) < secs else secs / (1 - a))
        self.parts.append(Part(start=start, end=end, name=name, kind="compute", stream="compute", phase=phase,
                               layer=layer, flops=flops, nbytes=0.0))
        for kw in self._beside:
            secs_c = kw.pop("secs")
            self.parts.append(Part(start=start, end=start + secs_c, **kw))
        self._beside = []
        self.t = max(end, start + comm)
        return {}

    def collective(self, groups: list[Group], op: str, nbytes: float, name: str, stream: str,
                   phase: str, layer: int) -> None:
        ranks, group, mirrors = groups[0]
        transfers = self.plan(op, group, nbytes, mirrors)
        secs = uncontended_time(transfers, self.bw)
        self._part(secs, name=name, kind="collective", stream=stream, phase=phase, layer=layer,
                   flops=0.0, nbytes=nbytes, transfers=transfers)

    def side(self, groups: list[Group], op: str, nbytes: float, name: str, stream: str, phase: str,
             layer: int, after: dict[int, int] | None = None, slot: int = 0) -> dict[int, int]:
        """A collective beside the next compute part (tensor-parallel reductions beside the weight-gradient
        GEMMs: :mod:`simcluster.plan.tp_grad_overlap`; units with other side traffic are not fused). ``slot``: as
        :meth:`TaskChain.side` (one fused task shares nothing)."""
        ranks, group, mirrors = groups[0]
        transfers = self.plan(op, group, nbytes, mirrors)
        self._beside.append(dict(secs=uncontended_time(transfers, self.bw), name=name, kind="collective",
                                 stream=stream, phase=phase, layer=layer, flops=0.0, nbytes=nbytes,
                                 transfers=transfers))
        return {}

    def join(self, ids: dict[int, int]) -> None:
        """Nothing to record: the next compute part already waits for what ran beside it."""
