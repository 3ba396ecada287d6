"""Fabric builders, chosen by name in cluster files (``intra_node.fabric``, ``inter_node.fabric``).

Each entry of :data:`FABRICS` is a :class:`Fabric`: where it may be used
(``intra``: inside a node; ``inter``: between nodes; ``both``: the torus,
which spans every chip) and a builder ``build(cluster, links) -> Router``
that adds its links to a :class:`~simcluster.topology.topology.LinkTable`.
``none`` has no builder: no inter-node network (single-node clusters), or
no intra-node fabric (one GPU per node).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from simcluster.registry import Registry
from simcluster.topology.cluster import Cluster
from simcluster.topology.intra import build_nvlink_mesh, build_nvswitch, build_pcie
from simcluster.topology.network import build_fat_tree, build_rail_optimized
from simcluster.topology.topology import LinkTable, Router
from simcluster.topology.torus import build_torus

Builder = Callable[[Cluster, LinkTable], Router]


@dataclass(frozen=True)
class Fabric:
    """A named fabric: ``scope`` is intra, inter or both; ``build`` is None for ``none``."""

    name: str
    scope: str
    build: Builder | None


FABRICS: Registry[Fabric] = Registry("fabric")

for _f in (
    Fabric("nvswitch", "intra", build_nvswitch),
    Fabric("nvlink-mesh", "intra", build_nvlink_mesh),
    Fabric("pcie", "intra", build_pcie),
    Fabric("fat-tree", "inter", build_fat_tree),
    Fabric("rail-optimized", "inter", build_rail_optimized),
    Fabric("torus", "both", build_torus),
    Fabric("none", "both", None),
):
    FABRICS.add(_f.name, _f)

INTRA_FABRICS = tuple(n for n in FABRICS if FABRICS.get(n).scope in ("intra", "both"))
INTER_FABRICS = tuple(n for n in FABRICS if FABRICS.get(n).scope in ("inter", "both"))
