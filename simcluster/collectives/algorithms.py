"""Collective algorithms by name (workload key ``collectives.<op>``).

STUB: the topology helper replaces the placeholders with real algorithms.
"""

from __future__ import annotations

from simcluster.registry import Registry

ALGORITHMS: Registry = Registry("collective algorithm")
OPS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all", "send")

for _name in ("auto", "ring", "hierarchical"):
    ALGORITHMS.add(_name, None)
