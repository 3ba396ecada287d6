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

NCCL's latency model (:mod:`simcluster.collectives.nccl`): on switched GPU
clusters a ring or tree plan has one variant per protocol NCCL enables; a
variant's latency is NCCL's (base + per-step latencies by link class, on the
first phase; the other phases' latencies are 0) and its bytes are divided by
the protocol's bandwidth factor. The variant with the smallest L + K*S at the
collective's size runs, for ``auto`` and for an explicit ``ring``/``tree``
alike, as NCCL picks the protocol by size.

Plans are cached on the topology by (op, algorithm, group, mirror_offsets)
for S = 1 byte and scaled with ``Transfer.scaled``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence, cast

from simcluster.collectives import nccl
from simcluster.collectives.algorithms import ALGORITHMS, OPS, Phase, node_split
from simcluster.collectives.select import Option, cost, options, pick
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
    if op != "send" and len(group_t) >= 2:
        unit = pick(algorithm_options(op, group_t, topo, algorithm, mirrors), nbytes)[3]
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


def variants(op: str, group: tuple[int, ...], topo: "Topology", algorithm: str,
             mirrors: tuple[int, ...]) -> list[tuple[Transfer, ...]]:
    """The plans (S = 1) ``algorithm`` may run as: one per NCCL protocol where NCCL's model applies.

    Where it applies (ring or tree, a switched GPU cluster: :func:`nccl.applies`), each
    enabled protocol p gives the plan with latency ``nccl.latency(...)`` on its first phase,
    0 on the others, and bytes / ``nccl.bandwidth_factor(...)``; else the plan as it is.
    """
    unit = _unit(op, group, topo, algorithm, mirrors)
    if algorithm not in ("ring", "tree") or not unit or not nccl.applies(topo.intra_fabric, topo.inter_fabric):
        return [unit]
    k = len(node_split(group, topo))
    algo = "tree" if algorithm == "tree" and k > 1 else "ring"  # tree on one node is the ring
    out = []
    for p in nccl.protocols(topo.intra_fabric):
        lat = nccl.latency(algo, p, op, len(group), k, topo.intra_fabric)
        f = nccl.bandwidth_factor(algo, p, op, k)
        out.append(tuple(Transfer(t.links, t.weights, t.nbytes / f, lat if i == 0 else 0.0)
                         for i, t in enumerate(unit)))
    return out


def algorithm_options(op: str, group: tuple[int, ...], topo: "Topology", algorithm: str,
                      mirrors: tuple[int, ...]) -> list[Option]:
    """What ``algorithm`` may run as, with its cost: ``auto``'s options, or the named one's variants."""
    if algorithm == "auto":
        return auto_options(op, group, topo, mirrors)
    return [(algorithm, *cost(u, topo), u) for u in variants(op, group, topo, algorithm, mirrors)]


def auto_options(op: str, group: tuple[int, ...], topo: "Topology", mirrors: tuple[int, ...]) -> list[Option]:
    """``auto``'s candidates with their cost (cached): see :func:`simcluster.collectives.select.options`."""
    key = (op, "auto", group, mirrors)
    cache = topo.plan_cache
    opts = cast("list[Option] | None", cache.get(key))
    if opts is None:
        opts = options(op, group, topo, lambda name: variants(op, group, topo, name, mirrors))
        cache[key] = opts
    return opts
