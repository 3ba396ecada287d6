"""simcluster: a discrete-event simulator of large-model training clusters.

Data flow (one direction of imports)::

    spec/ -> workload/ -> lowering/ -> engine/ -> metrics/ -> reporting/
                 topology/ -> collectives/ ----^
"""

__version__ = "0.1.0"
