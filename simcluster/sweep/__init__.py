"""Batch parameter sweeps: many layouts of one workload, resumable, on local processes or Dask.

```python
from simcluster.spec.sweep import load_sweep
from simcluster.sweep import LocalExecutor, run_sweep

outcome = run_sweep(load_sweep("workloads/sweeps/toy-layouts.yaml"), Path("reports/toy-layouts"))
```

| module | concept |
|---|---|
| `grid.py` | the product of grid keys and zip groups, filtered, in a fixed order |
| `store.py` | the durable store of finished points (JSON lines, fsync per line), keyed by config hash |
| `worker.py` | one point in a worker process: simulate, return a plain record |
| `executors.py` | local process pool (forkserver/spawn, rebuilt when a worker dies) and dask.distributed |
| `progress.py` | the tqdm bar |
| `export.py` | the results table, results.csv / results.parquet, ranking |
| `report.py` | report.html, the printed summary (plots: `simcluster.reporting.sweep_plots`) |
| `runner.py` | one sweep end to end |
| `quick.py` | `run WORKLOAD --set key=a,b,c` |

The sweep file itself is read and checked by :mod:`simcluster.spec.sweep`, its filters compiled
by :mod:`simcluster.spec.filters` (only spec/ reads YAML; spec/ never imports sweep/).
"""

from simcluster.sweep.executors import DaskExecutor, LocalExecutor, MissingExtra, make_executor
from simcluster.sweep.runner import SweepOutcome, run_sweep

__all__ = ["DaskExecutor", "LocalExecutor", "MissingExtra", "SweepOutcome", "make_executor", "run_sweep"]


import sys as _sys  # noqa: E402
import types as _types  # noqa: E402
from typing import Any as _Any  # noqa: E402


class _CallablePackage(_types.ModuleType):
    """This package is also the public API's ``simcluster.sweep(...)`` (:func:`simcluster.api.sweep`):
    the attribute ``simcluster.sweep`` is this package once imported, so the package is callable."""

    def __call__(self, *args: _Any, **kwargs: _Any) -> _Any:
        from simcluster.api import sweep

        return sweep(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallablePackage
