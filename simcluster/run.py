"""One simulation, end to end: spec → operator graph → tasks → timeline → figures → files.

This is the data flow of DESIGN.md written out once; the CLI, sweeps and
searches call :func:`simulate_workload` and :func:`run_workload`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simcluster.engine import SimResult, simulate
from simcluster.errors import Problem, SpecError
from simcluster.lowering.lower import LoweringOptions, lower
from simcluster.lowering.task import TaskGraph
from simcluster.metrics import check_invariants, summarize
from simcluster.topology.build import build_topology
from simcluster.topology.degrade import degrade_links, fail_links
from simcluster.workload import build_operator_graph


@dataclass
class Outcome:
    """Everything one simulation produced."""

    spec: Any
    topo: Any
    tasks: TaskGraph
    result: SimResult
    summary: dict
    details: dict


def recorded_links(topo: Any, ranks: tuple[int, ...]) -> set[int]:
    """Links whose busy intervals go into the timeline: a simulated GPU's own links and
    the links of its way out of the node (to the next node's GPU and back)."""
    out: set[int] = set()
    g = topo.graph
    for r in ranks:
        node = f"gpu{r}"
        if node in g:
            out.update(d["link"] for _, _, d in g.out_edges(node, data=True))
            out.update(d["link"] for _, _, d in g.in_edges(node, data=True))
        other = r + topo.gpus_per_node
        if topo.num_nodes > 1 and other < topo.num_gpus:
            out.update(topo.route(r, other))
            out.update(topo.route(other, r))
    return out


def simulate_workload(spec: Any, options: LoweringOptions = LoweringOptions(),
                      check: bool = True) -> Outcome:
    """Simulate one iteration of ``spec`` (a validated WorkloadSpec)."""
    topo = build_topology(spec.cluster)
    for key, apply in (("degraded_links", degrade_links), ("failed_links", fail_links)):
        try:
            apply(topo, getattr(spec.cluster, key, None) or {})
        except ValueError as e:
            raise SpecError([Problem(spec.cluster.source, None, f"cluster.{key}", str(e))]) from None
    graph = build_operator_graph(spec.model, spec.training)
    tasks = lower(graph, spec, topo, options=options)
    result = simulate(tasks, topo, record_links=recorded_links(topo, tasks.ranks))
    if check:
        check_invariants(tasks, result.start, result.end)
    summary, details = summarize(result, tasks, spec, topo)
    return Outcome(spec, topo, tasks, result, summary, details)


def run_workload(spec: Any, out_dir: Path) -> Outcome:
    """Simulate and write every file of the contract into ``out_dir``."""
    from simcluster.reporting import write_run  # reporting is the last stage of the flow

    outcome = simulate_workload(spec)
    write_run(Path(out_dir), outcome.result.timeline, outcome.summary, spec.resolved_dict(),
              outcome.details)
    return outcome
