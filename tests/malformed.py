"""A malformed-input corpus, generated at test time by seeded mutation of the shipped files.

:func:`corpus` yields :class:`Case` s: the shipped workloads (``workloads/*.yaml``),
clusters (``topologies/**/*.yaml``) and sweeps (``workloads/sweeps/*.yaml``) with one
mutation each (a value replaced by a wrong type, an absurd size or a path-like name; a key
deleted, misspelt or added; the text truncated, or bytes spliced in), plus the structural
cases of issue 19 (alias bombs, self-references, deep nesting, huge literals, binary
files, tens of thousands of unknown keys). The same seed gives the same files.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = sorted((ROOT / "workloads").glob("*.yaml"))
CLUSTERS = sorted((ROOT / "topologies").rglob("*.yaml"))
SWEEPS = sorted((ROOT / "workloads" / "sweeps").glob("*.yaml"))

#: Replacement values: wrong types, absurd and meaningless sizes, names that are paths.
BAD_VALUES: list[Any] = [
    -1, 0, 2**63, 10**40, 0.5, -0.5, 1e300, -1e300, 1e-300, float("nan"), float("inf"), "four", "", True,
    None, [], {}, [1, [2, [3]]], {"x": 1}, "1e16", "1 PB/s", "1e-300 B/s", "10 s", "-2 us", "2 us/s",
    "300 GB/s", "80 GiB", "../../etc/x", "/abs/path", "..", ".", "a" * 300, "a\0b", "ünïcødé", "x" * 5000,
    "none", "torus", "fat-tree", "interleaved", [4096, 4096, 4096], {0: 1e300}, {"gpu0->nvsw0": 1e-9},
]
TYPO_SUFFIX = ["_", "s", "x"]


@dataclass
class Case:
    """One generated file: its name, bytes, and the dotted key the mutation touched ("" if none)."""

    name: str
    data: bytes
    key: str = ""
    kind: str = ""


def _leaves(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths (tuples of keys and indices) of every value, mappings and lists descended."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _leaves(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _leaves(v, (*prefix, i))
    return out


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    node = data
    for p in path[:-1]:
        node = node[p]
    return node


def _dump(data: Any) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**6).encode("utf-8")


def _seed_data(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if isinstance(data.get("base"), str):  # sweeps: the base workload as an absolute path
        data["base"] = str((path.parent / data["base"]).resolve())
    return data


def _mutate_data(rng: random.Random, data: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """One data-level mutation: ``(data, key touched, kind)``."""
    paths = _leaves(data)
    path = rng.choice(paths)
    node, last = _parent(data, path), path[-1]
    kind = rng.choice(["value", "value", "value", "delete", "typo", "add", "wrap"])
    if kind == "value":
        was, node[last] = node[last], rng.choice(BAD_VALUES)
        if isinstance(was, (dict, list)) or node[last] is None:
            path = ()  # a section replaced (or a key set to null, as if not given): the problem may be elsewhere
    elif kind == "delete":
        del node[last]
        path = ()  # a missing key may be optional, or filled from a preset: no key to look for
    elif kind == "typo" and isinstance(node, dict):
        node[f"{last}{rng.choice(TYPO_SUFFIX)}"] = node.pop(last)
    elif kind == "add" and isinstance(node, dict):
        path = (*path[:-1], f"unknown_{rng.randrange(10**6)}")
        node[path[-1]] = rng.choice(BAD_VALUES[:20])
    else:
        node[last] = [node[last]]
        kind = "wrap"
    return data, ".".join(map(str, path)), kind


def _mutate_text(rng: random.Random, text: bytes) -> tuple[bytes, str]:
    """One byte-level mutation: ``(bytes, kind)``."""
    kind = rng.choice(["truncate", "splice", "binary", "tab", "nul", "latin1", "control", "brackets"])
    at = rng.randrange(max(1, len(text)))
    if kind == "truncate":
        return text[:at], kind
    if kind == "splice":
        return text[:at] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16))) + text[at:], kind
    if kind == "binary":
        return bytes(rng.randrange(256) for _ in range(300)), kind
    if kind == "tab":
        return text[:at] + b"\n\t  x: 1\n" + text[at:], kind
    if kind == "nul":
        return text[:at] + b"\0" + text[at:], kind
    if kind == "latin1":
        return text[:at] + "é".encode("latin-1") + text[at:], kind
    if kind == "control":
        return text[:at] + bytes([rng.choice([1, 7, 8, 27, 127])]) + text[at:], kind
    return text[:at] + b"[" * rng.randrange(1, 50) + text[at:], kind


def structural() -> Iterator[Case]:
    """The hand-made cases of issue 19 (each as a workload or a sweep where that matters)."""
    bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, c in zip("abcdefgh", "bcdefghi"):
        bomb.append(f"{c}: &{c} [" + ",".join([f"*{prev}"] * 9) + "]")
    yield Case("alias-bomb.yaml", ("\n".join(bomb) + "\nmodel: *i\n").encode(), "", "bomb")
    base = str(WORKLOADS[-1])
    yield Case("alias-bomb-sweep.yaml", ("\n".join(bomb) + f"\nbase: {base}\ngrid:\n  model.layers: *i\n").encode(),
               "", "bomb")
    yield Case("self-alias.yaml", b"model: &a [*a]\n", "model", "self")
    yield Case("self-alias-map.yaml", b"model: &a {x: *a}\n", "model", "self")
    yield Case("deep-lists.yaml", b"model: " + b"[" * 1000 + b"]" * 1000 + b"\n", "", "deep")
    yield Case("deep-maps.yaml", b"model: " + b"{a: " * 500 + b"1" + b"}" * 500 + b"\n", "", "deep")
    yield Case("not-filter.yaml", f"base: {base}\ngrid:\n  model.layers: [1]\nfilters:\n  - {'not ' * 3000}true\n"
               .encode(), "filters", "deep")
    yield Case("huge-int.yaml", b"model:\n  layers: " + b"9" * 5000 + b"\n", "", "literal")
    yield Case("big-int.yaml", b"model:\n  layers: " + b"9" * 60 + b"\n", "model.layers", "literal")
    yield Case("int-four.yaml", b"model:\n  layers: !!int four\n", "", "tag")
    yield Case("bool-tag.yaml", b"model:\n  layers: !!bool maybe\n", "", "tag")
    yield Case("float-tag.yaml", b"model:\n  layers: !!float abc\n", "", "tag")
    yield Case("python-tag.yaml", b"model: !!python/object:os.system {}\n", "", "tag")
    yield Case("timestamp.yaml", b"name: 2024-13-45\nmodel: {layers: 1}\n", "", "tag")
    yield Case("nul.yaml", b"model:\0\n", "", "binary")
    yield Case("binary.yaml", bytes(range(256)) * 4, "", "binary")
    yield Case("latin1.yaml", "name: café\n".encode("latin-1"), "", "binary")
    yield Case("control.yaml", b"name: a\x07b\n", "", "binary")
    yield Case("bom.yaml", b"\xef\xbb\xbfmodel: {layers: 1}\n", "", "bom")
    yield Case("empty.yaml", b"", "", "empty")
    yield Case("list-top.yaml", b"- 1\n- 2\n", "", "top")
    yield Case("scalar-top.yaml", b"42\n", "", "top")
    yield Case("unknown-20k.yaml", ("model:\n" + "".join(f"  k{i}: 1\n" for i in range(20_000))).encode(), "model",
               "unknown")
    yield Case("top-20k.yaml", ("".join(f"k{i}: 1\n" for i in range(20_000)) + "model: {}\n").encode(), "", "unknown")
    yield Case("name-path.yaml", (WORKLOADS[-1].read_text() + "\n").replace("name: toy-8gpu", "name: ../../x")
               .encode(), "name", "name")
    yield Case("name-nul.yaml", WORKLOADS[-1].read_text().replace("name: toy-8gpu", 'name: "a\\0b"').encode(),
               "name", "name")
    yield Case("merge-key.yaml", b"d: &d {layers: 1}\nmodel:\n  <<: *d\n  hidden: 8\n", "", "merge")
    for fabric, inter in (("none", "fat-tree"), ("torus", "fat-tree"), ("fat-tree", "fat-tree"),
                          ("nvswitch", "nvswitch"), ("nvswitch", "none")):
        text = WORKLOADS[-1].read_text().replace("  nodes: 1", f"  nodes: 2\n  intra_node: {{fabric: {fabric}}}\n"
                                                                f"  inter_node: {{fabric: {inter}}}")
        yield Case(f"fabric-{fabric}-{inter}.yaml", text.encode(), "fabric", "fabric")


def corpus(n: int, seed: int = 19) -> Iterator[Case]:
    """``n`` mutated files (a quarter byte-level, the rest data-level), then :func:`structural`."""
    rng = random.Random(seed)
    seeds = [(p, "workload") for p in WORKLOADS] * 3 + [(p, "cluster") for p in CLUSTERS] + \
            [(p, "sweep") for p in SWEEPS] * 2
    for i in range(n):
        path, what = rng.choice(seeds)
        if rng.random() < 0.25:
            data, kind = _mutate_text(rng, path.read_bytes())
            yield Case(f"{i:04d}-{what}-{path.stem}-{kind}.yaml", data, "", kind)
        else:
            mutated, key, kind = _mutate_data(rng, _seed_data(path))
            yield Case(f"{i:04d}-{what}-{path.stem}-{kind}.yaml", _dump(mutated), key, kind)
    yield from structural()
