"""2D/3D torus (TPU pods): every chip linked to its neighbours, with wraparound.

Chip ``c`` has coordinates with the first dimension fastest:
``c = x + X * (y + Y * z)``; host ``n`` holds chips ``n * G ... n * G + G - 1``.
Each chip has one outgoing link per dimension and direction (``+`` and
``-``) at ``inter_node.link_bandwidth`` per direction (falling back to
``inter_node.nic_bandwidth``, then ``intra_node.bandwidth / (2 * dims)``), with ``inter_node.latency`` per hop.
A dimension of size 2 has one link per direction (``+`` and ``-`` reach the
same neighbour); a dimension of size 1 has none.

Routing is dimension-order (x, then y, then z), each dimension the shorter
way round the ring, ``+`` on ties: the deterministic minimal routing of
torus networks (Dally & Towles, "Principles and Practices of Interconnection
Networks", 2004, sec. 14.2).

Pods: a cluster of more chips than one torus holds (or with ``pods: N``) is N pods of
equal size, each its own torus (TPU v3: Rae et al. 2021, Gopher, on 4 pods of 1,024
chips; TPU v4: Chowdhery et al. 2022, PaLM §4, on 2 pods of 3,072 chips), joined by the
data-center network (DCN): every host has a link of ``inter_node.dcn_bandwidth`` per
direction to one non-blocking DCN switch (``dcn_latency`` split over the two host links),
and each chip reaches its host at that rate. Traffic inside a pod stays on its torus;
traffic between pods goes chip → host → DCN → host → chip.

Shape: ``inter_node.torus`` when its product equals the number of chips of a pod
(nodes x gpus_per_node / pods). When a workload uses fewer chips than the pod the
shape is the most balanced factorisation of the chip count into the same
number of dimensions (e.g. 256 chips of a 32x32 pod -> 16x16; 64 chips of a
16x16x16 pod -> 4x4x4), see :func:`torus_shape`.
"""

from __future__ import annotations

import math
from typing import Sequence

from simcluster.topology.cluster import Cluster
from simcluster.topology.topology import LinkTable


def _prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return out


def torus_shape(num_chips: int, torus: Sequence[int] | None) -> tuple[int, ...]:
    """The torus shape for ``num_chips`` chips given the pod's full shape.

    Full pod -> its shape. Fewer chips -> the prime factors of ``num_chips``,
    largest first, each multiplied onto the currently smallest dimension,
    then sorted ascending (balanced, like Cloud TPU slice shapes 4x4x8).
    No shape given -> a 2D factorisation. More chips than the pod holds is an error.
    """
    if num_chips < 1:
        raise ValueError(f"a torus needs at least one chip, got {num_chips}")
    dims = [int(d) for d in torus] if torus else [1, 1]
    if any(d < 1 for d in dims) or not 1 <= len(dims) <= 3:
        raise ValueError(f"inter_node.torus must be 1 to 3 positive sizes, got {list(torus or [])}")
    full = math.prod(dims)
    if torus and num_chips == full:
        return tuple(dims)
    if torus and num_chips > full:
        raise ValueError(f"{num_chips} chips do not fit in a {'x'.join(map(str, dims))} torus ({full} chips)")
    shape = [1] * len(dims)
    for p in sorted(_prime_factors(num_chips), reverse=True):
        i = min(range(len(shape)), key=lambda k: (shape[k], k))
        shape[i] *= p
    return tuple(sorted(shape))


