"""The Topology: every directed link of a cluster, and routes between GPUs.

A topology knows what exists (GPUs, switches, NICs, links with their
bandwidth and latency) and which links a byte crosses from one GPU to
another. It knows nothing of time: the engine shares link bandwidth between
transfers (see :mod:`simcluster.collectives.transfer`).

Links are directed (one per direction) and identified by an integer id that
indexes the parallel lists ``link_names``, ``link_bandwidth``,
``link_latency`` and ``link_class``. Routes are computed structurally by the
fabric routers (no all-pairs shortest paths) and cached per (src, dst); a
cluster given as an explicit graph (fabric names ``explicit``) routes by least
latency instead (:mod:`simcluster.topology.explicit`).

Link classes (``link_class``): ``nvlink`` (GPU to NVSwitch or GPU to GPU
NVLink), ``pcie`` (PCIe switch inside a node, GPU to NIC), ``nic`` (NIC to
leaf switch), ``spine`` (leaf to spine switch), ``torus`` (TPU ICI link); an
explicit graph may name its own (default ``link``).
"""

from __future__ import annotations

from functools import cached_property
from typing import Callable, Mapping, Protocol, runtime_checkable

import networkx as nx

from simcluster.topology.devices import Device
from simcluster.topology.efficiency import GENERIC

LINK_CLASSES = ("nvlink", "pcie", "nic", "spine", "torus")

# Protocol overhead: the engine sees raw bandwidth x efficiency[class]. These are the
# generic calibrated factors; build_topology refines them per device (NVLink generation)
# and NIC line rate (InfiniBand generation), see simcluster.topology.efficiency.
LINK_EFFICIENCY: dict[str, float] = dict(GENERIC)


class LinkTable:
    """Accumulates directed links as parallel lists while a fabric is built."""

    __slots__ = ("src", "dst", "bandwidth", "latency", "cls")

    def __init__(self) -> None:
        self.src: list[str] = []
        self.dst: list[str] = []
        self.bandwidth: list[float] = []
        self.latency: list[float] = []
        self.cls: list[str] = []

    def __len__(self) -> int:
        return len(self.src)

    def add(self, src: str, dst: str, bandwidth: float, latency: float, cls: str) -> int:
        """Add the directed link ``src -> dst``; returns its id."""
        if bandwidth <= 0:
            raise ValueError(f"link {src}->{dst}: bandwidth must be > 0, got {bandwidth}")
        self.src.append(src)
        self.dst.append(dst)
        self.bandwidth.append(float(bandwidth))
        self.latency.append(float(latency))
        self.cls.append(cls)
        return len(self.src) - 1

    def add_pair(self, a: str, b: str, bandwidth: float, latency: float, cls: str) -> tuple[int, int]:
        """Add ``a -> b`` and ``b -> a``; returns both ids."""
        return self.add(a, b, bandwidth, latency, cls), self.add(b, a, bandwidth, latency, cls)


class Router(Protocol):
    """Gives the link ids from one GPU to another for the pairs a fabric serves."""

    def route(self, src: int, dst: int) -> tuple[int, ...]: ...


@runtime_checkable
class NicRouter(Router, Protocol):
    """A router between nodes that sends through NICs (switched fabrics; not tori or explicit graphs)."""

    def nic_of(self, gpu: int) -> int: ...


#: Key of a memo in ``Topology.plan_cache``, owned by :mod:`simcluster.collectives`.
PlanKey = tuple[object, ...]


