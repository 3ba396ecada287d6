"""Links whose capacity constraint the links around them already imply (so they never bind).

A link ``U = a -> b`` is *covered* by a set ``S`` of links when, for every transfer of
the task graph, its weight on ``S`` is at least its weight on ``U``, and
``sum_{n in S} B_n <= B_U``. Then for any set of active flows and any rates

    sum_f w[f,U]·r_f  <=  sum_f sum_{n in S} w[f,n]·r_f  <=  sum_{n in S} B_n  <=  B_U,

so ``U``'s constraint follows from those of ``S``: leaving it out of max-min fair
sharing changes no rate (the feasible set is the same, and the max-min fair allocation,
Bertsekas & Gallager, *Data Networks*, §6.5.2, is a function of that set alone). The candidates for
``S`` are the links into ``a`` (but ``b -> a``) and the links out of ``b`` (but
``b -> a``): whatever crosses ``U`` came in through one or leaves through the other.

The case that matters: a non-blocking fat tree, whose leaf uplink carries exactly what
its NICs can inject (``used · nic_bandwidth``; :mod:`simcluster.topology.network`).
Left in, every uplink ties with its NICs and joins all the flows leaving a leaf into one
component that is re-rated on every change; left out, flows couple only through the
links that can actually hold them back. Covered links are chosen greedily, widest first,
and a chosen link's cover (of its two, the one of narrower links) is kept, so no
constraint is dropped on the strength of another dropped one. Bandwidth sums are compared with a relative slack of 1e-12 (the
same capacity summed in another order).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from simcluster.collectives.transfer import Transfer

_REL = 1e-12


def covered_links(transfers: Iterable[Transfer], bandwidth: Sequence[float], src: Sequence[str],
                  dst: Sequence[str]) -> list[bool]:
    """Per link id: whether its constraint is implied by others that are kept (see the module)."""
    n = len(bandwidth)
    routes: dict[tuple[int, ...], set[tuple[float, ...]]] = {}
    for tr in transfers:
        routes.setdefault(tr.links, set()).add(tr.weights)
    covers = _candidates(sorted({l for links in routes for l in links}), bandwidth, src, dst)
    for links, weight_sets in routes.items():
        on = [u for u in links if u in covers]
        for weights in weight_sets:
            if not on:
                break
            w: dict[int, float] = {}
            for m, x in zip(links, weights):
                w[m] = w.get(m, 0.0) + x
            for u in on:
                ok = [s for s in covers[u] if sum(w.get(m, 0.0) for m in s) >= w[u]]
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
        # the cover of the narrowest links (NICs rather than the other side's uplinks) is kept
        for m in min(covers[u], key=lambda c: (max(bandwidth[m] for m in c), sorted(c))):
            keep[m] = True
    return out


def _candidates(used: list[int], bandwidth: Sequence[float], src: Sequence[str],
                dst: Sequence[str]) -> dict[int, list[frozenset[int]]]:
    """Per used link ``a -> b``, the covers whose bandwidth fits: the links into ``a`` and the
    links out of ``b``, each without ``b -> a`` (bandwidth sums per vertex with numpy)."""
    if not used:
        return {}
    codes, _ = pd.factorize(np.array(list(src) + list(dst), dtype=object))
    n = len(bandwidth)
    s, d = codes[:n].astype(np.int64), codes[n:].astype(np.int64)
    bw = np.asarray(bandwidth, dtype=float)
    m = int(codes.max()) + 1
    into_bw, out_bw = np.bincount(d, bw, minlength=m), np.bincount(s, bw, minlength=m)
    pair = s * m + d
    by_pair = np.argsort(pair, kind="stable")
    u = np.asarray(used, dtype=np.int64)
    at = np.searchsorted(pair[by_pair], d[u] * m + s[u])  # the reverse link b -> a, if any
    found = (at < n) & (pair[by_pair][np.minimum(at, n - 1)] == d[u] * m + s[u])
    rev = np.where(found, bw[by_pair[np.minimum(at, n - 1)]], 0.0)
    limit = bw[u] * (1 + _REL)
    fit_in = (into_bw[s[u]] - rev <= limit) & (into_bw[s[u]] - rev > 0)
    fit_out = (out_bw[d[u]] - rev <= limit) & (out_bw[d[u]] - rev > 0)
    by_dst, by_src = np.argsort(d, kind="stable"), np.argsort(s, kind="stable")
    dst_at = np.searchsorted(d[by_dst], np.arange(m + 1))
    src_at = np.searchsorted(s[by_src], np.arange(m + 1))
    covers: dict[int, list[frozenset[int]]] = {}
    # (Python lists for the loop: indexing numpy arrays element by element is slow)
    sl, dl, ul = s.tolist(), d.tolist(), u.tolist()
    into, out = by_dst.tolist(), by_src.tolist()
    dst_al, src_al, fin, fout = dst_at.tolist(), src_at.tolist(), fit_in.tolist(), fit_out.tolist()
    for i in np.flatnonzero(fit_in | fit_out).tolist():
        l = ul[i]
        a, b = sl[l], dl[l]
        found_covers = []
        if fin[i]:
            found_covers.append(frozenset(x for x in into[dst_al[a]:dst_al[a + 1]] if sl[x] != b))
        if fout[i]:
            found_covers.append(frozenset(x for x in out[src_al[b]:src_al[b + 1]] if dl[x] != a))
        covers[l] = found_covers
    return covers


def twin_links(transfers: Iterable[Transfer], bandwidth: Sequence[float],
               covered: Sequence[bool] | None = None) -> list[int]:
    """Per link id, the link that stands for it: links crossed by exactly the same transfers
    with the same weights (``covered`` alike) form a group, represented by its narrowest link
    (the lowest id among equals).

    The links of a group always carry the same flows with the same weights, so their busy
    intervals and bytes are the same, and the narrowest one's constraint implies the others'
    (same left-hand side, capacity no larger): max-min fair rates are the same with the
    representative alone. A node's NVLink ring (16 links GPU <-> NVSwitch, one transfer) is
    one group; so are a NIC's link in and the leaf port it feeds.
    """
    n = len(bandwidth)
    crossing: dict[int, list[tuple[int, float]]] = {}
    for i, tr in enumerate(transfers):
        for l, w in zip(tr.links, tr.weights):
            crossing.setdefault(l, []).append((i, w))
    groups: dict[tuple[bool, tuple[tuple[int, float], ...]], list[int]] = {}
    for l, c in crossing.items():
        groups.setdefault((bool(covered[l]) if covered is not None else False, tuple(c)), []).append(l)
    rep = list(range(n))
    for members in groups.values():
        r = min(members, key=lambda m: (bandwidth[m], m))
        for m in members:
            rep[m] = r
    return rep
