"""The public Python API: load a workload, simulate it, sweep and search, from a notebook.

```python
import simcluster

w = simcluster.load("workloads/toy-8gpu.yaml", overrides=["parallelism.tensor=4"])
r = simcluster.simulate(w)
r.summary["tokens_per_s"]         # the figures of summary.json
r.timeline.head()                 # one row per simulated interval (pandas)
r.breakdown                       # where each pipeline stage's iteration goes
r.memory                          # each stage's memory footprint
r.write("reports/toy")            # the files `simcluster run` writes
table = simcluster.sweep({"base": "workloads/toy-8gpu.yaml", "grid": {"training.micro_batch": [1, 2]}})
best = simcluster.search("workloads/toy-8gpu.yaml", top=5, max_simulations=5)
```

Bad input raises :class:`simcluster.SpecError` (``.problems``: one per mistake, as the command
line prints them). The names in :data:`__all__` are stable; see docs/api.md.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from simcluster.errors import Problem, SpecError
from simcluster.spec.workload import WorkloadSpec

__all__ = ["Result", "SpecError", "Problem", "WorkloadSpec", "load", "search", "simulate", "sweep"]


def load(path_or_dict: str | Path | Mapping[str, Any], overrides: Iterable[str] = ()) -> WorkloadSpec:
    """A validated workload from a YAML file or a mapping of the same keys, with ``overrides``
    (``"key=value"`` strings, as ``--set``) applied; raises :class:`SpecError`.

    >>> w = load({"model": {"preset": "llama3-8b"}, "training": {"global_batch": 512},
    ...           "parallelism": {"tensor": 8}, "cluster": {"preset": "dgx-h100", "nodes": 8}})
    >>> w.num_gpus
    64

    In a mapping, relative paths (``model.from``, ``cluster.path``) are read from the current folder.
    """
    from simcluster.spec import load_workload, workload_from_data

    if isinstance(path_or_dict, Mapping):
        return workload_from_data(_plain(path_or_dict), overrides=list(overrides))
    return load_workload(path_or_dict, overrides=list(overrides))


@dataclass
class Result:
    """One simulated iteration: ``summary`` (the dict of summary.json), ``timeline`` (a DataFrame,
    one row per simulated interval), ``breakdown`` and ``memory`` (DataFrames, one row per
    pipeline stage), ``details`` (everything else the reports draw); :meth:`write` writes the
    files of ``simcluster run``."""

    workload: WorkloadSpec
    summary: dict[str, Any]
    details: dict[str, Any] = field(repr=False)
    _outcome: Any = field(repr=False)

    @property
    def timeline(self) -> pd.DataFrame:
        """One row per simulated interval: gpu or link, stream, task, kind, phase, stage,
        microbatch, start_s, end_s (the columns of timeline.parquet)."""
        from simcluster.reporting.files import normalize_timeline

        return normalize_timeline(self._outcome.result.timeline)

    @property
    def breakdown(self) -> pd.DataFrame:
        """Per pipeline stage: compute, recompute, exposed communication, bubble, optimizer (seconds)."""
        return pd.DataFrame(self.details.get("breakdown", []))

    @property
    def memory(self) -> pd.DataFrame:
        """Per pipeline stage: the memory footprint by part (bytes)."""
        return pd.DataFrame(self.details.get("memory", []))

    def write(self, out_dir: str | Path) -> Path:
        """Write summary.json, config.json, the timeline, the plots and report.html into ``out_dir``
        (whole or not at all, as ``simcluster run`` does); the folder."""
        from simcluster.run import write_outcome
        from simcluster.runfolder import check_out_dir

        out = check_out_dir(out_dir, where="out_dir")
        write_outcome(self._outcome, out)
        return out


def simulate(workload: WorkloadSpec | str | Path | Mapping[str, Any]) -> Result:
    """Simulate one training iteration of ``workload`` (a :func:`load`-ed workload, or what
    :func:`load` accepts); raises :class:`SpecError` for a workload that cannot be simulated.

    >>> r = simulate(load("workloads/toy-8gpu.yaml"))
    >>> round(r.summary["mfu"], 2), len(r.timeline) > 0
    """
    from simcluster.engine.errors import RunawayError
    from simcluster.run import simulate_workload

    spec = workload if isinstance(workload, WorkloadSpec) else load(workload)
    try:
        outcome = simulate_workload(spec)
    except RunawayError as e:
        raise SpecError([Problem(spec.source, None, "", f"cannot be simulated: {e}")]) from None
    return Result(spec, outcome.summary, outcome.details, outcome)


def _plain(data: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a mapping as plain dicts and lists (what YAML gives)."""
    return json.loads(json.dumps(data, default=str))


