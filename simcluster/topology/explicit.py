"""An explicit graph: the links of a cluster written out one by one (cluster file key ``graph``).

```yaml
graph:
  switches: [nvsw0, nic0, leaf]          # every vertex that is not a GPU
  links:                                 # GPUs are gpu0, gpu1, ... in rank order
    - {between: [gpu0, nvsw0], bandwidth: "450 GB/s", latency: "1 us", class: nvlink}
    - {between: [nic0, leaf], bandwidth: "400 Gb/s", latency: "1 us", class: nic, directed: true}
```

Vertices are the GPUs ``gpu<k>`` (k = the rank, 0 .. M-1, every one with at least one
link) and the names listed in ``switches`` (switches, NICs, anything else). A link is
bidirectional (one directed link each way, each at ``bandwidth``) unless ``directed: true``
(``between[0] -> between[1]`` only); ``latency`` (default 0) is per link and direction;
``class`` (default ``link``) names its kind for the timeline and for efficiency: a known
class (``nvlink``, ``pcie``, ``nic``, ``spine``, ``torus``; see
:mod:`simcluster.topology.efficiency`) runs at its calibrated share of ``bandwidth``, any
other at the full figure. At most one link per direction between two vertices (give
parallel cables as one link of their summed bandwidth).

Routes: the path of least latency, then fewest links, then the smallest sequence of vertex
names (so routes are deterministic); they may pass through GPUs (a GPU forwarding over
its NVLinks) and are computed lazily, one Dijkstra per source GPU, cached. Latencies are
compared in whole femtoseconds so that equal sums tie exactly.

``node_of(gpu) = gpu // gpus_per_node``; a cluster may use fewer GPUs than the graph has
(``nodes`` x ``gpus_per_node`` < M): the others still carry traffic. The graph has no
notion of NICs (``Topology.nic_of`` is None), so collectives run one ring in the group's
order, and trees over the members.

:func:`~simcluster.spec.graph.graph_problems` is the one check of a graph (the spec package
reports its findings with file and line; :func:`build_explicit` raises on them).
"""

from __future__ import annotations

import heapq

from simcluster.spec.graph import field, graph_gpu_count, graph_problems, link_class
from simcluster.topology.cluster import GraphCluster
from simcluster.topology.topology import LinkTable
from simcluster.units import parse_quantity

FEMTO = 1e15  # latencies are compared as whole femtoseconds


class ExplicitRouter:
    """Least-latency routes on an explicit graph (see the module docstring), one Dijkstra per source, cached."""

    def __init__(self, links: LinkTable):
        self.adj: dict[str, list[tuple[str, int, int]]] = {}
        for i, (a, b, lat) in enumerate(zip(links.src, links.dst, links.latency)):
            self.adj.setdefault(a, []).append((b, i, round(lat * FEMTO)))
        self.src = links.src
        self._pred: dict[int, dict[str, int]] = {}

    def _tree(self, src: int) -> dict[str, int]:
        """For every vertex reachable from gpu<src>: the link id its route arrives on."""
        tree = self._pred.get(src)
        if tree is not None:
            return tree
        start = f"gpu{src}"
        tree = {}
        best: dict[str, tuple[int, int, tuple[str, ...]]] = {start: (0, 0, (start,))}
        heap: list[tuple[int, int, tuple[str, ...], str, int]] = [(0, 0, (start,), start, -1)]
        done: set[str] = set()
        while heap:
            lat, hops, path, v, via = heapq.heappop(heap)
            if v in done:
                continue
            done.add(v)
            if via >= 0:
                tree[v] = via
            for w, link, l in self.adj.get(v, ()):
                if w in done:
                    continue
                key = (lat + l, hops + 1, path + (w,))
                if w not in best or key < best[w]:
                    best[w] = key
                    heapq.heappush(heap, (*key, w, link))
        self._pred[src] = tree
        return tree

    def route(self, src: int, dst: int) -> tuple[int, ...]:
        if src == dst:
            return ()
        tree = self._tree(src)
        v, start = f"gpu{dst}", f"gpu{src}"
        if v not in tree:
            raise ValueError(f"no route from {start} to {v} in the cluster's graph")
        path: list[int] = []
        while v != start:
            link = tree[v]
            path.append(link)
            v = self.src[link]
        return tuple(reversed(path))


def build_explicit(cluster: GraphCluster, links: LinkTable) -> ExplicitRouter:
    """Add the links of ``cluster.graph`` to ``links``; raises ValueError listing the graph's problems."""
    graph = cluster.graph
    problems = graph_problems(graph)
    if problems:
        raise ValueError("bad graph: " + "; ".join(f"{k}: {r}" for k, r in problems))
    M = graph_gpu_count(graph)
    n = int(cluster.gpus_per_node) * int(cluster.nodes)
    if n > M:
        raise ValueError(f"{cluster.nodes} nodes x {cluster.gpus_per_node} GPUs = {n} GPUs, "
                         f"but the graph's links connect {M} (gpu0 .. gpu{M - 1})")
    for link in field(graph, "links"):
        a, b = (str(v) for v in field(link, "between"))
        bw = parse_quantity(field(link, "bandwidth"), "bandwidth")
        lat = parse_quantity(field(link, "latency", 0.0) or 0.0, "time")
        if field(link, "directed", False):
            links.add(a, b, bw, lat, link_class(link))
        else:
            links.add_pair(a, b, bw, lat, link_class(link))
    return ExplicitRouter(links)
