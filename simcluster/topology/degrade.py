"""Degraded links: a link that lost part of its bandwidth (a flapping cable, a down-trained lane)."""

from __future__ import annotations

from typing import Mapping, Sequence

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
