"""Links whose capacity constraint the links around them already imply (so they never bind).

A link ``U = a -> b`` is *covered* by a set ``S`` of links when, for every transfer of
the task graph, its weight on ``S`` is at least its weight on ``U``, and
``sum_{n in S} B_n <= B_U``. Then for any set of active flows and any rates

    sum_f w[f,U]·r_f  <=  sum_f sum_{n in S} w[f,n]·r_f  <=  sum_{n in S} B_n  <=  B_U,

so ``U``'s constraint follows from those of ``S``: leaving it out of max-min fair
sharing changes no rate (the feasible set is the same; Bertsekas & Gallager, *Data
Networks*, §6.5.2, define the allocation on that set alone). The candidates for
``S`` are the links into ``a`` (but ``b -> a``) and the links out of ``b`` (but
``b -> a``): whatever crosses ``U`` came in through one or leaves through the other.

The case that matters: a non-blocking fat tree, whose leaf uplink carries exactly what
its NICs can inject (``used · nic_bandwidth``; :mod:`simcluster.topology.network`).
Left in, every uplink ties with its NICs and joins all the flows leaving a leaf into one
component that is re-rated on every change; left out, flows couple only through the
links that can actually hold them back. Covered links are chosen greedily, widest first,
and a chosen link's cover is kept, so no constraint is dropped on the strength of
another dropped one. Bandwidth sums are compared with a relative slack of 1e-12 (the
same capacity summed in another order).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from simcluster.collectives.transfer import Transfer

_REL = 1e-12


def covered_links(transfers: Iterable[Transfer], bandwidth: Sequence[float], src: Sequence[str],
                  dst: Sequence[str]) -> list[bool]:
    """Per link id: whether its constraint is implied by others that are kept (see the module)."""
    n = len(bandwidth)
    routes: dict[tuple[int, ...], set[tuple[float, ...]]] = {}
    for tr in transfers:
        routes.setdefault(tr.links, set()).add(tr.weights)
    used = {l for links in routes for l in links}
    into: dict[str, list[int]] = {}
    out_of: dict[str, list[int]] = {}
    for l in range(n):
        into.setdefault(dst[l], []).append(l)
        out_of.setdefault(src[l], []).append(l)
    # candidate covers whose bandwidth fits: the in-links of a, the out-links of b
    covers: dict[int, list[frozenset[int]]] = {}
    for u in used:
        a, b = src[u], dst[u]
        for s in ([m for m in into[a] if src[m] != b] if a in into else [],
                  [m for m in out_of[b] if dst[m] != a] if b in out_of else []):
            if s and sum(bandwidth[m] for m in s) <= bandwidth[u] * (1 + _REL):
                covers.setdefault(u, []).append(frozenset(s))
    for links, weight_sets in routes.items():
        on = [u for u in links if u in covers]
        for weights in weight_sets:
            if not on:
                break
            pairs = list(zip(links, weights))
            w: dict[int, float] = {}
            for m, x in pairs:
                w[m] = w.get(m, 0.0) + x
            for u in on:
                ok = [s for s in covers[u] if sum(x for m, x in pairs if m in s) >= w[u]]
                if ok:
                    covers[u] = ok
                else:
                    del covers[u]
            on = [u for u in on if u in covers]
    out = [False] * n
    keep = [False] * n
    for u in sorted(covers, key=lambda u: (-bandwidth[u], u)):
        if keep[u]:
            continue
        out[u] = True
        for m in covers[u][0]:
            keep[m] = True
    return out
