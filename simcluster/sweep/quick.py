"""``run WORKLOAD --set key=a,b,c``: a comma list in ``--set`` turns ``run`` into a quick sweep.

Every comma list is a grid key (their product is swept, in the order given); single values
are fixed for every point. The sweep runs on the local executor with one worker per core
and writes what ``sweep`` writes, into ``--out`` or ``reports/<workload name>-sweep/``.
A comma inside brackets or quotes does not count: ``--set parallelism.stage_layers=[4,4]``
is one value.
"""

from __future__ import annotations

from pathlib import Path

from simcluster.runfolder import check_out_dir
from simcluster.spec.sweep import quick_sweep, split_list
from simcluster.sweep.executors import LocalExecutor
from simcluster.sweep.report import summary_text
from simcluster.sweep.runner import run_sweep


def is_quick_sweep(overrides: list[str]) -> bool:
    """Whether any ``--set KEY=VALUE`` has a comma list as its value."""
    return any("=" in o and split_list(o.partition("=")[2]) is not None for o in overrides)


def run_quick_sweep(workload: str, overrides: list[str], out: str | None = None, jobs: int | None = None) -> int:
    """Run the quick sweep; print its summary; exit status 0 (bad input raises SpecError)."""
    sweep = quick_sweep(workload, overrides)
    assert sweep is not None
    out_dir = Path(out) if out else Path("reports") / sweep.name
    check_out_dir(out_dir)  # before any point runs
    outcome = run_sweep(sweep, out_dir, LocalExecutor(jobs))
    print(summary_text(outcome.table, outcome.info))
    print(f"wrote {out_dir}/")
    return 0
