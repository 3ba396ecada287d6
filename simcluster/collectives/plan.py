"""Plan a collective: phases of an algorithm -> Transfers on the topology's links.

Each phase becomes one :class:`Transfer`: its links are the union of the
routes of the phase's hops, a link's weight the number of hops crossing it,
``nbytes`` the bytes each hop carries and ``latency`` = steps x the largest
hop latency (sum of link latencies on a hop's route). On an uncontended ring
of n GPUs with hop latency alpha and bandwidth B, an all-reduce thus takes
exactly 2(n-1) alpha + 2(n-1)/n * S/B.

Rank symmetry: ``mirror_offsets`` names identical groups ``[r + off for r in
group]`` that run the same collective at the same moment but are not
simulated. Their hops (the representative's hops shifted by ``off``) add to
the weights of the links the representative uses; links only mirrors use do
not matter to the representative's transfer and are left out.

A phase's optional per-pair ``weights`` scale each hop's load (rings that
carry a share of the buffer), and its optional ``latency`` replaces steps x
the largest hop latency.

``algorithm="auto"`` picks per message size (:mod:`simcluster.collectives.select`):
every candidate's plan and its cost t(S) = L + K*S are cached once, so each
call only compares a few numbers.

Plans are cached on the topology by (op, algorithm, group, mirror_offsets)
for S = 1 byte and scaled with ``Transfer.scaled``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence, cast

from simcluster.collectives.algorithms import ALGORITHMS, OPS, Phase
from simcluster.collectives.select import Option, options, pick
from simcluster.collectives.transfer import Transfer

if TYPE_CHECKING:
    from simcluster.topology.topology import Topology


def _transfer(phase: Phase, topo: "Topology", mirror_offsets: Sequence[int]) -> Transfer:
    """One phase as a Transfer of ``phase.factor`` bytes (S = 1)."""
    loads: dict[int, float] = {}
    route = topo.route
    weights = phase.weights or (1.0,) * len(phase.pairs)
    for (a, b), w in zip(phase.pairs, weights):
        for link in route(a, b):
            loads[link] = loads.get(link, 0.0) + w
    G = topo.gpus_per_node
    # a mirrored hop inside a node the representative does not touch stays on that node's own links
    skip_local = not topo.is_torus
    rep_nodes = {r // G for p in phase.pairs for r in p}
    for off in mirror_offsets:
        for (a, b), w in zip(phase.pairs, weights):
            a, b = a + off, b + off
            if skip_local and a // G == b // G and a // G not in rep_nodes:
                continue
            for link in route(a, b):
                if link in loads:
                    loads[link] += w
    links = tuple(sorted(loads))
    if phase.latency is not None:
        latency = phase.latency
    else:
        latency = phase.steps * max((topo.route_latency(a, b) for a, b in phase.pairs), default=0.0)
    return Transfer(links, tuple(float(loads[l]) for l in links), float(phase.factor), latency)


def _plan(op: str, group: tuple[int, ...], topo: "Topology", algorithm: str, mirror_offsets: tuple[int, ...]) -> tuple[Transfer, ...]:
    if op == "send":
        if len(group) != 2:
            raise ValueError(f"send needs group (src, dst), got {group}")
        phases = [Phase((group,), 1.0, 1)] if group[0] != group[1] else []
    else:
        if len(set(group)) != len(group):
            raise ValueError(f"{op}: group has repeated ranks: {group}")
        if len(group) < 2:
            return ()
        phases = ALGORITHMS.get(algorithm)(op, group, topo)
    lo, hi = min(group), max(group)
    for off in mirror_offsets:
        if lo + off < 0 or hi + off >= topo.num_gpus:
            raise ValueError(f"mirror offset {off} puts group {list(group)} outside the cluster's {topo.num_gpus} GPUs")
    return tuple(_transfer(p, topo, mirror_offsets) for p in phases if p.pairs)


def plan_collective(
    op: str,
    group: Sequence[int],
    nbytes: float,
    topo: "Topology",
    *,
    algorithm: str = "auto",
    mirror_offsets: Sequence[int] = (),
) -> tuple[Transfer, ...]:
    """The phases of collective ``op`` on ``group`` moving ``nbytes`` (see algorithms.py for sizes).

    Returns one Transfer per phase, to run one after another; () when there is
    nothing to move (a group of one, a send to oneself).
    """
    if op not in OPS:
        raise ValueError(f"unknown collective {op!r}; known: {', '.join(OPS)}")
    group_t, mirrors = tuple(int(r) for r in group), tuple(int(o) for o in mirror_offsets)
    if algorithm == "auto" and op != "send" and len(group_t) >= 2:
        unit = pick(auto_options(op, group_t, topo, mirrors), nbytes)[3]
    else:
        unit = _unit(op, group_t, topo, algorithm, mirrors)
    return tuple(t.scaled(nbytes) for t in unit)


def _unit(op: str, group: tuple[int, ...], topo: "Topology", algorithm: str, mirrors: tuple[int, ...]) -> tuple[Transfer, ...]:
    """The plan for S = 1 byte, cached on the topology."""
    key = (op, algorithm, group, mirrors)
    cache = topo.plan_cache
    unit = cast("tuple[Transfer, ...] | None", cache.get(key))
    if unit is None:
        unit = _plan(op, group, topo, algorithm, mirrors)
        cache[key] = unit
    return unit


def auto_options(op: str, group: tuple[int, ...], topo: "Topology", mirrors: tuple[int, ...]) -> list[Option]:
    """``auto``'s candidates with their cost (cached): see :func:`simcluster.collectives.select.options`."""
    key = (op, "auto", group, mirrors)
    cache = topo.plan_cache
    opts = cast("list[Option] | None", cache.get(key))
    if opts is None:
        opts = options(op, group, topo, lambda name: _unit(op, group, topo, name, mirrors))
        cache[key] = opts
    return opts
