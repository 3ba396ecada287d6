"""The allowed imports between simcluster's parts: one table, checked by tests/test_design.py.

A *part* is a top-level package or module of ``simcluster/`` (``spec``, ``cli``, ...);
``simcluster`` is the root package's ``__init__.py``. :data:`ALLOWED` maps each part to the
parts it may import; a part may always import its own modules. Every import counts: at
module level, inside functions, under ``if TYPE_CHECKING:``, and module names given to
``importlib.import_module`` / ``__import__``. The table lists no exceptions, lists parts
that do not exist yet (``plan``, ``validation``) so that they start inside the rules, and is
itself checked to have no cycles. docs/architecture.md states the same edges.
"""

from __future__ import annotations

#: Parts everything may import: the root package, units, errors, the registry type and the
#: catalogue of names, the SIGINT handler (``catalogue`` imports ``registry``; nothing else here imports anything).
LEAF = frozenset({"simcluster", "units", "errors", "registry", "catalogue", "interrupt"})

_CORE: dict[str, frozenset[str]] = {
    "simcluster": frozenset(),
    "units": frozenset(),
    "errors": frozenset(),
    "interrupt": frozenset(),  # Ctrl-C raised outside importlib's machinery (stdlib only)
    "registry": frozenset(),
    "catalogue": frozenset({"registry"}),
    "spec": LEAF,
    "workload": LEAF | {"spec"},
    "topology": LEAF | {"spec"},
    "collectives": LEAF | {"topology"},
    "costs": LEAF | {"topology", "workload", "spec"},
    "plan": LEAF | {"spec", "workload", "costs", "topology", "collectives"},
    "lowering": LEAF | {"plan", "collectives", "costs", "topology", "workload", "spec"},
    "engine": LEAF | {"lowering", "topology", "collectives"},
    "metrics": LEAF | {"engine", "lowering", "plan", "costs", "spec", "topology"},
    "reporting": LEAF | {"metrics", "engine", "lowering", "plan", "spec", "topology", "costs"},
    "runfolder": LEAF,  # output folders: checked, written whole (a completion marker), refused when partial
}
_CORE["run"] = frozenset(_CORE)  # one simulation end to end: everything above

#: Everything one simulation needs: what ``run`` may import, and ``run`` itself.
RUN_AND_BELOW = frozenset(_CORE) | {"run"}

ALLOWED: dict[str, frozenset[str]] = {
    **_CORE,
    "sweep": RUN_AND_BELOW,
    "chakra": RUN_AND_BELOW,
    "validation": RUN_AND_BELOW,
    "search": RUN_AND_BELOW | {"sweep"},  # search simulates its candidates as a sweep
}
ALLOWED["commands"] = frozenset(ALLOWED)
ALLOWED["api"] = frozenset(ALLOWED)  # the public Python API (simcluster.load, simulate, sweep, search)
ALLOWED["cli"] = frozenset(ALLOWED)
ALLOWED["__main__"] = frozenset({"cli", "interrupt"})


#: Edges taken only inside functions, once every part is loaded: the root package's module
#: ``__getattr__`` hands out the public API's names from ``api`` on first use. They are allowed
#: but are not layers (``api`` imports the root like every part), so :func:`cycles` leaves them
#: out; tests/test_design.py checks that they are made inside functions only.
#: ``simcluster.sweep`` and ``simcluster.search`` are the packages of those names, made callable
#: (they call the API's functions): those packages reach ``api`` the same way.
LAZY: dict[str, frozenset[str]] = {"simcluster": frozenset({"api", "sweep", "search"}),
                                   "sweep": frozenset({"api"}), "search": frozenset({"api"})}


def part_of(module: str) -> str | None:
    """The part a dotted module name belongs to (``simcluster.spec.cluster`` -> ``spec``);
    None for a module outside simcluster."""
    parts = module.split(".")
    if parts[0] != "simcluster":
        return None
    return parts[1] if len(parts) > 1 else "simcluster"


def allowed(source: str, target: str) -> bool:
    """Whether part ``source`` may import part ``target``."""
    return source == target or target in ALLOWED.get(source, frozenset()) or target in LAZY.get(source, frozenset())


def cycles() -> list[list[str]]:
    """Cycles of the table itself (empty: the parts can be ordered so that imports go one way)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(ALLOWED.get(node, ())):
            if state.get(nxt) == 1:
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(ALLOWED):
        if start not in state:
            visit(start, [start])
    return found