class Topology:
    """A cluster's links and routes.

    ``route(src, dst)`` returns link ids in path order; traffic between GPUs of
    one node uses the intra-node fabric only (it never leaves the node),
    traffic between nodes the inter-node router (which includes the GPU-NIC
    hops). A torus cluster has one router for every pair.
    """

    def __init__(
        self,
        *,
        name: str,
        device: Device,
        gpus_per_node: int,
        num_nodes: int,
        links: LinkTable,
        intra: Router | None,
        inter: Router | None,
        intra_fabric: str,
        inter_fabric: str,
        efficiency: Mapping[str, float] | None = None,
        shape: tuple[int, ...] = (),
        pods: int = 1,
    ) -> None:
        self.name = name
        self.device = device
        self.gpus_per_node = int(gpus_per_node)
        self.num_nodes = int(num_nodes)
        self.num_gpus = self.gpus_per_node * self.num_nodes
        self.intra_fabric = intra_fabric
        self.inter_fabric = inter_fabric
        self.shape = shape  # torus shape (of one pod), () for switched fabrics
        self.pods = int(pods)  # TPU pods joined by the data-center network (1 otherwise)
        self.chips_per_pod = self.num_gpus // self.pods
        self._links = links
        self._intra = intra
        self._inter = inter
        self._nic_of: Callable[[int], int] | None = inter.nic_of if isinstance(inter, NicRouter) else None
        self.efficiency: dict[str, float] = {**LINK_EFFICIENCY, **(efficiency or {})}
        self.link_raw_bandwidth: list[float] = links.bandwidth
        self.link_latency: list[float] = links.latency
        self.link_class: list[str] = links.cls
        if all(self.efficiency.get(c, 1.0) == 1.0 for c in set(links.cls)):
            self.link_bandwidth: list[float] = links.bandwidth
        else:
            eff = self.efficiency
            self.link_bandwidth = [b * eff.get(c, 1.0) for b, c in zip(links.bandwidth, links.cls)]
        self._routes: dict[tuple[int, int], tuple[int, ...]] = {}
        self._route_latency: dict[tuple[int, int], float] = {}
        # collective plans and ring orders, memoised by simcluster.collectives (which knows their types)
        self.plan_cache: dict[PlanKey, object] = {}

    # ------------------------------------------------------------ structure
    @property
    def is_torus(self) -> bool:
        return self.inter_fabric == "torus" or self.intra_fabric == "torus"

    @property
    def num_links(self) -> int:
        return len(self._links)

    @cached_property
    def link_names(self) -> list[str]:
        """``"src->dst"`` for every link id."""
        return [f"{a}->{b}" for a, b in zip(self._links.src, self._links.dst)]

    @property
    def link_endpoints(self) -> tuple[list[str], list[str]]:
        """(source vertex names, destination vertex names), indexed by link id."""
        return self._links.src, self._links.dst

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The links as a networkx DiGraph (built on first use; edge attrs link, bandwidth, latency, cls)."""
        g = nx.DiGraph()
        L = self._links
        g.add_edges_from(
            (a, b, {"link": i, "bandwidth": bw, "latency": lat, "cls": c})
            for i, (a, b, bw, lat, c) in enumerate(zip(L.src, L.dst, self.link_bandwidth, L.latency, L.cls))
        )
        return g

    def link_classes(self) -> list[str]:
        """The link classes present, in :data:`LINK_CLASSES` order."""
        present = set(self.link_class)
        return [c for c in LINK_CLASSES if c in present] + sorted(present - set(LINK_CLASSES))

    def node_of(self, gpu: int) -> int:
        """The node (host) a GPU belongs to: ``gpu // gpus_per_node``."""
        self._check(gpu)
        return gpu // self.gpus_per_node

    def nic_of(self, gpu: int) -> int | None:
        """Global index (node * nics_per_node + j) of the NIC ``gpu`` sends through; None without NICs."""
        return None if self._nic_of is None else self._nic_of(gpu)

    # --------------------------------------------------------------- routes
    def route(self, src_gpu: int, dst_gpu: int) -> tuple[int, ...]:
        """Link ids from ``src_gpu`` to ``dst_gpu`` in path order (deterministic, cached)."""
        key = (src_gpu, dst_gpu)
        r = self._routes.get(key)
        if r is not None:
            return r
        self._check(src_gpu)
        self._check(dst_gpu)
        if src_gpu == dst_gpu:
            r = ()
        elif self._intra is not None and src_gpu // self.gpus_per_node == dst_gpu // self.gpus_per_node:
            r = self._intra.route(src_gpu, dst_gpu)
        elif self._inter is not None:
            r = self._inter.route(src_gpu, dst_gpu)
        else:
            raise ValueError(
                f"no route from gpu{src_gpu} to gpu{dst_gpu}: inter-node fabric is {self.inter_fabric!r}"
            )
        self._routes[key] = r
        return r

    def route_latency(self, src_gpu: int, dst_gpu: int) -> float:
        """Sum of the link latencies along ``route(src_gpu, dst_gpu)``."""
        key = (src_gpu, dst_gpu)
        lat = self._route_latency.get(key)
        if lat is None:
            ll = self.link_latency
            lat = sum(ll[i] for i in self.route(src_gpu, dst_gpu))
            self._route_latency[key] = lat
        return lat

    def _check(self, gpu: int) -> None:
        if not 0 <= gpu < self.num_gpus:
            raise ValueError(f"gpu {gpu} out of range: the cluster has {self.num_gpus} GPUs")

    def __repr__(self) -> str:
        return (
            f"Topology({self.name!r}, {self.num_nodes}x{self.gpus_per_node} {self.device.name}, "
            f"{self.intra_fabric}/{self.inter_fabric}, {self.num_links} links)"
        )
