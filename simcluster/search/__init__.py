"""Layout search: the best parallel layout of a workload's model on its cluster, in two tiers.

```python
from simcluster.search import SearchOptions, run_search

outcome = run_search(SearchOptions("workloads/gpt3-175b.yaml"))
outcome.table.iloc[0]          # the best simulated layout (ranking.csv's first row)
```

Tier 1 estimates every valid layout with closed forms (~50,000 layouts/s on one core),
drops those that do not fit in memory and ranks the rest; tier 2 simulates the best of
them with the discrete-event simulator, as a resumable sweep, and reports how well the two
rankings agree.

| module | concept |
|---|---|
| `layout.py` | one point of the space: the ten keys a search varies |
| `space.py` | candidate values per key, and every valid layout (the spec's own checks) |
| `costs.py` | per-rank block costs (the compute model) and collective times (the planner) |
| `memory.py` | peak memory per GPU as the simulator computes it (``stage_memory``) |
| `estimate.py` | tier 1: iteration time from closed forms |
| `screen.py` | tier 1's loop: estimate, prune, rank, the best per GPU count |
| `simulate.py` | tier 2: the chosen layouts as a sweep (store, executors, progress bar) |
| `results.py` | ranking.csv, Spearman rank correlation, top-10 overlap |
| `report.py` | the printed summary, the best-vs-yours breakdown, report.html |
| `runner.py` | one search end to end |
| `progress.py` | the screening's progress bar |

Plots are drawn by :mod:`simcluster.reporting.search_plots`.
"""

from simcluster.search.runner import SearchOptions, SearchOutcome, run_search

__all__ = ["SearchOptions", "SearchOutcome", "run_search"]


import sys as _sys  # noqa: E402
import types as _types  # noqa: E402
from typing import Any as _Any  # noqa: E402


class _CallablePackage(_types.ModuleType):
    """This package is also the public API's ``simcluster.search(...)`` (:func:`simcluster.api.search`):
    the attribute ``simcluster.search`` is this package once imported, so the package is callable."""

    def __call__(self, *args: _Any, **kwargs: _Any) -> _Any:
        from simcluster.api import search

        return search(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallablePackage
