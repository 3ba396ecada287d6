"""``export-chakra``: the lowered task graph as one Chakra execution trace per simulated rank.

``<prefix>.<rank>.et`` for every simulated (representative) rank of the task graph, named
by its real rank id; ``GlobalMetadata.attr`` says how many real ranks it stands for
(``sc.multiplicity``). Each task on a rank's streams becomes a node with Chakra's own fields
and the attributes ASTRA-sim reads:

============== ================ =========================================================
task kind      node type        attributes
============== ================ =========================================================
compute,       COMP_NODE        ``is_cpu_op`` false, ``num_ops`` (FLOPs),
optimizer                       ``tensor_size`` (bytes), ``duration_micros``
collective     COMM_COLL_NODE   ``comm_type`` (ALL_REDUCE, ALL_GATHER, ...), ``comm_size``
                                (bytes), ``pg_ranks`` (the real ranks of the group)
send           COMM_SEND_NODE   ``comm_src``, ``comm_dst``, ``comm_tag``, ``comm_size``
============== ================ =========================================================

``ctrl_deps`` hold the dependencies within the rank. A dependency on another rank's send
becomes a ``COMM_RECV_NODE`` on this rank (id = number of tasks + the send's id, same
``comm_tag``) that the dependent node waits for, as Chakra expresses cross-rank order.

For an exact round trip each node also carries the whole task as ``sc.task`` (JSON: every
field, planned transfers and fused parts included), and the metadata carries the resolved
workload (``sc.workload``), the simulated ranks, the rank's stream order and the lowering's
notes (see :mod:`simcluster.chakra.protocol`). Reference: MLCommons Chakra,
``schema/protobuf/et_def.proto``; ASTRA-sim's Chakra feeder (``num_ops``, ``comm_*`` attributes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simcluster.chakra.protocol import CHAKRA_VERSION, SCHEMA, attr, dumps, pb, write_message
from simcluster.lowering.task import TaskGraph

COMM_TYPES = {"all_reduce": "ALL_REDUCE", "reduce": "REDUCE", "all_gather": "ALL_GATHER", "gather": "GATHER",
              "scatter": "SCATTER", "broadcast": "BROADCAST", "all_to_all": "ALL_TO_ALL",
              "reduce_scatter": "REDUCE_SCATTER", "barrier": "BARRIER"}
NODE_TYPES = {"compute": "COMP_NODE", "optimizer": "COMP_NODE", "collective": "COMM_COLL_NODE",
              "send": "COMM_SEND_NODE", "recv": "COMM_RECV_NODE"}


def lower_workload(spec: Any) -> tuple[TaskGraph, Any]:
    """The task graph of ``spec`` and its topology (what ``run`` simulates)."""
    from simcluster.run import lower_workload

    _, topo, tg = lower_workload(spec)
    return tg, topo


def _node(task: Any, rank: int, on_rank: set[int]) -> Any:
    """The Chakra node of ``task`` as seen from ``rank``."""
    n = pb.Node(id=task.id, name=task.name, type=getattr(pb, NODE_TYPES.get(task.kind, "COMP_NODE")))
    n.ctrl_deps.extend(d for d in task.deps if d in on_rank)
    n.duration_micros = max(0, round(task.duration * 1e6))
    a = [attr("is_cpu_op", False)]
    if task.kind in ("compute", "optimizer"):
        a += [attr("num_ops", int(round(task.flops))), attr("tensor_size", int(round(task.nbytes)))]
    elif task.kind == "collective":
        a += [attr("comm_type", int(getattr(pb, COMM_TYPES.get(task.op, "ALL_REDUCE")))),
              attr("comm_size", int(round(task.nbytes))), attr("pg_ranks", list(task.group))]
    elif task.kind in ("send", "recv"):
        src, dst = (task.group + (rank, rank))[:2]
        a += [attr("comm_src", int(src)), attr("comm_dst", int(dst)), attr("comm_tag", task.id),
              attr("comm_size", int(round(task.nbytes)))]
    a.append(attr("sc.task", dumps(task)))
    n.attr.extend(a)
    return n


def _recv_node(send: Any, rank: int, n_tasks: int) -> Any:
    """The receiving side of ``send`` on ``rank``."""
    n = pb.Node(id=n_tasks + send.id, name=send.name.replace("send", "recv", 1), type=pb.COMM_RECV_NODE)
    n.attr.extend([attr("is_cpu_op", False), attr("comm_src", int(send.group[0])), attr("comm_dst", rank),
                   attr("comm_tag", send.id), attr("comm_size", int(round(send.nbytes))),
                   attr("sc.synthetic", True)])
    return n


def write_traces(tg: TaskGraph, spec_dict: dict, out_dir: Path, prefix: str) -> list[Path]:
    """Write ``<prefix>.<rank>.et`` for every simulated rank of ``tg``; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(f"{prefix}.*.et"):
        stale.unlink()
    n_tasks = len(tg.tasks)
    common = [attr("sc.schema", SCHEMA), attr("sc.workload", json.dumps(spec_dict, sort_keys=True)),
              attr("sc.ranks", list(tg.ranks)), attr("sc.multiplicity", dumps(tg.multiplicity)),
              attr("sc.meta", dumps(tg.meta)), attr("sc.tasks", n_tasks)]
    paths = []
    for rank in tg.ranks:
        ids = sorted({i for (r, _), q in tg.streams.items() if r == rank for i in q})
        on_rank = set(ids)
        streams = {s: q for (r, s), q in tg.streams.items() if r == rank}
        meta = pb.GlobalMetadata(version=CHAKRA_VERSION)
        meta.attr.extend(common + [attr("sc.rank", rank), attr("sc.streams", dumps(streams))])
        path = out_dir / f"{prefix}.{rank}.et"
        with open(path, "wb") as f:
            write_message(f, meta)
            for i in ids:
                task = tg.tasks[i]
                node = _node(task, rank, on_rank)
                for d in task.deps:
                    dep = tg.tasks[d]
                    if d not in on_rank and dep.kind == "send" and len(dep.group) > 1 and dep.group[1] == rank:
                        write_message(f, _recv_node(dep, rank, n_tasks))
                        node.ctrl_deps.append(n_tasks + d)
                write_message(f, node)
        paths.append(path)
    return paths


def export_chakra(spec: Any, out_dir: Path, prefix: str | None = None) -> list[Path]:
    """Lower ``spec`` (a validated WorkloadSpec) and write its per-rank ``.et`` files into ``out_dir``."""
    tg, _ = lower_workload(spec)
    return write_traces(tg, spec.resolved_dict(), out_dir, prefix or spec.name)
