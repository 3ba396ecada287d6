"""Fabric builders, chosen by name in cluster files (``intra_node.fabric``, ``inter_node.fabric``).

STUB: the topology helper replaces the placeholders with real builders.
"""

from __future__ import annotations

from simcluster.registry import Registry

FABRICS: Registry = Registry("fabric")

for _name in ("nvswitch", "nvlink-mesh", "pcie", "fat-tree", "rail-optimized", "torus", "none"):
    FABRICS.add(_name, None)
