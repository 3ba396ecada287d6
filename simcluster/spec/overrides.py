"""``--set KEY=VALUE`` overrides: dotted keys into the workload, values read as YAML scalars.

``--set parallelism.tensor=4`` sets an int, ``--set training.recompute=full`` a string,
``--set parallelism.stage_layers=[4,4]`` a list. A comma list ``a,b,c`` stays a plain
string (sweeps are handled elsewhere). Problems name ``--set`` as their file.

Whether a key exists is judged later, by the schema (an unknown key is reported with
the known keys of its section); here only the form of each override is checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from simcluster.errors import Problem
from simcluster.spec.yamlio import parse_scalar

SET_FILE = "--set"
_KEY = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")

# Keys of the workload's cluster section that replace one another: setting one drops the other.
_EXCLUSIVE = {"cluster.nodes": "cluster.devices", "cluster.devices": "cluster.nodes"}


@dataclass(frozen=True)
class Override:
    """One parsed ``--set``: the dotted key and its value."""

    key: str
    value: Any


def parse_override(text: str) -> Override:
    """Parse ``KEY=VALUE``; raises ValueError with a one-line reason."""
    if "=" not in text:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    key, _, raw = text.partition("=")
    key = key.strip()
    if not _KEY.match(key):
        raise ValueError(f"expected a dotted key like 'parallelism.tensor' before '=', got {key!r}")
    return Override(key, parse_scalar(raw.strip()))


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> tuple[list[str], list[Problem]]:
    """Apply ``overrides`` to ``data`` in place, in order.

    Returns the dotted keys that were set (so that later problems in them can name
    ``--set``) and the problems with malformed overrides.
    """
    applied: list[str] = []
    problems: list[Problem] = []
    for text in overrides:
        try:
            override = parse_override(text)
        except ValueError as exc:
            key = text.partition("=")[0].strip() if "=" in text else text
            problems.append(Problem(SET_FILE, None, key, str(exc)))
            continue
        parts = override.key.split(".")
        node: Any = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                parent = ".".join(parts[: depth + 1])
                problems.append(Problem(SET_FILE, None, override.key, f"{parent} is a value, not a section with keys"))
                break
            node = child
        else:
            node[parts[-1]] = override.value
            applied.append(override.key)
            other = _EXCLUSIVE.get(override.key)
            if other is not None:
                _delete(data, other)
    return applied, problems


def _delete(data: dict[str, Any], dotted: str) -> None:
    """Remove ``dotted`` from ``data`` if present."""
    *parents, last = dotted.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(last, None)
