"""Lower a merged forward and backward unit (Megatron-Core's EP all-to-all overlap, :mod:`simcluster.plan.ep_overlap`).

One chain per simulated member runs the pair's steps in the plan's merged order, its labels switching between the
two passes so that every task keeps its own microbatch, chunk and phase. Each pass keeps what the builder needs of a
unit (:class:`PassMarks`): its first task (which the previous stage's send is added to), its last, and the task its
own pipeline send follows (the delayed weight gradients do not hold the send back: Megatron-Core computes the first
layer's after the chunk's p2p exchange).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from simcluster.lowering.chain import Labels, TaskChain
from simcluster.plan.ep_overlap import pair_steps
from simcluster.plan.schedules import Unit
from simcluster.plan.steps import Step

if TYPE_CHECKING:
    from simcluster.lowering.lower import Lowerer, UnitKey


@dataclass
class PassMarks:
    """Where one pass of a merged pair lies on its chain, per rank: its first task, the task its pipeline send
    follows (its last but the delayed weight gradients) and its last task."""

    first: dict[int, int] = field(default_factory=dict)
    out: dict[int, int] = field(default_factory=dict)
    last: dict[int, int] = field(default_factory=dict)

    def note(self, prev: dict[int, int], sends: bool) -> None:
        """A step of the pass has just been lowered; ``prev``: the chain's last task per rank."""
        for r, tid in prev.items():
            self.first.setdefault(r, tid)
            self.last[r] = tid
            if sends:
                self.out[r] = tid


def lower_pair(lw: "Lowerer", s: int, pair: tuple[Unit, Unit], chains: list[tuple[int, ...]],
               grads: dict[tuple[int, int], int] | None,
               units: tuple[dict["UnitKey", int], dict["UnitKey", int], dict["UnitKey", int]],
               stage_last: dict[int, int]) -> None:
    """A merged forward and backward on every chain of stage ``s``: their tasks, and each pass's first and last task
    and pipeline send in ``units`` (the builder's first, last and send maps); a blocking backward send also waits for
    the forward's, so that the stage's next unit waits for both."""
    first, last, send = units
    p = lw.plan.p
    (_, mbf, cf), (_, mbb, cb) = pair
    labels = {"F": Labels(s, mbf, cf, "F"), "B": Labels(s, mbb, cb, "B")}
    items: list[tuple[Labels | None, int, Step]] = [
        (labels[kind], key, step) for kind, key, step in pair_steps(lw.plan, cf * p + s, mbf, cb * p + s, mbb)]
    for members in chains:  # every chain of the stage runs the same steps
        ch = TaskChain(lw.tg, members, labels["F"], lw.comms.plan, lw.slow, lw.shared)
        ch.prev.update((r, stage_last[r]) for r in members if r in stage_last)
        marks = {kind: PassMarks() for kind in labels}
        lw.lower_steps(ch, items, members, grads, None, _noter(ch, marks))
        for r in members:
            sent = []
            for kind, mb, ck in pair:
                key, mk = (kind, ck * p + s, mb, r), marks[kind]
                first[key], last[key] = mk.first[r], mk.last[r]
                send[key] = lw.send_after(kind, ck * p + s, mb, r, mk.out[r], labels[kind])
                sent.append(send[key])
            stage_last[r] = ch.prev[r]
            sends = [t for t in sent if lw.tg.tasks[t].kind == "send"]
            if lw.plan.sends.blocking and sends:  # the stage's next unit waits for both (its compute stream keeps
                if len(sends) == 2:  # the order of the pair's tasks anyway)
                    t = lw.tg.tasks[sends[1]]
                    t.deps = t.deps + (sends[0],)
                stage_last[r] = sends[-1]


def _noter(ch: TaskChain, marks: dict[str, PassMarks]) -> Callable[[Labels, Step], None]:
    """After each step a pair lowers on ``ch``: the chain's last task noted for the step's pass (not as its send's
    task when the step is a delayed weight gradient)."""
    def noted(lb: Labels, step: Step) -> None:
        marks[lb.kind].note(ch.prev, step.phase != "weight_grad")
    return noted
