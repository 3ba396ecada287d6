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

:func:`graph_problems` is the one check of a graph (the spec package reports its findings
with file and line; :func:`build_explicit` raises on them).
"""

from __future__ import annotations

import heapq
import re
from collections import deque
from typing import Any, Iterable, Mapping

from simcluster.topology.topology import LinkTable
from simcluster.units import parse_quantity

GPU_NAME = re.compile(r"gpu(0|[1-9][0-9]*)")
DEFAULT_CLASS = "link"
FEMTO = 1e15  # latencies are compared as whole femtoseconds
MAX_PATH_LINES = 4  # "no path" problems listed one line per source GPU, at most this many


def field(obj: Any, name: str, default: Any = None) -> Any:
    """``obj[name]`` of a mapping or ``obj.name`` of an object (specs, namespaces, dumps)."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def link_class(link: Any) -> str:
    """A link's class: ``link_class`` of a spec, ``class`` of a file or a dump; default ``link``."""
    for name in ("link_class", "class", "cls"):
        value = field(link, name, None)
        if value is not None:
            return str(value)
    return DEFAULT_CLASS


def gpu_index(name: str) -> int | None:
    """k for ``gpu<k>``; None for any other name."""
    m = GPU_NAME.fullmatch(name)
    return int(m.group(1)) if m else None


def _gpu_like(name: str) -> bool:
    return name.startswith("gpu") and name[3:].isdigit()


def graph_gpu_count(graph: Any) -> int:
    """M: one more than the largest GPU index any link names (0 without GPUs)."""
    top = -1
    for link in field(graph, "links", None) or ():
        for v in field(link, "between", None) or ():
            k = gpu_index(str(v))
            if k is not None:
                top = max(top, k)
    return top + 1


def _names(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _directed_edges(links: Iterable[Any]) -> list[tuple[int, str, str]]:
    """(link index, src, dst) of every directed link the entries make, in file order."""
    out = []
    for i, link in enumerate(links):
        ends = field(link, "between", None) or ()
        if len(ends) != 2:
            continue
        a, b = (str(v) for v in ends)
        out.append((i, a, b))
        if not field(link, "directed", False):
            out.append((i, b, a))
    return out


def _reachable(adj: Mapping[str, list[str]], start: str) -> set[str]:
    seen, todo = {start}, deque([start])
    while todo:
        for w in adj.get(todo.popleft(), ()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def graph_problems(graph: Any) -> list[tuple[str, str]]:
    """Everything wrong with ``graph`` as (dotted key from the cluster root, reason).

    Unknown vertex names, self links, links given twice (per direction), switches listed
    twice or named like GPUs, switches or GPUs (gpu0 .. gpu<M-1>) without links, and GPU
    pairs with no path. Reachability is checked only when the vertices are sound.
    """
    found: list[tuple[str, str]] = []
    switches = [str(s) for s in field(graph, "switches", None) or ()]
    links = list(field(graph, "links", None) or ())
    if not links:
        return [("graph.links", "needs at least one link, e.g. {between: [gpu0, gpu1], bandwidth: \"100 GB/s\"}")]
    known: set[str] = set()
    for j, name in enumerate(switches):
        if _gpu_like(name):
            found.append((f"graph.switches.{j}", f"{name!r} is named like a GPU; GPUs gpu0, gpu1, ... are not "
                                                 "listed in switches"))
        elif "->" in name or name != name.strip():
            found.append((f"graph.switches.{j}", f"{name!r}: a vertex name has no '->' (links are named a->b) "
                                                 "and no surrounding spaces"))
        elif name in known:
            found.append((f"graph.switches.{j}", f"switch {name!r} is listed twice"))
        elif not name:
            found.append((f"graph.switches.{j}", "a switch needs a name"))
        known.add(name)
    M = graph_gpu_count(graph)
    sound = not found
    used: set[str] = set()
    for i, link in enumerate(links):
        ends = [str(v) for v in field(link, "between", None) or ()]
        if len(ends) != 2:
            found.append((f"graph.links.{i}.between", f"expected the two vertices a link joins, e.g. [gpu0, sw0], got {ends}"))
            sound = False
        for v in ends:
            k = gpu_index(v)
            if k is None and v not in known:
                hint = "a GPU name has no leading zeros, e.g. gpu3" if v.startswith("gpu") else \
                    "list it in graph.switches"
                found.append((f"graph.links.{i}.between",
                              f"unknown vertex {v!r}: neither a GPU (gpu0 .. gpu{max(M - 1, 0)}) nor a switch; {hint}"))
                sound = False
        if len(ends) == 2 and ends[0] == ends[1]:
            found.append((f"graph.links.{i}.between", f"links {ends[0]} to itself"))
            sound = False
        used.update(ends)
    first: dict[tuple[str, str], int] = {}
    clashes: dict[tuple[int, int], list[str]] = {}
    for i, a, b in _directed_edges(links):
        if a == b:
            continue
        j = first.setdefault((a, b), i)
        if j != i:
            clashes.setdefault((i, j), []).append(f"{a}->{b}")
    for (i, j), names in clashes.items():
        found.append((f"graph.links.{i}.between",
                      f"duplicates graph.links.{j}: both give {' and '.join(names)} (give parallel links as one, "
                      "their bandwidths summed; `directed: true` for one direction)"))
    lonely = [f"gpu{k}" for k in range(M) if f"gpu{k}" not in used]
    if lonely:
        found.append(("graph.links", f"{_names(lonely)} {'has' if len(lonely) == 1 else 'have'} no links; "
                                     f"GPUs are gpu0 .. gpu{M - 1} in rank order and each needs a link"))
        sound = False
    for j, name in enumerate(switches):
        if name and name not in used and not _gpu_like(name):
            found.append((f"graph.switches.{j}", f"switch {name!r} has no links"))
    found.sort(key=_file_order)
    if sound and M > 1:
        found += _path_problems(links, M)
    return found


def _file_order(problem: tuple[str, str]) -> tuple[int, int]:
    """Switches, then links in file order, then problems of the whole list."""
    parts = problem[0].split(".")
    index = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 1 << 30
    return (0 if parts[1] == "switches" else 1, index)


def _path_problems(links: list[Any], M: int) -> list[tuple[str, str]]:
    """One line per GPU (at most MAX_PATH_LINES) that cannot reach every other GPU."""
    adj: dict[str, list[str]] = {}
    radj: dict[str, list[str]] = {}
    for _, a, b in _directed_edges(links):
        adj.setdefault(a, []).append(b)
        radj.setdefault(b, []).append(a)
    gpus = [f"gpu{k}" for k in range(M)]
    if set(gpus) <= _reachable(adj, gpus[0]) & _reachable(radj, gpus[0]):
        return []  # every GPU reaches gpu0 and gpu0 reaches every GPU
    out, stuck = [], 0
    for g in gpus:
        reach = _reachable(adj, g)
        missing = [h for h in gpus if h not in reach]
        if not missing:
            continue
        stuck += 1
        if len(out) < MAX_PATH_LINES:
            out.append(("graph.links", f"no path from {g} to {_names(missing)}: every GPU must reach every other"))
    if stuck > len(out):
        out.append(("graph.links", f"and {stuck - len(out)} more GPUs cannot reach every other GPU"))
    return out


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


def build_explicit(cluster: Any, links: LinkTable) -> ExplicitRouter:
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
