"""One sweep, end to end: expand → validate each point → skip what the store has →
simulate the rest on an executor, recording each as it lands → results.csv → report.

```python
sweep = load_sweep("workloads/sweeps/toy-layouts.yaml")
outcome = run_sweep(sweep, Path("reports/toy-layouts"), LocalExecutor(jobs=2))
outcome.table        # the results table (one row per point, in the sweep's order)
```

Points are validated in this process (a few milliseconds each): an invalid point is
recorded at once with the reason; valid points with the same resolved configuration are
simulated once and share the result.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from simcluster.errors import SpecError
from simcluster.spec.sweep import RANK_METRICS, Sweep
from simcluster.sweep.executors import LocalExecutor
from simcluster.sweep.export import PreparedPoint, ranked, results_table, write_results
from simcluster.sweep.grid import expand, product_size
from simcluster.sweep.progress import Progress
from simcluster.sweep.store import Store, config_key, invalid_key

STORE_NAME = "points.jsonl"


@dataclass
class SweepOutcome:
    """What a sweep did and wrote."""

    out_dir: Path
    table: pd.DataFrame
    info: dict[str, Any]
    from_store: int  # distinct configurations found finished in the store
    simulated: int  # distinct configurations simulated by this run
    wall_s: float
    files: list[Path] = field(default_factory=list)

    @property
    def best(self) -> pd.Series | None:
        """The best row that ran and fits in memory, or None."""
        rows = ranked(self.table, self.info["rank_by"], self.info["larger_is_better"])
        return None if rows.empty else rows.iloc[0]


def problem_text(exc: SpecError) -> str:
    """A SpecError's problems as one line: ``key: reason; key: reason``."""
    return "; ".join(f"{p.key}: {p.reason}" if p.key else str(p) for p in exc.problems)


def prepare(sweep: Sweep, points: list[dict[str, Any]]) -> list[PreparedPoint]:
    """Validate every point; give each its store key."""
    out = []
    for index, values in enumerate(points):
        try:
            spec = sweep.workload(values)
        except SpecError as exc:
            raw = {"base": sweep.base_doc.data, "overrides": sweep.overrides(values)}
            out.append(PreparedPoint(index, values, invalid_key(raw), invalid=problem_text(exc)))
            continue
        out.append(PreparedPoint(index, values, config_key(spec.resolved_dict()), spec=spec))
    return out


def sweep_info(sweep: Sweep) -> dict[str, Any]:
    """What the report needs to know about the sweep (also written as sweep.json)."""
    return {"name": sweep.name, "file": sweep.file, "base": str(sweep.base_file), "keys": sweep.keys,
            "rank_by": sweep.spec.rank_by, "larger_is_better": RANK_METRICS[sweep.spec.rank_by],
            "set": sweep.spec.set, "filters": sweep.spec.filters, "points_before_filters": product_size(sweep)}


def run_sweep(sweep: Sweep, out_dir: Path, executor: Any | None = None, *, fresh: bool = False,
              progress: bool | None = None, reports: bool = True) -> SweepOutcome:
    """Run every point of ``sweep`` not yet in ``out_dir``'s store; write results and reports.

    ``fresh`` forgets the store first; ``progress`` forces the bar on or off (default: on
    when stderr is a terminal); ``reports`` draws the plots and report.html.
    Raises SpecError for a filter that cannot be evaluated, StoreBusy when another sweep
    writes the same folder, and whatever the executor raises for its own set-up.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    executor = executor or LocalExecutor()
    prepared = prepare(sweep, expand(sweep))
    store = Store(out_dir / STORE_NAME)
    if fresh and store.path.exists():
        store.path.unlink()
    uses = Counter(p.key for p in prepared)
    simulated = 0
    with store:
        records = store.open()
        from_store = sum(1 for key in uses if key in records)
        already = Counter({})
        for p in prepared:
            if p.key in records:
                already[records[p.key]["status"]] += 1
        with Progress(sweep.name, len(prepared), already, enabled=progress) as bar:
            for p in prepared:  # invalid points: recorded at once
                if p.invalid is not None and p.key not in records:
                    records[p.key] = {"key": p.key, "status": "invalid", "message": p.invalid, "summary": None,
                                      "wall_s": 0.0}
                    store.append(records[p.key])
                    bar.update("invalid", uses[p.key])
            jobs, queued = [], set()
            for p in prepared:
                if p.spec is not None and p.key not in records and p.key not in queued:
                    jobs.append((p.key, p.spec))
                    queued.add(p.key)
            for key, record in executor.run(jobs):
                records[key] = {"key": key, **record}
                store.append(records[key])
                simulated += 1
                bar.update(record["status"], uses[key])
    info = sweep_info(sweep)
    table = results_table(sweep.keys, prepared, records)
    files = write_results(table, out_dir)
    (out_dir / "sweep.json").write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
    files.append(out_dir / "sweep.json")
    outcome = SweepOutcome(out_dir, table, info, from_store, simulated, 0.0, files)
    if reports:
        from simcluster.sweep.report import write_sweep_report  # matplotlib: only when drawing

        files += write_sweep_report(out_dir, table, info)
        best = outcome.best
        if best is not None:
            values = next(p.values for p in prepared if p.index == best["point"])
            header = (f"best layout of sweep {sweep.name} by {info['rank_by']} ({best[info['rank_by']]}), "
                      f"point {best['point']}: " + " ".join(f"{k}={v}" for k, v in values.items()))
            (out_dir / "best.yaml").write_text(sweep.workload_yaml(values, header), encoding="utf-8")
            files.append(out_dir / "best.yaml")
        elif (out_dir / "best.yaml").exists():
            (out_dir / "best.yaml").unlink()
    outcome.wall_s = time.perf_counter() - start
    return outcome
