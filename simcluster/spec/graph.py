"""The checks of an explicit graph (cluster file key ``graph``), and the reading of its entries.

A graph's vertices are the GPUs ``gpu<k>`` (k = the rank, 0 .. M-1, every one with at least
one link) and the names listed in ``switches``; see :mod:`simcluster.topology.explicit` for
the file format and how the graph is built and routed. :func:`graph_problems` is the one
check of a graph: the spec package reports its findings with file and line, and
``build_explicit`` raises on them. The functions read a :class:`~simcluster.spec.graph_spec.GraphSpec`,
a mapping as written in a file, or a dump alike (:func:`field`).
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any, Iterable, Mapping

GPU_NAME = re.compile(r"gpu(0|[1-9][0-9]*)")
DEFAULT_CLASS = "link"
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
    out: list[tuple[str, str]] = []
    stuck = 0
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
