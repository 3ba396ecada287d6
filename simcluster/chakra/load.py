"""``run DIR``: simulate a folder of Chakra ``.et`` files written by ``export-chakra``.

The files' ``sc.*`` attributes give back the exact task graph (tasks, stream order,
planned transfers) and the resolved workload, so the simulation repeats the original
run's iteration time. ``--set`` overrides apply to that workload for the reports (its
name, say); overrides that change the cluster are refused: the transfers in the traces
were planned on the recorded one, and re-planning them (and the fused layer tasks whose
durations include tensor-parallel communication) is not implemented yet. Traces from
other tools (PyTorch's execution-trace converter, ASTRA-sim's generators) lack these
attributes and are refused with a message saying so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simcluster.chakra.check import graph_problems
from simcluster.chakra.protocol import SCHEMA, attrs_of, loads, pb, read_messages
from simcluster.errors import Problem, SpecError
from simcluster.lowering.task import TaskGraph

NOT_CLUSTER = ("num_gpus", "source")


def _unset_dropped(value: Any) -> Any:
    """``value`` without its None entries, at every depth: a key an older export did not write (a device's
    ``peak_flops_range``) compares equal to one written unset."""
    if isinstance(value, dict):
        return {k: _unset_dropped(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_unset_dropped(v) for v in value]
    return value


def _problem(path: Path, reason: str) -> SpecError:
    return SpecError([Problem(str(path), None, "", reason)])


def _read(path: Path) -> tuple[dict, list[Any]]:
    """A file's metadata attributes and its nodes."""
    try:
        messages = list(read_messages(path.read_bytes()))
        meta = pb.GlobalMetadata()
        meta.ParseFromString(messages[0])
        nodes = []
        for m in messages[1:]:
            n = pb.Node()
            n.ParseFromString(m)
            nodes.append(n)
    except Exception as e:  # a truncated or foreign file
        raise _problem(path, f"not a Chakra execution trace ({e})") from None
    return attrs_of(meta), nodes


def load_traces(trace_dir: Path, overrides: list[str] | tuple[str, ...] = ()) -> tuple[Any, TaskGraph]:
    """``(spec, task graph)`` from the ``.et`` files in ``trace_dir`` (see the module docstring).

    Raises SpecError for files that are not a complete, consistent export (the graph
    itself is checked by :func:`simcluster.chakra.check.graph_problems` before simulating).
    """
    try:
        return _load_traces(Path(trace_dir), overrides)
    except (KeyError, ValueError, TypeError, AttributeError, IndexError) as e:  # attributes missing or malformed
        raise _problem(Path(trace_dir), f"not a readable simcluster export ({type(e).__name__}: {e})") from None


def _load_traces(trace_dir: Path, overrides: list[str] | tuple[str, ...]) -> tuple[Any, TaskGraph]:
    from simcluster.spec.workload import workload_from_data

    trace_dir = Path(trace_dir)
    files = sorted(trace_dir.glob("*.et"))
    if not files:
        raise _problem(trace_dir, "no .et files in this folder")
    tasks: dict[int, Any] = {}
    streams: dict[tuple[int, str], list[int]] = {}
    first: dict | None = None
    for path in files:
        meta, nodes = _read(path)
        if meta.get("sc.schema") != SCHEMA:
            raise _problem(path, "not written by `simcluster export-chakra` (no sc.* attributes); simulating "
                                 "Chakra traces from other tools is not supported yet")
        if first is None:
            first = meta
        elif any(meta.get(k) != first.get(k) for k in ("sc.workload", "sc.ranks", "sc.tasks")):
            raise _problem(path, "belongs to another export than the other files in this folder")
        if "sc.mirror_of" in meta:  # another GPU of a simulated rank's stage: the same tasks, renamed
            continue
        for (stream, order) in loads(meta["sc.streams"]).items():
            streams[(int(meta["sc.rank"]), stream)] = list(order)
        for n in nodes:
            a = attrs_of(n)
            if "sc.task" in a:
                tasks.setdefault(n.id, loads(a["sc.task"]))
    assert first is not None
    n_tasks = int(first["sc.tasks"])
    ranks = tuple(int(r) for r in first["sc.ranks"])
    missing = [r for r in ranks if not any(k[0] == r for k in streams)]
    if missing or sorted(tasks) != list(range(n_tasks)):
        raise _problem(trace_dir, f"incomplete export: {len(tasks)} of {n_tasks} tasks"
                                  + (f", no file for ranks {missing}" if missing else ""))
    tg = TaskGraph(tasks=[tasks[i] for i in range(n_tasks)], streams=dict(sorted(streams.items())), ranks=ranks,
                   multiplicity=loads(first["sc.multiplicity"]), meta=loads(first["sc.meta"]))
    recorded = json.loads(first["sc.workload"])
    data = {k: v for k, v in recorded.items() if k not in ("num_gpus", "num_microbatches", "source")}
    data["cluster"] = {k: v for k, v in data["cluster"].items() if k not in NOT_CLUSTER}
    spec = workload_from_data(data, source=str(trace_dir), overrides=list(overrides))
    was = _unset_dropped({k: v for k, v in recorded["cluster"].items() if k not in NOT_CLUSTER})
    now = _unset_dropped({k: v for k, v in spec.resolved_dict()["cluster"].items() if k not in NOT_CLUSTER})
    if was != now:
        raise _problem(trace_dir, "these traces were planned on another cluster; simulating them on a different "
                                  "one is not supported yet (export again with --set cluster...)")
    return spec, tg


def simulate_traces(trace_dir: Path, overrides: list[str] | tuple[str, ...] = ()) -> Any:
    """Simulate the traces in ``trace_dir``; a :class:`simcluster.run.Outcome`."""
    from simcluster.engine import simulate
    from simcluster.metrics import check_invariants, summarize
    from simcluster.plan import build_plan
    from simcluster.run import Outcome, cluster_topology, recorded_links

    spec, tg = load_traces(trace_dir, overrides)
    topo = cluster_topology(spec)  # a cluster the builder cannot make: SpecError
    problems = graph_problems(tg.tasks, tg.streams, len(topo.link_bandwidth))
    if problems:
        raise SpecError([Problem(str(trace_dir), None, "", reason) for reason in problems])
    result = simulate(tg, topo, record_links=recorded_links(topo, tg.ranks))
    check_invariants(tg, result.start, result.end, result.released_by)
    summary, details = summarize(result, tg, build_plan(spec, topo.device), topo)
    return Outcome(spec, topo, tg, result, summary, details)


def run_traces(trace_dir: Path, out_dir: Path, overrides: list[str] | tuple[str, ...] = ()) -> Any:
    """Simulate the traces in ``trace_dir`` and write every report into ``out_dir`` (like ``run``)."""
    from simcluster.run import write_outcome

    outcome = simulate_traces(trace_dir, overrides)
    write_outcome(outcome, Path(out_dir))
    return outcome
