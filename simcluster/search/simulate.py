"""Tier 2: simulate the chosen layouts as a sweep (durable store, resumable, local or dask).

The layouts become one zip group of a sweep over the workload file, so every simulation
goes through :func:`simcluster.sweep.run_sweep`: validated like any workload, recorded in
``<out>/simulations/points.jsonl`` as it finishes (a rerun of the same search simulates
only what is missing), with the sweep's tqdm bar. The worker is the sweep's, plus the
simulator's per-stage breakdown of the iteration (averaged over stages, in seconds) as
``breakdown_*`` figures, which explain why one layout beats another.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from simcluster.search.layout import Layout
from simcluster.search.memory import layout_dependent_values
from simcluster.spec.sweep import Sweep, sweep_from_doc
from simcluster.spec.workload import SEARCH_KEYS, WorkloadSpec
from simcluster.spec.yamlio import YamlDoc

SIMULATIONS_DIR = "simulations"
BREAKDOWN = ("compute", "recompute", "exposed_tp_comm", "exposed_pp_comm", "exposed_dp_comm", "bubble", "optimizer",
             "exposed_ep_comm", "moe_imbalance", "host_wait")  # the MoE two: mixtures of experts only; host_wait:
# DeepSpeed ZeRO-3's host loops


def simulate_layout(spec: Any) -> dict[str, Any]:
    """One point in a worker process: the sweep worker's record, with the breakdown added."""
    from simcluster.errors import SpecError
    from simcluster.run import simulate_workload
    from simcluster.sweep.worker import memory_message, one_line, plain

    start = time.perf_counter()
    try:
        outcome = simulate_workload(spec)
    except SpecError as exc:
        reason = "; ".join(f"{p.key}: {p.reason}" if p.key else p.reason for p in exc.problems)
        return {"status": "invalid", "message": reason, "summary": None, "wall_s": time.perf_counter() - start}
    except Exception as exc:  # noqa: BLE001 - a failure of one point is that point's result
        return {"status": "error", "message": one_line(exc), "summary": None, "wall_s": time.perf_counter() - start}
    summary = plain(outcome.summary)
    stages = outcome.details.get("breakdown") or []
    for part in BREAKDOWN:
        summary[f"breakdown_{part}_s"] = sum(float(s.get(part, 0.0)) for s in stages) / len(stages) if stages else 0.0
    return {"status": "ok", "message": memory_message(summary), "summary": summary,
            "wall_s": time.perf_counter() - start}


def make_executor(kind: str, jobs: int | None, scheduler: str | None) -> Any:
    """The sweep's executors, running :func:`simulate_layout` (raises MissingExtra without dask)."""
    from simcluster.sweep.executors import DaskExecutor, LocalExecutor

    if kind == "dask":
        return DaskExecutor(jobs, scheduler, fn=simulate_layout)
    return LocalExecutor(jobs, fn=simulate_layout)


def layout_sweep(workload: Path, name: str, fixed: dict[str, Any], layouts: list[Layout],
                 spec: WorkloadSpec | None = None) -> Sweep:
    """A sweep of ``layouts`` over the workload file, with ``fixed`` overrides on every point; with ``spec``
    (the workload as loaded) each point also sets the keys its layout decides
    (:func:`simcluster.search.memory.dependent_values`)."""
    zipped: dict[str, list[Any]] = {key: [layout.values()[key] for layout in layouts] for key in SEARCH_KEYS}
    if spec is not None:
        derived = [layout_dependent_values(spec, lay) for lay in layouts]
        for key in derived[0] if derived else ():
            zipped[key] = [d[key] for d in derived]
    data = {"name": name, "base": str(Path(workload).resolve()), "set": dict(fixed), "zip": [zipped]}
    return sweep_from_doc(YamlDoc(data, f"<search of {workload}>"), base_dir=Path.cwd())


def simulate(sweep: Sweep, out_dir: Path, executor: Any, *, fresh: bool = False,
             progress: bool | None = None) -> tuple[pd.DataFrame, Any]:
    """Run the sweep into ``out_dir/simulations``; (results table in the layouts' order, outcome)."""
    from simcluster.sweep.runner import run_sweep

    outcome = run_sweep(sweep, Path(out_dir) / SIMULATIONS_DIR, executor, fresh=fresh, progress=progress,
                        reports=False)
    return outcome.table, outcome
