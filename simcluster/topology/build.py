"""Build a :class:`Topology` from a cluster (a ClusterSpec, or anything with its fields).

Fields read (:class:`~simcluster.topology.cluster.Cluster`): ``name``, ``device`` (a Device
or a catalogue name), ``gpus_per_node``, ``nodes``, ``intra_node.{fabric, bandwidth,
latency}``, ``inter_node.{fabric, nics_per_node, nic_bandwidth, latency,
oversubscription, switch_radix, torus, link_bandwidth}``, optionally
``inter_node.nic_efficiency`` (a NIC's measured share of its line rate) and
``link_efficiency`` (a mapping link class -> factor overriding the
calibrated defaults of :mod:`simcluster.topology.efficiency`: per NVLink
generation (device) and InfiniBand generation (NIC line rate)).

A cluster with a ``graph`` (an explicit list of links, see
:mod:`simcluster.topology.explicit`) is built from it alone: ``intra_node`` is not
read, ``inter_node`` only for its NIC line rate and ``nic_efficiency`` (the efficiency of
``nic``-class links); both fabric names are ``explicit``.

A torus in either ``intra_node.fabric`` or ``inter_node.fabric`` makes the
whole cluster one torus (TPU pods): the other one must be ``torus`` (or
``none`` for the inter-node fabric).
"""

from __future__ import annotations

from typing import Any, Mapping, TypeGuard

from simcluster.topology.cluster import Cluster, GraphCluster
from simcluster.topology.devices import DEVICES, Device
from simcluster.topology.efficiency import cluster_efficiency
from simcluster.topology.explicit import build_explicit
from simcluster.topology.fabrics import FABRICS, INTER_FABRICS, INTRA_FABRICS
from simcluster.topology.topology import LinkTable, Router, Topology
from simcluster.topology.torus import PodsRouter, build_torus


def _device(dev: object) -> Device:
    """A :class:`Device`, a catalogue name, or (a cluster read back from a run's config.json)
    a mapping or object with the Device fields."""
    if isinstance(dev, Device):
        return dev
    if isinstance(dev, str):
        return DEVICES.get(dev)
    fields: Mapping[str, Any] = dev if isinstance(dev, Mapping) else getattr(dev, "__dict__", {})
    return Device(**{k: fields[k] for k in Device.__dataclass_fields__ if k in fields})


def _has_graph(cluster: Cluster) -> TypeGuard[GraphCluster]:
    """Whether ``cluster`` is given as an explicit graph (a written-out cluster without one has no key)."""
    return getattr(cluster, "graph", None) is not None


def build_topology(cluster: Cluster, efficiency: Mapping[str, float] | None = None) -> Topology:
    """The topology of ``cluster``: links of every node and the network between them.

    ``efficiency`` overrides the calibrated per-class link efficiency (pass
    :data:`simcluster.topology.efficiency.RAW` for datasheet bandwidths).

    Builds in O(links) (about 130k links for 2,048 DGX nodes); routes are
    computed on demand and cached.
    """
    if _has_graph(cluster):
        return _build_explicit(cluster, efficiency)
    intra_name = cluster.intra_node.fabric
    inter_name = cluster.inter_node.fabric
    intra_fab = FABRICS.get(intra_name)
    inter_fab = FABRICS.get(inter_name)
    if intra_name not in INTRA_FABRICS:
        raise ValueError(f"intra_node.fabric {intra_name!r} is not an intra-node fabric; known: {', '.join(INTRA_FABRICS)}")
    if inter_name not in INTER_FABRICS:
        raise ValueError(f"inter_node.fabric {inter_name!r} is not an inter-node fabric; known: {', '.join(INTER_FABRICS)}")
    G, N, device, eff = _sizes_device_efficiency(cluster, efficiency)
    links = LinkTable()
    shape: tuple[int, ...] = ()
    pods = 1
    intra: Router | None
    inter: Router | None
    if "torus" in (intra_name, inter_name):
        if intra_name != "torus" or inter_name not in ("torus", "none"):
            raise ValueError(
                f"a torus spans every chip: intra_node.fabric and inter_node.fabric must both be torus, "
                f"got {intra_name!r} and {inter_name!r}"
            )
        router = build_torus(cluster, links)
        shape = router.shape
        pods = (G * N) // router.chips_per_pod if isinstance(router, PodsRouter) else 1
        intra, inter = None, router
    else:
        if inter_name == "none" and N > 1:
            raise ValueError(f"inter_node.fabric 'none' cannot connect {N} nodes")
        if intra_name == "none" and G > 1:
            raise ValueError(f"intra_node.fabric 'none' cannot connect {G} GPUs per node")
        intra = intra_fab.build(cluster, links) if intra_fab.build is not None else None
        # one node without NICs (no nic_bandwidth): nothing to build between nodes
        wired = N > 1 or cluster.inter_node.nic_bandwidth > 0
        inter = inter_fab.build(cluster, links) if inter_fab.build is not None and wired else None
    return Topology(
        name=cluster.name,
        device=device,
        gpus_per_node=G,
        num_nodes=N,
        links=links,
        intra=intra,
        inter=inter,
        intra_fabric=intra_name,
        inter_fabric=inter_name,
        efficiency=eff,
        shape=shape,
        pods=pods,
    )


def _sizes_device_efficiency(cluster: Cluster, efficiency: Mapping[str, float] | None
                             ) -> tuple[int, int, Device, dict[str, float]]:
    """GPUs per node, nodes, the device and the link efficiency per class (overrides applied)."""
    G, N = int(cluster.gpus_per_node), int(cluster.nodes)
    if G < 1 or N < 1:
        raise ValueError(f"gpus_per_node and nodes must be >= 1, got {G} and {N}")
    device = _device(cluster.device)
    eff = cluster_efficiency(cluster, device.name)
    eff.update(efficiency or {})
    return G, N, device, eff


def _build_explicit(cluster: GraphCluster, efficiency: Mapping[str, float] | None) -> Topology:
    """The topology of a cluster given as an explicit graph (one router for every pair)."""
    G, N, device, eff = _sizes_device_efficiency(cluster, efficiency)
    links = LinkTable()
    router = build_explicit(cluster, links)
    return Topology(
        name=cluster.name,
        device=device,
        gpus_per_node=G,
        num_nodes=N,
        links=links,
        intra=None,
        inter=router,
        intra_fabric="explicit",
        inter_fabric="explicit",
        efficiency=eff,
    )
