"""One simulation, end to end: spec → operator graph → tasks → timeline → figures → files.

This is the data flow of docs/architecture.md written out once; the CLI, sweeps and
searches call :func:`simulate_workload` and :func:`run_workload`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from simcluster.engine import SimResult, simulate
from simcluster.errors import Problem, SpecError
from simcluster.lowering.lower import LoweringOptions, lower
from simcluster.lowering.task import TaskGraph
from simcluster.metrics import check_invariants, summarize
from simcluster.metrics.invariants import check_timeline
from simcluster.plan import Plan, build_plan
from simcluster.spec.cluster import ClusterSpec
from simcluster.spec.workload import WorkloadSpec
from simcluster.topology.build import build_topology
from simcluster.topology.degrade import degrade_links, fail_links
from simcluster.topology.topology import Topology


@dataclass
class Outcome:
    """Everything one simulation produced."""

    spec: WorkloadSpec
    topo: Topology
    tasks: TaskGraph
    result: SimResult
    summary: dict
    details: dict


def recorded_links(topo: Topology, ranks: tuple[int, ...]) -> set[int]:
    """Links whose busy intervals go into the timeline: a simulated GPU's own links and
    the links of its way out of the node (to the next node's GPU and back)."""
    out: set[int] = set()
    names = {f"gpu{r}" for r in ranks}
    own: dict[tuple[str, str], int] = {}  # the link of each (src, dst) pair (the last, as topo.graph keeps)
    for i, (a, b) in enumerate(zip(*topo.link_endpoints)):
        if a in names or b in names:
            own[(a, b)] = i
    out.update(own.values())  # without building the whole graph (1.3 of 3.4 CPU s at 65,536 GPUs)
    for r in ranks:
        other = r + topo.gpus_per_node
        if topo.num_nodes > 1 and other < topo.num_gpus:
            out.update(topo.route(r, other))
            out.update(topo.route(other, r))
    return out


def build_cluster(cluster: ClusterSpec) -> Topology:
    """The topology of a validated cluster. One the builder cannot make (a case validation does
    not catch yet) is bad input: a SpecError naming ``cluster``, not a crash."""
    try:
        return build_topology(cluster)
    except ValueError as e:
        raise SpecError([Problem(cluster.source, None, "cluster", str(e))]) from None


def cluster_topology(spec: WorkloadSpec) -> Topology:
    """The cluster of ``spec`` with its degraded and failed links applied (:func:`build_cluster`)."""
    topo = build_cluster(spec.cluster)
    for key, apply in (("degraded_links", degrade_links), ("failed_links", fail_links)):
        try:
            apply(topo, getattr(spec.cluster, key))
        except ValueError as e:
            raise SpecError([Problem(spec.cluster.source, None, f"cluster.{key}", str(e))]) from None
    return topo


def lower_workload(spec: WorkloadSpec, options: LoweringOptions = LoweringOptions()
                   ) -> tuple[Plan, Topology, TaskGraph]:
    """The plan, the topology and the task graph of one iteration of ``spec``."""
    topo = cluster_topology(spec)
    plan = build_plan(spec, topo.device, embedding_and_head=options.include_embedding_head)
    return plan, topo, lower(plan, topo, options)


def simulate_workload(spec: WorkloadSpec, options: LoweringOptions = LoweringOptions(),
                      check: bool = True) -> Outcome:
    """Simulate one iteration of ``spec`` (a validated WorkloadSpec)."""
    plan, topo, tasks = lower_workload(spec, options)
    result = simulate(tasks, topo, record_links=recorded_links(topo, tasks.ranks))
    if check:
        check_invariants(tasks, result.start, result.end, result.released_by)
        check_timeline(result.timeline)
    summary, details = summarize(result, tasks, plan, topo)
    return Outcome(spec, topo, tasks, result, summary, details)


def add_warnings(summary: dict, details: dict) -> list[str]:
    """Put every warning of a run (the report page's list: memory, exposed communication,
    bubble, the simulation's own) into ``summary["warnings"]``; return them."""
    from simcluster.reporting.html import collect_warnings

    summary["warnings"] = [message for message, _ in collect_warnings(summary, details)]
    return list(summary["warnings"])


def write_outcome(outcome: Outcome, out_dir: Path) -> None:
    """Write every file of the contract into ``out_dir``, whole or not at all: into a temporary
    sibling folder that takes its place, with its completion marker, once every file is written
    (:func:`simcluster.runfolder.staged`). ``summary.json`` lists the run's warnings."""
    from simcluster.reporting import write_run  # reporting is the last stage of the flow
    from simcluster.runfolder import staged

    add_warnings(outcome.summary, outcome.details)
    with staged(Path(out_dir)) as tmp:
        write_run(tmp, outcome.result.timeline, outcome.summary, outcome.spec.resolved_dict(), outcome.details)


def run_workload(spec: WorkloadSpec, out_dir: Path) -> Outcome:
    """Simulate and write every file of the contract into ``out_dir`` (:func:`write_outcome`)."""
    outcome = simulate_workload(spec)
    write_outcome(outcome, out_dir)
    return outcome