def pod_count(num_chips: int, torus: Sequence[int] | None, pods: int | None) -> int:
    """Pods: as given, else as few full-size pods as hold ``num_chips`` (the spec validates both)."""
    if pods:
        return int(pods)
    full = math.prod(torus) if torus else num_chips
    return max(1, -(-num_chips // full))


class TorusRouter:
    """Dimension-order routing on a torus; link ids from a flat table."""

    def __init__(self, shape: tuple[int, ...], out: list[int]):
        self.shape = shape
        self.D = len(shape)
        self.out = out  # out[(chip * D + dim) * 2 + dir] = link id (dir 0: +, 1: -), -1 if none
        self.strides = [math.prod(shape[:d]) for d in range(self.D)]

    def route(self, src: int, dst: int) -> tuple[int, ...]:
        path: list[int] = []
        cur = src
        D, out = self.D, self.out
        for d, (size, stride) in enumerate(zip(self.shape, self.strides)):
            a = (cur // stride) % size
            b = (dst // stride) % size
            delta = (b - a) % size
            if delta == 0:
                continue
            if delta <= size - delta:
                step, direction, hops = 1, 0, delta
            else:
                step, direction, hops = -1, 1, size - delta
            for _ in range(hops):
                path.append(out[(cur * D + d) * 2 + direction])
                a2 = (a + step) % size
                cur += (a2 - a) * stride
                a = a2
        return tuple(path)


class PodsRouter:
    """Routes of pods joined by the data-center network (see the module docstring)."""

    def __init__(self, torus: TorusRouter, chips_per_pod: int, gpus_per_node: int, chip_up: list[int],
                 chip_down: list[int], host_up: list[int], host_down: list[int]):
        self.torus, self.shape, self.chips_per_pod, self.G = torus, torus.shape, chips_per_pod, gpus_per_node
        self.chip_up, self.chip_down, self.host_up, self.host_down = chip_up, chip_down, host_up, host_down

    def route(self, src: int, dst: int) -> tuple[int, ...]:
        if src // self.chips_per_pod == dst // self.chips_per_pod:
            return self.torus.route(src, dst)
        return (self.chip_up[src], self.host_up[src // self.G], self.host_down[dst // self.G], self.chip_down[dst])


def build_torus(cluster: Cluster, links: LinkTable) -> TorusRouter | PodsRouter:
    """Build the torus links of all chips (and the DCN between pods); returns the router.

    Chip ids are global; each pod's chips are consecutive, so a chip's coordinates in its
    pod's torus, (c // stride) mod size, need no offset.
    """
    n = cluster.gpus_per_node * cluster.nodes
    net = cluster.inter_node
    # a cluster read back from a run's config.json leaves out pods and the DCN when unused
    pods = pod_count(n, net.torus, getattr(cluster, "pods", None))
    shape = torus_shape(n // pods, net.torus)
    D = len(shape)
    bw = net.link_bandwidth or net.nic_bandwidth or cluster.intra_node.bandwidth / (2 * D)
    lat = net.latency
    strides = [math.prod(shape[:d]) for d in range(D)]
    out = [-1] * (n * D * 2)
    for c in range(n):
        for d, (size, stride) in enumerate(zip(shape, strides)):
            if size == 1:
                continue
            a = (c // stride) % size
            plus = c + (((a + 1) % size) - a) * stride
            out[(c * D + d) * 2] = links.add(f"gpu{c}", f"gpu{plus}", bw, lat, "torus")
            if size == 2:
                out[(c * D + d) * 2 + 1] = out[(c * D + d) * 2]
            else:
                minus = c + (((a - 1) % size) - a) * stride
                out[(c * D + d) * 2 + 1] = links.add(f"gpu{c}", f"gpu{minus}", bw, lat, "torus")
    router = TorusRouter(shape, out)
    if pods == 1:
        return router
    dcn_bw, dcn_lat = float(getattr(net, "dcn_bandwidth", 0.0)), float(getattr(net, "dcn_latency", 0.0))
    if dcn_bw <= 0:
        raise ValueError(f"{pods} pods need inter_node.dcn_bandwidth > 0 (the data-center network between them)")
    G = cluster.gpus_per_node
    host_up = [links.add(f"host{h}", "dcn", dcn_bw, dcn_lat / 2, "dcn") for h in range(cluster.nodes)]
    host_down = [links.add("dcn", f"host{h}", dcn_bw, dcn_lat / 2, "dcn") for h in range(cluster.nodes)]
    chip_up = [links.add(f"gpu{c}", f"host{c // G}", dcn_bw, 0.0, "dcn") for c in range(n)]
    chip_down = [links.add(f"host{c // G}", f"gpu{c}", dcn_bw, 0.0, "dcn") for c in range(n)]
    return PodsRouter(router, n // pods, G, chip_up, chip_down, host_up, host_down)
