"""The one task type the engine runs (after MLCommons Chakra's execution-trace node).

Every piece of simulated work is a :class:`Task`: id, kind, dependencies, the
simulated ranks whose stream it occupies, its cost (a fixed duration for
compute, transfers for communication) and labels for reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simcluster.collectives.transfer import Transfer

KINDS = ("compute", "collective", "send", "recv", "optimizer")

# Phases label what a task is for (the Gantt colours follow them).
PHASES = (
    "forward",
    "backward",
    "recompute",
    "weight_grad",
    "tp_comm",
    "dp_comm",
    "pp_comm",
    "zero_comm",
    "optimizer",
)


@dataclass(slots=True, eq=False)
class Task:
    """One unit of work on one stream of one or more simulated ranks.

    ``ranks``: the simulated ranks whose ``stream`` the task occupies (a
    collective among several simulated ranks starts when all have reached it).
    ``duration``: seconds for compute and optimizer tasks.
    ``transfers``: for communication, phases run one after another.
    ``group``: the real ranks of the communicator (for reports).
    """

    id: int
    kind: str
    name: str
    ranks: tuple[int, ...]
    stream: str
    deps: tuple[int, ...] = ()
    duration: float = 0.0
    flops: float = 0.0
    nbytes: float = 0.0
    transfers: tuple[Transfer, ...] = ()
    op: str = ""
    group: tuple[int, ...] = ()
    phase: str = ""
    stage: int = -1
    microbatch: int = -1
    layer: int = -1
    chunk: int = -1
    parts: tuple["Part", ...] = ()


@dataclass(frozen=True, slots=True)
class Part:
    """One interval inside a fused task, at fixed offsets from the task's start.

    Layer-level work whose timing nothing else can disturb (a stage's compute and
    its tensor-parallel collectives on links no other traffic uses) is simulated
    as one task; its parts restore the per-layer rows of the timeline.
    """

    start: float
    end: float
    name: str
    kind: str
    stream: str
    phase: str
    layer: int
    flops: float
    nbytes: float
    transfers: tuple[Transfer, ...] = ()  # what a collective part puts on the links


@dataclass
class TaskGraph:
    """Tasks in id order plus, per (rank, stream), the order the stream runs them.

    Streams are in-order queues, like CUDA streams: a task starts when its
    dependencies are done and the task before it on every stream it occupies
    has finished.
    """

    tasks: list[Task] = field(default_factory=list)
    streams: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    ranks: tuple[int, ...] = ()  # simulated (representative) ranks
    multiplicity: dict[int, int] = field(default_factory=dict)  # real ranks each stands for
    meta: dict[str, Any] = field(default_factory=dict)

    def add(self, **kw: Any) -> Task:
        """Create a task with the next id and append it to its streams."""
        t = Task(id=len(self.tasks), **kw)
        self.tasks.append(t)
        for r in t.ranks:
            self.streams.setdefault((r, t.stream), []).append(t.id)
        return t
