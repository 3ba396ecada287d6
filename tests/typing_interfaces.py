"""Static checks that the models and classes passed between packages satisfy the Protocols
the receiving packages declare. Never run: tests/test_typing.py has mypy check this file
together with the packages declared clean, and a model that stops satisfying a Protocol
(a field renamed or retyped) is a type error here.
"""

from __future__ import annotations

from simcluster.engine.network import Links
from simcluster.spec.cluster import ClusterSpec
from simcluster.topology.cluster import Cluster, GraphCluster
from simcluster.topology.topology import Topology


def cluster_spec_is_a_topology_cluster(spec: ClusterSpec) -> Cluster:
    return spec


def cluster_spec_may_be_an_explicit_graph(spec: ClusterSpec) -> GraphCluster:
    return spec


def topology_is_what_the_engine_reads(topo: Topology) -> Links:
    return topo
