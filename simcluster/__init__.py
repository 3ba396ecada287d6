"""simcluster: a discrete-event simulator of large-model training clusters.

Data flows spec/ -> workload/ -> plan/ -> lowering/ -> engine/ -> metrics/ -> reporting/
(topology/, collectives/ and costs/ feed plan/ and lowering/), and imports go the other way
only: a package imports those before it, never after. The allowed edges are listed in
docs/architecture.md and checked by tests/test_design.py against tests/layering.py.
"""

__version__ = "0.1.0"
