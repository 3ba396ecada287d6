"""Intra-node fabrics: NVSwitch, NVLink hybrid cube-mesh (DGX-1), PCIe.

Every builder takes the cluster spec and a :class:`LinkTable`, adds the links
of every node, and returns a router for pairs of GPUs on one node.
``intra_node.bandwidth`` is per GPU per direction; ``intra_node.latency`` is
the GPU-to-GPU latency of a route through the fabric (split evenly over the
links of a switched route, so a route's latencies sum to it).

Link ids of node ``n`` are ``base[n] + local id``, the same local layout on
every node, so routes are looked up from one per-node table.
"""

from __future__ import annotations

from typing import Mapping

from simcluster.topology.cluster import Cluster
from simcluster.topology.topology import LinkTable

# DGX-1 with V100 (hybrid cube-mesh): NVLink count between GPU pairs, from
# `nvidia-smi topo -m` on a DGX-1V (NV1 / NV2), NVIDIA DGX-1 With Tesla V100
# System Architecture whitepaper (WP-08437-002, 2017), figure 3. Each V100 has
# 6 NVLink2 links of 25 GB/s per direction (150 GB/s per direction per GPU).
DGX1_NVLINKS: dict[tuple[int, int], int] = {
    (0, 1): 1, (0, 2): 1, (0, 3): 2, (0, 4): 2,
    (1, 2): 2, (1, 3): 1, (1, 5): 2,
    (2, 3): 2, (2, 6): 1,
    (3, 7): 1,
    (4, 5): 1, (4, 6): 1, (4, 7): 2,
    (5, 6): 2, (5, 7): 1,
    (6, 7): 2,
}  # fmt: skip
DGX1_LINKS_PER_GPU = 6


class NodeTableRouter:
    """Routes inside a node from a local table shared by all nodes.

    ``local[(a, b)]`` is the tuple of local link ids from local GPU a to b;
    node ``n``'s link id is ``bases[n] + local id``.
    """

    def __init__(self, gpus_per_node: int, bases: list[int], local: Mapping[tuple[int, int], tuple[int, ...]]):
        self.G = gpus_per_node
        self.bases = bases
        self.local = local

    def route(self, src: int, dst: int) -> tuple[int, ...]:
        n, a = divmod(src, self.G)
        b = dst - n * self.G
        base = self.bases[n]
        return tuple(base + i for i in self.local[(a, b)])


def _switch(cluster: Cluster, links: LinkTable, prefix: str, cls: str) -> NodeTableRouter:
    """A star: each GPU has an up and a down link to its node's switch.

    Route a -> b: ``up(a), down(b)``; each link gets half the intra latency.
    """
    G, N = cluster.gpus_per_node, cluster.nodes
    bw, lat = cluster.intra_node.bandwidth, cluster.intra_node.latency / 2
    bases = []
    for n in range(N):
        bases.append(len(links))
        sw = f"{prefix}{n}"
        for g in range(n * G, (n + 1) * G):
            links.add_pair(f"gpu{g}", sw, bw, lat, cls)  # local ids 2l (up), 2l+1 (down)
    local = {(a, b): (2 * a, 2 * b + 1) for a in range(G) for b in range(G) if a != b}
    return NodeTableRouter(G, bases, local)


def build_nvswitch(cluster: Cluster, links: LinkTable) -> NodeTableRouter:
    """NVSwitch (DGX-2, DGX A100/H100): a non-blocking switch ``nvsw<n>`` per node."""
    return _switch(cluster, links, "nvsw", "nvlink")


def build_pcie(cluster: Cluster, links: LinkTable) -> NodeTableRouter:
    """PCIe: one switch ``pcie<n>`` per node, each GPU on it at ``intra_node.bandwidth``."""
    return _switch(cluster, links, "pcie", "pcie")


def _mesh_pairs(G: int) -> dict[tuple[int, int], int]:
    """NVLink counts: the DGX-1 hybrid cube-mesh for 8 GPUs, else a full mesh of single links."""
    if G == 8:
        return DGX1_NVLINKS
    return {(a, b): 1 for a in range(G) for b in range(a + 1, G)}


def build_nvlink_mesh(cluster: Cluster, links: LinkTable) -> NodeTableRouter:
    """NVLink point-to-point mesh: the DGX-1 hybrid cube-mesh for 8 GPUs per node.

    A GPU's ``intra_node.bandwidth`` is split over its NVLinks: with ``k`` of a
    GPU's 6 links going to a neighbour, that directed link carries
    ``k / 6 * bandwidth``. Other node sizes: a full mesh, each pair at
    ``bandwidth / (G - 1)``. Each link has the full intra latency.
    Route a -> b: the direct link, else via one intermediate GPU ``m``
    neighbouring both, the one with the largest bottleneck bandwidth (lowest
    index on ties).
    """
    G, N = cluster.gpus_per_node, cluster.nodes
    bw, lat = cluster.intra_node.bandwidth, cluster.intra_node.latency
    pairs = _mesh_pairs(G)
    per_link = bw / DGX1_LINKS_PER_GPU if G == 8 else bw / max(G - 1, 1)
    local_id: dict[tuple[int, int], int] = {}
    local_bw: dict[tuple[int, int], float] = {}
    order = sorted(pairs)
    for k, (a, b) in enumerate(order):
        local_id[(a, b)], local_id[(b, a)] = 2 * k, 2 * k + 1
        local_bw[(a, b)] = local_bw[(b, a)] = pairs[(a, b)] * per_link
    bases = []
    for n in range(N):
        bases.append(len(links))
        off = n * G
        for a, b in order:
            links.add_pair(f"gpu{off + a}", f"gpu{off + b}", local_bw[(a, b)], lat, "nvlink")
    local: dict[tuple[int, int], tuple[int, ...]] = {}
    for a in range(G):
        for b in range(G):
            if a == b:
                continue
            if (a, b) in local_id:
                local[(a, b)] = (local_id[(a, b)],)
                continue
            best = None
            for m in range(G):
                if (a, m) in local_id and (m, b) in local_id:
                    width = min(local_bw[(a, m)], local_bw[(m, b)])
                    if best is None or width > best[0]:
                        best = (width, m)
            if best is None:
                raise ValueError(f"nvlink-mesh: no one- or two-hop path from local GPU {a} to {b}")
            m = best[1]
            local[(a, b)] = (local_id[(a, m)], local_id[(m, b)])
    return NodeTableRouter(G, bases, local)
