"""simcluster: a discrete-event simulator of large-model training clusters.

The public API (docs/api.md), stable names listed in ``__all__``:

```python
import simcluster

w = simcluster.load("workloads/toy-8gpu.yaml", overrides=["parallelism.tensor=4"])
r = simcluster.simulate(w)
r.summary["mfu"], r.timeline, r.breakdown, r.memory
r.write("reports/toy")
simcluster.sweep({"base": "workloads/toy-8gpu.yaml", "grid": {"training.micro_batch": [1, 2]}})
simcluster.search("workloads/toy-8gpu.yaml", top=5)
```

They live in :mod:`simcluster.api` and are imported on first use (``import simcluster`` stays
light, and every part may import the root for ``__version__``).

Data flows spec/ -> workload/ -> plan/ -> lowering/ -> engine/ -> metrics/ -> reporting/
(topology/, collectives/ and costs/ feed plan/ and lowering/), and imports go the other way
only: a package imports those before it, never after. The allowed edges are listed in
docs/architecture.md and checked by tests/test_design.py against tests/layering.py.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "Problem", "Result", "SpecError", "WorkloadSpec", "load", "search", "simulate",
           "sweep"]


def __getattr__(name: str) -> Any:
    """The public API's names, from :mod:`simcluster.api` on first use. ``sweep`` and ``search``
    are the packages of those names, which are callable (they call :func:`simcluster.api.sweep`
    and :func:`simcluster.api.search`): Python sets ``simcluster.sweep`` to the package whenever
    it is imported, so the function and the package must be one object."""
    if name == "sweep":
        import simcluster.sweep

        return simcluster.sweep
    if name == "search":
        import simcluster.search

        return simcluster.search
    if name in __all__:
        import simcluster.api

        value = getattr(simcluster.api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'simcluster' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