def _as_file(what: str | Path | Mapping[str, Any], folder: Path, name: str) -> Path:
    """A file holding ``what``: a path as is, a mapping written as JSON (which YAML reads)."""
    if not isinstance(what, Mapping):
        return Path(what)
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(_plain(what), indent=1), encoding="utf-8")
    return path


def _executor(jobs: int | None) -> Any:
    from simcluster.sweep.executors import make_executor

    return make_executor("local", jobs)


def sweep(sweep_file_or_dict: str | Path | Mapping[str, Any], out: str | Path | None = None,
          jobs: int | None = 1) -> pd.DataFrame:
    """Run a sweep (a sweep YAML file, or a mapping of its keys: ``base``, ``grid``, ``zip``,
    ``set``, ``filters``); the results table, one row per point (the swept keys, every summary
    figure, ``status``, ``message``, ``wall_s``). ``base`` may itself be a workload mapping.
    With ``out`` the files of ``simcluster sweep`` are written there (and finished points
    reused); without, nothing is kept.

    >>> table = sweep({"base": "workloads/toy-8gpu.yaml", "grid": {"training.micro_batch": [1, 2, 4]}})
    >>> table[["training.micro_batch", "iteration_time_s"]]
    """
    from simcluster.runfolder import check_out_dir
    from simcluster.spec.sweep import load_sweep
    from simcluster.sweep.runner import run_sweep

    with tempfile.TemporaryDirectory(prefix="simcluster-sweep-") as tmp:
        folder = Path(tmp)
        if isinstance(sweep_file_or_dict, Mapping):
            data = _plain(sweep_file_or_dict)
            data.setdefault("name", "sweep")
            if isinstance(data.get("base"), dict):
                data["base"] = str(_as_file(data["base"], folder, "base").resolve())
            elif isinstance(data.get("base"), str):
                data["base"] = str(Path(data["base"]).resolve())
            path = _as_file(data, folder, "sweep")
        else:
            path = Path(sweep_file_or_dict)
        loaded = load_sweep(path)
        target = check_out_dir(out, where="out") if out is not None else folder / "out"
        outcome = run_sweep(loaded, target, _executor(jobs), progress=False, reports=out is not None)
        return outcome.table


def search(workload: str | Path | Mapping[str, Any] | WorkloadSpec, gpus: int | tuple[int, int] | None = None,
           top: int = 10, *, objective: str | None = None, max_simulations: int | None = None,
           overrides: Iterable[str] = (), out: str | Path | None = None, jobs: int | None = 1) -> pd.DataFrame:
    """The best parallel layouts of ``workload``'s model, batch and cluster: the ranking table
    (best first: the layout keys and every summary figure), as ``simcluster search`` writes in
    ranking.csv. ``gpus``: at most N, or a range ``(A, B)``; ``overrides`` hold keys (``--set``,
    e.g. ``"parallelism.tensor=8"``); ``max_simulations`` bounds the layouts simulated.

    A :class:`WorkloadSpec` is searched from the file it was loaded from (its overrides are not
    kept: pass them as ``overrides``).

    >>> ranking = search("workloads/toy-8gpu.yaml", top=3, max_simulations=4)
    >>> ranking.iloc[0]
    """
    from simcluster.search.runner import SearchOptions, run_search

    if isinstance(workload, WorkloadSpec):
        if not Path(workload.source).is_file():
            raise SpecError([Problem(workload.source, None, "", "search needs a workload file or mapping; "
                                     "this workload was not loaded from a file")])
        workload = workload.source
    bounds = None if gpus is None else (None, gpus) if isinstance(gpus, int) else (gpus[0], gpus[1])
    with tempfile.TemporaryDirectory(prefix="simcluster-search-") as tmp:
        folder = Path(tmp)
        if isinstance(workload, Mapping):
            data = _plain(workload)
            data.setdefault("name", "search")
            model = data.get("model")
            if isinstance(model, dict) and isinstance(model.get("from"), str):
                model["from"] = str(Path(model["from"]).resolve())
            cluster = data.get("cluster")
            if isinstance(cluster, dict) and isinstance(cluster.get("path"), str):
                cluster["path"] = str(Path(cluster["path"]).resolve())
            workload = _as_file(data, folder, str(data["name"]))
        opts = SearchOptions(workload=Path(workload), out=Path(out) if out is not None else folder / "out",
                             gpus=bounds, top=top, objective=objective, fix=list(overrides),
                             max_simulations=max_simulations, jobs=jobs, reports=out is not None, progress=False)
        return run_search(opts).table
