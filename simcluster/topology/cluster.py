"""What the topology package reads of a cluster: the fields, as Protocols.

:class:`simcluster.spec.cluster.ClusterSpec` satisfies them (its ``intra_node`` and
``inter_node`` models satisfy :class:`IntraNode` and :class:`InterNode`), and so does any
object with the same fields (a cluster read back from a run's ``config.json``, the
namespaces tests build), so the topology package needs no import of :mod:`simcluster.spec`.
Figures are SI: bytes/s and seconds.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from simcluster.topology.devices import Device


class IntraNode(Protocol):
    """The fabric between the GPUs of one node."""

    @property
    def fabric(self) -> str: ...
    @property
    def bandwidth(self) -> float: ...  # per GPU per direction
    @property
    def latency(self) -> float: ...  # GPU to GPU through the fabric


class InterNode(Protocol):
    """The fabric between nodes: NICs into a switched network, or a torus of links."""

    @property
    def fabric(self) -> str: ...
    @property
    def nics_per_node(self) -> int: ...
    @property
    def nic_bandwidth(self) -> float: ...  # per NIC per direction
    @property
    def latency(self) -> float: ...
    @property
    def oversubscription(self) -> float: ...
    @property
    def switch_radix(self) -> int: ...
    @property
    def torus(self) -> Sequence[int] | None: ...  # torus dimensions
    @property
    def link_bandwidth(self) -> float | None: ...  # per torus link per direction


class Cluster(Protocol):
    """A cluster as :func:`~simcluster.topology.build.build_topology` reads it.

    ``device``: a :class:`Device` or a catalogue name. A cluster given as an explicit
    graph is a :class:`GraphCluster`.
    """

    @property
    def name(self) -> str: ...
    @property
    def device(self) -> Device | str: ...
    @property
    def gpus_per_node(self) -> int: ...
    @property
    def nodes(self) -> int: ...
    @property
    def intra_node(self) -> IntraNode: ...
    @property
    def inter_node(self) -> InterNode: ...


class GraphCluster(Cluster, Protocol):
    """A cluster given as an explicit graph (:mod:`simcluster.topology.explicit`).

    ``graph``: a ``GraphSpec``, or a mapping or object alike (``simcluster.spec.graph``
    reads all three). A cluster without a graph may lack the key altogether (a run's
    ``config.json`` leaves it out), so ``build_topology`` looks for it with ``getattr``.
    """

    @property
    def graph(self) -> object: ...
