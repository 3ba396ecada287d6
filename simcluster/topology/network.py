"""Inter-node switched fabrics: two-level fat tree and rail-optimized fat tree.

Vertices: ``gpu<g>``, ``nic<n>.<j>`` (NIC j of node n), ``leaf<i>``, ``spine``
(the spine layer). A route between GPUs of different nodes is

    gpu -> its NIC -> leaf [-> spine -> leaf] -> NIC -> gpu

GPU ``l`` of a node uses NIC ``l * nics_per_node // gpus_per_node`` (GPUs share
NICs when there are fewer NICs than GPUs). The GPU-NIC (PCIe) and NIC-leaf
links run at ``nic_bandwidth``. ``inter_node.latency`` is the end-to-end
latency between NICs' GPUs: a quarter on each of the four GPU-NIC and
NIC-leaf links, nothing on leaf-spine links.

Leaf switches have ``switch_radix`` ports split into ``down`` (to NICs) and
``up`` (to spines) so that down / up = ``oversubscription`` o:
``up = max(1, round(radix / (1 + o)))``, ``down = radix - up``. When every NIC
fits under one leaf there is a single leaf and no spine. Otherwise a fat
tree puts whole nodes under a leaf, ``down // nics_per_node`` of them in node
order (a node is cabled to one leaf; a node with more NICs than ``down``
spans leaves of its own), and a rail-optimized tree (NVIDIA DGX SuperPOD
reference architecture) puts NIC j of ``down`` consecutive nodes on a leaf
of rail j (``ceil(nodes / down)`` leaves per rail).

The spine layer: each leaf has one uplink and one downlink that stand for
its links to all spines together, of bandwidth ``used * nic_bandwidth / o``
(``used``: the most NICs on one leaf), so a leaf's uplink capacity is exactly
its NICs' capacity over o. This is the fluid limit of adaptive routing
(InfiniBand AR; NVIDIA's subnet manager configures it by default, routing
engine ``ar_updn``): every flow spread evenly over all spines, which under
max-min sharing is exactly per-spine links each carrying 1/spines of every
crossing flow. A non-blocking tree (o = 1) then carries any traffic its NICs
can inject, o > 1 divides what crosses the spine layer by o, and traffic
between NICs of one leaf never reaches it. (Static per-destination spine
choice, OpenSM ftree's D-mod-k, is contention free only for shift
permutations on a tree whose NIC count is a multiple of the spine count: a
ring's wrap-around hop, leaves that cut nodes in two, or a double binary
tree's mixed destinations put two flows on one leaf-spine link and halve a
collective's bus bandwidth at some node counts and not others, which NCCL
does not measure.) Spine radix is not enforced: beyond radix^2/2 NICs the
spine layer stands for the spine planes of a larger (three-level) tree.
"""

from __future__ import annotations

import math

from simcluster.topology.cluster import Cluster
from simcluster.topology.topology import LinkTable


class SwitchedRouter:
    """Routes between GPUs on different nodes through NICs, leaves and the spine layer."""

    def __init__(
        self,
        G: int,
        K: int,
        gpu_nic: list[int],
        nic_gpu: list[int],
        nic_up: list[int],
        nic_down: list[int],
        nic_leaf: list[int],
        leaf_up: list[int],
        leaf_down: list[int],
    ):
        self.G, self.K = G, K
        self.gpu_nic, self.nic_gpu = gpu_nic, nic_gpu
        self.nic_up, self.nic_down, self.nic_leaf = nic_up, nic_down, nic_leaf
        self.leaf_up, self.leaf_down = leaf_up, leaf_down  # per leaf: its links to / from the spine layer

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
        return head + (self.leaf_up[la], self.leaf_down[lb]) + tail


def _ports(radix: int, oversubscription: float) -> tuple[int, int]:
    """(down, up) ports of a leaf with down / up ~= oversubscription."""
    if radix < 2:
        raise ValueError(f"switch_radix must be >= 2, got {radix}")
    if oversubscription < 1:
        raise ValueError(f"oversubscription must be >= 1, got {oversubscription}")
    up = max(1, round(radix / (1 + oversubscription)))
    return radix - up, up


def _placement(N: int, K: int, down: int, rails: bool) -> tuple[list[int], int]:
    """Leaf of every NIC (global index ``n * K + j``) and the most NICs on one leaf.

    Fat tree: whole nodes per leaf, ``down // K`` of them, so that no node's NICs straddle
    two leaves; a node with more NICs than a leaf has down ports spans ``ceil(K / down)``
    leaves of its own. Rail-optimized: NIC j of nodes ``i * down .. (i + 1) * down - 1``
    on rail j's leaf i.
    """
    if rails:
        per_rail = math.ceil(N / down)
        return [j * per_rail + n // down for n in range(N) for j in range(K)], min(N, down)
    m = down // K  # whole nodes per leaf
    if m >= 1:
        return [n // m for n in range(N) for _ in range(K)], min(N, m) * K
    q = math.ceil(K / down)  # leaves per node
    return [n * q + j // down for n in range(N) for j in range(K)], down


def _build(cluster: Cluster, links: LinkTable, rails: bool) -> SwitchedRouter:
    G, N = cluster.gpus_per_node, cluster.nodes
    net = cluster.inter_node
    K = int(net.nics_per_node)
    if K < 1:
        raise ValueError(f"inter_node.nics_per_node must be >= 1 for {net.fabric!r}, got {K}")
    bw, lat = net.nic_bandwidth, net.latency / 4
    o = float(net.oversubscription)
    radix = int(net.switch_radix)
    down, _ = _ports(radix, o)
    total = N * K

    # leaf of every NIC; ``used``: the most NICs on one leaf
    if total <= radix and (not rails or K == 1):
        nic_leaf, used = [0] * total, total
    else:
        nic_leaf, used = _placement(N, K, down, rails)
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
    leaf_up: list[int] = []
    leaf_down: list[int] = []
    if num_leaves > 1:
        uplink_bw = used * bw / o  # the leaf's uplinks to all spines together
        for i in range(num_leaves):
            a, b = links.add_pair(f"leaf{i}", "spine", uplink_bw, 0.0, "spine")
            leaf_up.append(a)
            leaf_down.append(b)
    return SwitchedRouter(G, K, gpu_nic, nic_gpu, nic_up, nic_down, nic_leaf, leaf_up, leaf_down)


def build_fat_tree(cluster: Cluster, links: LinkTable) -> SwitchedRouter:
    """Two-level fat tree: whole nodes fill leaves in node order, leaves connect to the spine layer."""
    return _build(cluster, links, rails=False)


def build_rail_optimized(cluster: Cluster, links: LinkTable) -> SwitchedRouter:
    """Rail-optimized fat tree: NIC j of every node on rail j's leaves."""
    return _build(cluster, links, rails=True)
