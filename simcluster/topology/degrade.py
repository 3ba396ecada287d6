"""Degraded links: a link that lost part of its bandwidth (a flapping cable, a down-trained lane)."""

from __future__ import annotations

from typing import Any, Mapping


def degrade_links(topo: Any, fractions: Mapping[str, float]) -> None:
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
    if hasattr(topo, "plan_cache"):
        topo.plan_cache.clear()  # algorithm choices may depend on bandwidths
