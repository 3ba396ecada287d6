"""Degraded links: a link that lost part of its bandwidth (a flapping cable, a down-trained lane)."""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Sequence

from simcluster.topology.topology import Topology


def degrade_links(topo: Topology, fractions: Mapping[str, float]) -> None:
    """Scale the bandwidth of each named link by its fraction (0 < f <= 1), in place.

    Raises ValueError naming the unknown links, with examples of known names.
    """
    if not fractions:
        return
    index = {name: i for i, name in enumerate(topo.link_names)}
    unknown = [n for n in fractions if n not in index]
    if unknown:
        examples = ", ".join(topo.link_names[:4])
        raise ValueError(f"unknown link(s) {', '.join(sorted(unknown))}; links are named like {examples}")
    bw = list(topo.link_bandwidth)
    for name, f in sorted(fractions.items()):
        bw[index[name]] *= f
    topo.link_bandwidth = bw
    topo.plan_cache.clear()  # algorithm choices may depend on bandwidths


def fail_links(topo: Topology, names: Sequence[str]) -> None:
    """Take the named links out of service: routes go around them (explicit graphs only).

    Closed-form fabrics (NVSwitch, fat tree, rail, torus) route on fixed paths whose
    parallel cables are merged into one link, so a lost cable there is a
    ``degraded_links`` fraction; an explicit graph routes by least latency and can avoid
    a dead link. Raises ValueError for unknown links, non-explicit fabrics, or a graph
    that the failures disconnect.
    """
    if not names:
        return
    from simcluster.topology.explicit import ExplicitRouter

    index = {name: i for i, name in enumerate(topo.link_names)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise ValueError(f"unknown link(s) {', '.join(sorted(unknown))}; links are named like "
                         f"{', '.join(topo.link_names[:4])}")
    routers = [r for r in (topo._intra, topo._inter) if r is not None]
    explicit = {id(r): r for r in routers if isinstance(r, ExplicitRouter)}
    if not routers or len(explicit) < len({id(r) for r in routers}):
        raise ValueError("failed links need a cluster given as an explicit graph (closed-form fabrics "
                         "route on fixed paths; use degraded_links for a lost cable of a bundle)")
    dead = {index[n] for n in names}
    for r in explicit.values():
        r.adj = {v: [e for e in edges if e[1] not in dead] for v, edges in r.adj.items()}
        r._pred.clear()
    topo._routes.clear()
    topo._route_latency.clear()
    topo.plan_cache.clear()
    for g in range(1, topo.num_gpus):
        for a, b in ((0, g), (g, 0)):
            try:
                topo.route(a, b)
            except ValueError:
                raise ValueError(f"with {', '.join(sorted(names))} failed, gpu{a} cannot reach gpu{b}") from None


_NODE_VERTEX = re.compile(r"^(?:nvsw|pcie|host)(\d+)$|^nic(\d+)\.\d+$")


def touched_gpus(topo: Topology, names: Iterable[str]) -> frozenset[int] | None:
    """The GPUs whose traffic can cross the named links, or None when that is not a few nodes.

    On the closed-form switched fabrics (NVSwitch or PCIe inside a node, fat tree or rails
    between nodes) every route starts and ends on its GPUs' own links: ``gpu<g>``, its
    node's switch ``nvsw<n>``/``pcie<n>`` and NICs ``nic<n>.<j>`` carry only traffic to or
    from node n's GPUs, a leaf only that of the nodes whose NICs hang on it. A link touches
    the nodes both its ends serve (a NIC's link to its leaf only the NIC's node, a leaf's
    link to the spine the leaf's nodes), but a GPU's own link to its switch or NIC only that
    GPU (a link between two GPUs, as in an NVLink mesh, may relay: its node). None for anything else: a torus (routes pass through
    other chips), an explicit graph (named by the user), an unknown name.
    """
    from simcluster.topology.explicit import ExplicitRouter

    if topo.is_torus or any(isinstance(r, ExplicitRouter) for r in (topo._intra, topo._inter)):
        return None
    G, g = topo.gpus_per_node, topo.graph
    index = {name: i for i, name in enumerate(topo.link_names)}
    nodes: set[int] = set()
    gpus: set[int] = set()
    for name in names:
        if name not in index:
            return None
        src, dst = name.partition("->")[::2]
        own = [v for v in (src, dst) if v.startswith("gpu") and v[3:].isdigit()]
        if len(own) == 1:  # a GPU's own link to its switch or NIC carries its traffic only
            gpus.add(int(own[0][3:]))
            continue
        ends = [_nodes_of(v, g, G) for v in (src, dst)]
        if None in ends:
            return None
        known = [e for e in ends if e is not None and e != ALL]
        if not known:
            return None
        nodes.update(set.intersection(*known))  # a NIC's uplink to its leaf: that NIC's node only
    return frozenset(gpus | {r for n in nodes for r in range(n * G, min((n + 1) * G, topo.num_gpus))})


ALL: set[int] = {-1}  # the spine: every node's traffic may cross it


def _nodes_of(vertex: str, graph: Any, G: int) -> set[int] | None:
    """Nodes whose GPUs' routes may use ``vertex`` (see :func:`touched_gpus`)."""
    if vertex.startswith("gpu") and vertex[3:].isdigit():
        return {int(vertex[3:]) // G}
    m = _NODE_VERTEX.match(vertex)
    if m:
        return {int(m.group(1) or m.group(2))}
    if vertex == "spine":
        return ALL
    if vertex.startswith("leaf") and vertex[4:].isdigit() and vertex in graph:
        out: set[int] = set()
        for nb in set(graph.successors(vertex)) | set(graph.predecessors(vertex)):
            m = _NODE_VERTEX.match(nb)
            if nb != "spine" and not (m and m.group(2)):
                return None
            if m:
                out.add(int(m.group(2)))
        return out
    return None
