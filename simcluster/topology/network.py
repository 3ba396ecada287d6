"""Inter-node switched fabrics: two-level fat tree and rail-optimized fat tree.

Vertices: ``gpu<g>``, ``nic<n>.<j>`` (NIC j of node n), ``leaf<i>``, ``spine<s>``.
A route between GPUs of different nodes is

    gpu -> its NIC -> leaf [-> spine -> leaf] -> NIC -> gpu

GPU ``l`` of a node uses NIC ``l * nics_per_node // gpus_per_node`` (GPUs share
NICs when there are fewer NICs than GPUs). The GPU-NIC (PCIe) and NIC-leaf
links run at ``nic_bandwidth``. ``inter_node.latency`` is the end-to-end
latency between NICs' GPUs: a quarter on each of the four GPU-NIC and
NIC-leaf links, nothing on leaf-spine links.

Leaf switches have ``switch_radix`` ports split into ``down`` (to NICs) and
``up`` (to spines) so that down / up = ``oversubscription`` o:
``up = max(1, round(radix / (1 + o)))``, ``down = radix - up``. When every NIC
fits under one leaf there is a single leaf and no spine. Otherwise there are
``up`` spines and every leaf has one (collapsed) link to each, of bandwidth
``down * nic_bandwidth / (o * up)``, so a leaf's uplink capacity is exactly its
downlink capacity over o. Spine radix is not enforced: beyond radix^2/2 NICs
a spine stands for a spine plane of a larger (three-level) tree.

Spine choice is destination-mod-k (D-mod-k) routing: spine = (global index
of the destination NIC) mod ``up``, as InfiniBand's OpenSM ftree routing does;
it is contention free for shift permutations such as ring hops (Zahavi et
al., "Optimized InfiniBand fat-tree routing for shift all-to-all
communication patterns", CCPE 2010).

Rail-optimized (NVIDIA DGX SuperPOD reference architecture): NIC j of every
node is on rail j; each rail has its own leaves (``ceil(nodes / down)`` of
them); all leaves share the spines, which carry cross-rail and cross-leaf
traffic.
"""

from __future__ import annotations

import math
from typing import Any

from simcluster.topology.topology import LinkTable


class SwitchedRouter:
    """Routes between GPUs on different nodes through NICs, leaves and spines."""

    def __init__(
        self,
        G: int,
        K: int,
        gpu_nic: list[int],
        nic_gpu: list[int],
        nic_up: list[int],
        nic_down: list[int],
        nic_leaf: list[int],
        leaf_up: list[list[int]],
        leaf_down: list[list[int]],
    ):
        self.G, self.K = G, K
        self.gpu_nic, self.nic_gpu = gpu_nic, nic_gpu
        self.nic_up, self.nic_down, self.nic_leaf = nic_up, nic_down, nic_leaf
        self.leaf_up, self.leaf_down = leaf_up, leaf_down
        self.spines = len(leaf_up[0]) if leaf_up else 0

    def nic_of(self, gpu: int) -> int:
        """Global index ``node * nics_per_node + j`` of the NIC a GPU uses."""
        n, l = divmod(gpu, self.G)
        return n * self.K + l * self.K // self.G

    def route(self, src: int, dst: int) -> tuple[int, ...]:
        ka, kb = self.nic_of(src), self.nic_of(dst)
        head = (self.gpu_nic[src], self.nic_up[ka])
        tail = (self.nic_down[kb], self.nic_gpu[dst])
        la, lb = self.nic_leaf[ka], self.nic_leaf[kb]
        if la == lb:
            return head + tail
        s = kb % self.spines
        return head + (self.leaf_up[la][s], self.leaf_down[lb][s]) + tail


def _ports(radix: int, oversubscription: float) -> tuple[int, int]:
    """(down, up) ports of a leaf with down / up ~= oversubscription."""
    if radix < 2:
        raise ValueError(f"switch_radix must be >= 2, got {radix}")
    if oversubscription < 1:
        raise ValueError(f"oversubscription must be >= 1, got {oversubscription}")
    up = max(1, round(radix / (1 + oversubscription)))
    return radix - up, up


def _build(cluster: Any, links: LinkTable, rails: bool) -> SwitchedRouter:
    G, N = cluster.gpus_per_node, cluster.nodes
    net = cluster.inter_node
    K = int(net.nics_per_node)
    if K < 1:
        raise ValueError(f"inter_node.nics_per_node must be >= 1 for {net.fabric!r}, got {K}")
    bw, lat = net.nic_bandwidth, net.latency / 4
    o = float(getattr(net, "oversubscription", 1.0) or 1.0)
    radix = int(getattr(net, "switch_radix", 64) or 64)
    down, up = _ports(radix, o)
    total = N * K

    # leaf of every NIC
    if total <= radix and (not rails or K == 1):
        nic_leaf = [0] * total
    elif rails:
        per_rail = math.ceil(N / down)
        nic_leaf = [j * per_rail + n // down for n in range(N) for j in range(K)]
    else:
        nic_leaf = [k // down for k in range(total)]
    num_leaves = max(nic_leaf) + 1

    gpu_nic: list[int] = []
    nic_gpu: list[int] = []
    for g in range(N * G):
        n, l = divmod(g, G)
        a, b = links.add_pair(f"gpu{g}", f"nic{n}.{l * K // G}", bw, lat, "pcie")
        gpu_nic.append(a)
        nic_gpu.append(b)
    nic_up: list[int] = []
    nic_down: list[int] = []
    for k in range(total):
        n, j = divmod(k, K)
        a, b = links.add_pair(f"nic{n}.{j}", f"leaf{nic_leaf[k]}", bw, lat, "nic")
        nic_up.append(a)
        nic_down.append(b)
    leaf_up: list[list[int]] = []
    leaf_down: list[list[int]] = []
    if num_leaves > 1:
        spine_bw = down * bw / (o * up)
        for i in range(num_leaves):
            ups, downs = [], []
            for s in range(up):
                a, b = links.add_pair(f"leaf{i}", f"spine{s}", spine_bw, 0.0, "spine")
                ups.append(a)
                downs.append(b)
            leaf_up.append(ups)
            leaf_down.append(downs)
    return SwitchedRouter(G, K, gpu_nic, nic_gpu, nic_up, nic_down, nic_leaf, leaf_up, leaf_down)


def build_fat_tree(cluster: Any, links: LinkTable) -> SwitchedRouter:
    """Two-level fat tree: NICs fill leaves in order (node-major), leaves connect to all spines."""
    return _build(cluster, links, rails=False)


def build_rail_optimized(cluster: Any, links: LinkTable) -> SwitchedRouter:
    """Rail-optimized fat tree: NIC j of every node on rail j's leaves."""
    return _build(cluster, links, rails=True)
