"""Dimension-by-dimension collectives on a torus (registered as ``torus``; TPU pods).

The multi-dimensional ring algorithm (Ying et al., "Image Classification at
Supercomputer Scale", 2018, sec. 3 (2D torus all-reduce on TPU v3 pods);
the generalisation of Thakur et al. 2005's ring to a grid): with the group
a box of n_1 x n_2 x ... members, all-reduce is

    reduce-scatter along dim 1 (rings of n_1, S), along dim 2 (on S/n_1), ...,
    then all-gather in the reverse order,

so the bandwidth term is 2 sum_j (n_j - 1)/n_j * S / (n_1 ... n_{j-1}) / B'
with B' = 2B: every ring runs both ways round its dimension (half the data
each way) and so uses both directions of every link, as TPU collectives do.
Each dimension's phase uses only that dimension's links, so a 3D box loads
all three dimensions' links. all_gather and reduce_scatter are the second
and first halves. Members may be strided (e.g. every 4th chip along x when
a tensor-parallel group fills the rest): a ring hop then spans several links.

Groups that are not a box of the torus (or on a switched cluster): the ring.

Groups spanning TPU pods (``multipod``, registered): hierarchical, as PaLM's two-pod
data parallelism runs (Chowdhery et al. 2022 §4): reduce-scatter inside every pod (the
torus algorithm on each pod's members, or their ring), then an all-reduce of each chip's
1/g share across the pods (a ring of the k pods' chips of the same local index, over the
data-center network), then all-gather inside every pod. With g members per pod the
cross-pod bytes per chip are 2(k − 1)/k · S/g.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

from simcluster.collectives.algorithms import ALGORITHMS, Phase, ring
from simcluster.collectives.rings import ring_pairs

if TYPE_CHECKING:
    from simcluster.topology.topology import Topology


def box_lines(group: Sequence[int], topo: "Topology") -> list[list[list[int]]] | None:
    """Per dimension with more than one member coordinate: its lines (members sorted along it).

    None when the group is not a full box (product of per-dimension coordinate sets).
    """
    shape = topo.shape
    if not topo.is_torus or not shape:
        return None
    strides = [math.prod(shape[:d]) for d in range(len(shape))]
    coords = {r: tuple((r // s) % n for s, n in zip(strides, shape)) for r in group}
    sets = [sorted({c[d] for c in coords.values()}) for d in range(len(shape))]
    if math.prod(len(s) for s in sets) != len(group) or len(coords) != len(group):
        return None
    by_coord = {c: r for r, c in coords.items()}
    out = []
    for d, values in enumerate(sets):
        if len(values) < 2:
            continue
        others = {c[:d] + c[d + 1:] for c in coords.values()}
        lines = [[by_coord[o[:d] + (v,) + o[d:]] for v in values] for o in sorted(others)]
        out.append(lines)
    return out


def _dim_phase(lines: list[list[int]], factor: float, topo: "Topology") -> Phase:
    """Bidirectional rings along every line at once, half the data each way."""
    pairs: list[tuple[int, int]] = []
    for line in lines:
        m = len(line)
        pairs += [(line[i], line[(i + 1) % m]) for i in range(m)]
        pairs += [(line[(i + 1) % m], line[i]) for i in range(m)]
    m = len(lines[0])
    alpha = max(topo.route_latency(a, b) for a, b in pairs)
    return Phase(tuple(pairs), factor, m - 1, (0.5,) * len(pairs), (m - 1) * alpha)


@ALGORITHMS.register("torus")
def torus(op: str, group: Sequence[int], topo: "Topology") -> list[Phase]:
    """Reduce-scatter then all-gather dimension by dimension (see the module docstring)."""
    if op not in ("all_reduce", "all_gather", "reduce_scatter", "broadcast"):
        raise ValueError(f"collective algorithm 'torus' does not implement {op}")
    dims = box_lines(group, topo)
    if op == "broadcast" or not dims:
        return ring(op, group, topo)
    rs, share = [], 1.0
    for lines in dims:
        m = len(lines[0])
        rs.append(_dim_phase(lines, (m - 1) / m * share, topo))
        share /= m
    if op == "reduce_scatter":
        return rs
    ag = list(reversed(rs))
    return ag if op == "all_gather" else rs + ag


def pod_split(group: Sequence[int], topo: "Topology") -> list[list[int]]:
    """Members per pod, pods in order of first appearance, members in group order."""
    by_pod: dict[int, list[int]] = {}
    for r in group:
        by_pod.setdefault(r // topo.chips_per_pod, []).append(r)
    return list(by_pod.values())


def multipod_applies(op: str, group: Sequence[int], topo: "Topology") -> bool:
    """k >= 2 pods with the same number of members each, and an op with a hierarchical form."""
    if topo.pods < 2 or op not in ("all_reduce", "all_gather", "reduce_scatter"):
        return False
    pods = pod_split(group, topo)
    return len(pods) >= 2 and all(len(m) == len(pods[0]) for m in pods)


def _merged(per_pod: list[list[Phase]]) -> list[Phase]:
    """The pods' phases run at once: the i-th phases of every pod as one phase."""
    out = []
    for phases in zip(*per_pod):
        pairs = tuple(p for ph in phases for p in ph.pairs)
        weights = tuple(w for ph in phases for w in (ph.weights or (1.0,) * len(ph.pairs)))
        lat = [ph.latency for ph in phases if ph.latency is not None]
        out.append(Phase(pairs, phases[0].factor, phases[0].steps, weights, max(lat) if lat else None))
    return out


@ALGORITHMS.register("multipod")
def multipod(op: str, group: Sequence[int], topo: "Topology") -> list[Phase]:
    """Inside every pod, across the pods, inside again (see the module docstring); the ring elsewhere."""
    if not multipod_applies(op, group, topo):
        return ring(op, group, topo)
    pods = pod_split(group, topo)
    k, g = len(pods), len(pods[0])
    inter = tuple(p for i in range(g) for p in ring_pairs([m[i] for m in pods]))
    alpha = max(topo.route_latency(a, b) for a, b in inter)
    if op == "all_reduce":
        across = Phase(inter, 2 * (k - 1) / k / g, 2 * (k - 1), None, 2 * (k - 1) * alpha)
    else:
        across = Phase(inter, (k - 1) / k / g, k - 1, None, (k - 1) * alpha)
    if g == 1:
        return [across]
    rs = _merged([torus("reduce_scatter", m, topo) for m in pods])
    ag = _merged([torus("all_gather", m, topo) for m in pods])
    if op == "reduce_scatter":
        return rs + [across]
    if op == "all_gather":
        return [across] + ag
    return rs + [across] + ag
