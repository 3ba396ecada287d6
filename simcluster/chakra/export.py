"""``export-chakra``: the lowered task graph as Chakra execution traces, one per GPU.

``<prefix>.<rank>.et`` for every GPU of the job (``per_gpu``, the default: ASTRA-sim expects
one trace per NPU), or for every simulated (representative) rank only (``per_gpu=False``,
``--per-simulated-rank``), named by its real rank id; ``GlobalMetadata.attr`` says how many real
ranks a simulated rank stands for (``sc.multiplicity``). In symmetric fidelity the GPUs of a
pipeline stage run the same tasks as the stage's simulated rank: their traces are written from
it with every rank renamed by :func:`rank_map` (the GPU's tensor, context and data coordinates
added to each rank's, so that groups map to the GPU's own groups and pipeline sends to its own
neighbours), and carry ``sc.mirror_of`` (the simulated rank): ``run DIR`` reads the simulated
ranks' files and checks the others belong to the same export. Each task on a rank's streams becomes a node with Chakra's own fields
and the attributes ASTRA-sim reads:

============== ================ =========================================================
task kind      node type        attributes
============== ================ =========================================================
compute,       COMP_NODE        ``is_cpu_op`` false (true for host work, phase ``host``: DeepSpeed
optimizer                       ZeRO-3's per-rank loops, which ASTRA-sim then runs on the CPU
                                resource while its dependencies keep the GPU waiting), ``num_ops``
                                (FLOPs), ``tensor_size`` (bytes), ``duration_micros``
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
from typing import Any, Callable

from simcluster.chakra.protocol import CHAKRA_VERSION, SCHEMA, attr, dumps, pb, write_message
from simcluster.lowering.task import TaskGraph
from simcluster.plan.grid import RankGrid
from simcluster.plan.steps import HOST_PHASE

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
    a = [attr("is_cpu_op", task.phase == HOST_PHASE)]
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


def rank_map(grid: RankGrid, rank: int, zero_shard: int = 0) -> tuple[int, Callable[[int], int]]:
    """``(simulated rank, rename)`` for a GPU ``rank``: the simulated rank of its pipeline stage
    (tensor, context and data coordinates 0) and the map of that rank's peers to the GPU's own.

    Coordinates are shifted by the GPU's (modulo each degree); the data coordinate keeps ZeRO's
    hybrid shard groups (``zero_shard`` consecutive data ranks) and their replica groups whole.
    """
    tp, cp, dp, pp = grid.coords(rank)
    z = zero_shard or grid.d

    def rename(other: int) -> int:
        a, b, k, q = grid.coords(other)
        k2 = ((k // z + dp // z) % (grid.d // z)) * z + (k % z + dp % z) % z
        return grid.rank((a + tp) % grid.t, (b + cp) % grid.c, k2, q)

    return grid.rank(pp=pp), rename


def _renamed(node: Any, rename: Callable[[int], int]) -> Any:
    """``node`` with the ranks in its communication attributes renamed."""
    for a in node.attr:
        if a.name in ("comm_src", "comm_dst"):
            a.int64_val = rename(int(a.int64_val))
        elif a.name == "pg_ranks":
            values = sorted(rename(int(v)) for v in a.int64_list.values)  # a group: as the GPU's own is written
            del a.int64_list.values[:]
            a.int64_list.values.extend(values)
    return node


def write_traces(tg: TaskGraph, spec_dict: dict, out_dir: Path, prefix: str,
                 gpus: list[tuple[int, int, Callable[[int], int]]] | None = None) -> list[Path]:
    """Write ``<prefix>.<rank>.et`` for every simulated rank of ``tg`` or, with ``gpus`` (``(rank,
    simulated rank, rename)`` per GPU, :func:`rank_map`), for every GPU; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(f"{prefix}.*.et"):
        stale.unlink()
    n_tasks = len(tg.tasks)
    common = [attr("sc.schema", SCHEMA), attr("sc.workload", json.dumps(spec_dict, sort_keys=True)),
              attr("sc.ranks", list(tg.ranks)), attr("sc.multiplicity", dumps(tg.multiplicity)),
              attr("sc.meta", dumps(tg.meta)), attr("sc.tasks", n_tasks)]
    paths = []
    for gpu, rank, rename in gpus if gpus is not None else [(r, r, _same) for r in tg.ranks]:
        ids = sorted({i for (r, _), q in tg.streams.items() if r == rank for i in q})
        on_rank = set(ids)
        streams = {s: q for (r, s), q in tg.streams.items() if r == rank}
        meta = pb.GlobalMetadata(version=CHAKRA_VERSION)
        meta.attr.extend(common + [attr("sc.rank", rank), attr("sc.streams", dumps(streams))])
        if gpu != rank:
            meta.attr.extend([attr("sc.mirror_of", rank), attr("sc.gpu", gpu)])
        path = out_dir / f"{prefix}.{gpu}.et"
        with open(path, "wb") as f:
            write_message(f, meta)
            for i in ids:
                task = tg.tasks[i]
                node = _node(task, rank, on_rank)
                for d in task.deps:
                    dep = tg.tasks[d]
                    if d not in on_rank and dep.kind == "send" and len(dep.group) > 1 and dep.group[1] == rank:
                        write_message(f, _renamed(_recv_node(dep, rank, n_tasks), rename) if gpu != rank
                                      else _recv_node(dep, rank, n_tasks))
                        node.ctrl_deps.append(n_tasks + d)
                write_message(f, _renamed(node, rename) if gpu != rank else node)
        paths.append(path)
    return paths


def _same(rank: int) -> int:
    return rank


def gpu_ranks(spec: Any, tg: TaskGraph) -> list[tuple[int, int, Callable[[int], int]]] | None:
    """``(GPU, simulated rank, rename)`` for every GPU of ``spec``'s job, or None when every GPU is
    simulated already (full fidelity, or one GPU per stage)."""
    p = spec.parallelism
    grid = RankGrid(p.tensor, p.context, p.data or 1, p.pipeline)
    if set(tg.ranks) >= set(range(grid.size)):
        return None
    out = []
    for gpu in range(grid.size):
        rank, rename = rank_map(grid, gpu, getattr(p, "zero_shard", None) or 0)
        if rank not in tg.ranks:  # a layout whose simulated ranks are not one per stage: keep them as they are
            return None
        out.append((gpu, rank, rename))
    return out


def export_chakra(spec: Any, out_dir: Path, prefix: str | None = None, per_gpu: bool = True) -> list[Path]:
    """Lower ``spec`` (a validated WorkloadSpec) and write its ``.et`` files into ``out_dir``: one
    per GPU (``per_gpu``), or one per simulated rank."""
    tg, _ = lower_workload(spec)
    if per_gpu and tg.meta.get("fidelity") == "partial":  # the touched replicas' GPUs differ from the
        tg, _ = lower_workload(spec.model_copy(update={"fidelity": "full"}))  # rest: every GPU its own trace
    gpus = gpu_ranks(spec, tg) if per_gpu else None
    return write_traces(tg, spec.resolved_dict(), out_dir, prefix or spec.name, gpus)
