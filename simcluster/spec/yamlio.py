"""YAML reading that remembers where every key was written (the only YAML reader in simcluster).

``load_yaml(path)`` returns a :class:`YamlDoc`: the plain data plus the 1-based line of
every dotted key (``"parallelism.tensor" -> 14``; list items as ``"parallelism.stage_layers.2"``).
Missing files, YAML syntax errors, duplicate keys and a top level that is not a mapping
become :class:`~simcluster.errors.Problem` s inside a :class:`~simcluster.errors.SpecError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simcluster.errors import Problem, SpecError


@dataclass
class YamlDoc:
    """A parsed YAML mapping with the line of each dotted key."""

    data: dict[str, Any]
    file: str
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, key: str) -> int | None:
        """Line of ``key``, or of its closest written parent (``a.b.c`` -> ``a.b`` -> ``a``)."""
        parts = key.split(".") if key else []
        while parts:
            line = self.lines.get(".".join(parts))
            if line is not None:
                return line
            parts.pop()
        return None


#: Bounds on what a YAML file may make the reader do (a user's file is a few kilobytes; an explicit
#: cluster graph a few megabytes at most).
MAX_FILE_BYTES = 16 * 2**20
MAX_DEPTH = 64  # nesting of mappings and lists, aliases followed
MAX_VALUES = 500_000  # values in the document with every alias expanded (an "alias bomb" has billions)
MAX_LITERAL_CHARS = 64  # an integer written with more digits is out of every key's range
_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")


class _Refused(yaml.MarkedYAMLError):
    """A value the reader refuses (too deep, too long, unreadable as its tag): printed as is."""


class _Loader(yaml.SafeLoader):
    """SafeLoader with bounded nesting, bounded integer literals, and every failure of a
    constructor (``!!int four``) raised as a YAML error at the value's line."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _Refused(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(node.value)
        if len(text.replace("_", "")) > MAX_LITERAL_CHARS:
            raise _Refused(
                None, None, f"an integer of {len(text)} digits is too large for any key", node.start_mark)
        return super().construct_yaml_int(node)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
            shown = str(node.value) if isinstance(node, yaml.ScalarNode) else node.tag
            raise _Refused(
                None, None, f"cannot read {_short(shown)!r} as {node.tag.rsplit(':', 1)[-1]} ({_short(str(exc))})",
                node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


class _Walk:
    """Records the line of every key; flags keys written twice, self-referencing aliases, and
    documents that nest too deeply or expand to too many values once aliases are followed."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[str, int] = {}
        self.problems: list[Problem] = []
        self.values = 0
        self.path: set[int] = set()

    def fail(self, node: yaml.Node, prefix: str, reason: str) -> SpecError:
        return SpecError([Problem(self.file, node.start_mark.line + 1, prefix, reason)])

    def __call__(self, node: yaml.Node, prefix: str, depth: int = 0) -> None:
        self.values += 1
        if self.values > MAX_VALUES:
            raise self.fail(node, prefix, f"more than {MAX_VALUES:,} values once its aliases are expanded "
                                          "(aliases nested in aliases?)")
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            return
        if id(node) in self.path:
            raise self.fail(node, prefix, "an alias refers to the value that contains it")
        if depth >= MAX_DEPTH:
            raise self.fail(node, prefix, f"nested more than {MAX_DEPTH} levels deep (aliases followed)")
        self.path.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                dotted = f"{prefix}.{key}" if prefix else key
                line = key_node.start_mark.line + 1
                if key in seen:
                    self.problems.append(Problem(self.file, line, dotted, "key written twice"))
                seen.add(key)
                self.lines[dotted] = line
                self(key_node, dotted, depth + 1)
                self(value_node, dotted, depth + 1)
        else:
            for index, item in enumerate(node.value):
                dotted = f"{prefix}.{index}"
                self.lines[dotted] = item.start_mark.line + 1
                self(item, dotted, depth + 1)
        self.path.discard(id(node))


def _check_text(text: str, file: str) -> None:
    """Refuse characters YAML does not allow (control bytes: most likely not a text file)."""
    bad = _NON_PRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise SpecError([Problem(file, line, "", f"control character U+{ord(bad.group()):04X} at column {column}: "
                                                 "not a YAML text file")])


def _parse(text: str, file: str) -> tuple[yaml.Node | None, Any, dict[str, int]]:
    """The node graph of ``text``, the data built from it and the line of every dotted key.

    Raises SpecError for what :class:`_Walk` refuses, yaml.YAMLError for the rest.
    """
    _check_text(text, file)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        walk = _Walk(file)
        if node is not None:
            walk(node, "")
        if walk.problems:
            raise SpecError(walk.problems)
        return node, (loader.construct_document(node) if node is not None else None), walk.lines
    finally:
        loader.dispose()


def _compose(text: str, file: str) -> tuple[yaml.Node | None, Any, dict[str, int]]:
    """:func:`_parse` with every failure as a SpecError (the line where known)."""
    try:
        return _parse(text, file)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        reason = reason if isinstance(exc, _Refused) else f"YAML syntax error: {reason}"
        raise SpecError([Problem(file, line, "", reason)]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(file, None, "", f"YAML error: {exc}")]) from None
    except RecursionError:  # a guard above failed to bound something: still bad input, not a crash
        raise SpecError([Problem(file, None, "", "nested too deeply")]) from None


def parse_yaml_text(text: str, file: str) -> YamlDoc:
    """Parse YAML ``text`` (reported as ``file``) into a :class:`YamlDoc`; raises SpecError."""
    node, data, lines = _compose(text, file)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        line = node.start_mark.line + 1 if node is not None else None
        raise SpecError([Problem(file, line, "", f"expected a mapping of keys at the top level, got {type(data).__name__}")])
    return YamlDoc({str(k): v for k, v in data.items()}, file, lines)


def is_file(path: str | Path) -> bool:
    """Whether ``path`` is a file; False (not an exception) for a name too long or with a NUL."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def _line_at(data: bytes, pos: int) -> int:
    return data.count(b"\n", 0, pos) + 1


def load_yaml(path: str | Path) -> YamlDoc:
    """Read and parse the YAML file at ``path``; raises SpecError naming the file.

    Refused with the line where known: a file over :data:`MAX_FILE_BYTES`, bytes that are
    not UTF-8, control characters, nesting deeper than :data:`MAX_DEPTH`, aliases that
    refer to themselves or expand past :data:`MAX_VALUES` values, unreadable tagged values.
    """
    file = str(path)
    p = Path(path)
    try:
        if not p.exists():
            raise SpecError([Problem(file, None, "", "file not found")])
        if not p.is_file():
            raise SpecError([Problem(file, None, "", "not a file")])
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError([Problem(file, None, "", f"{size:,} bytes: larger than any workload, cluster or "
                                                     f"sweep file should be (at most {MAX_FILE_BYTES:,})")])
        raw = p.read_bytes()
    except (OSError, ValueError) as exc:  # ValueError: a path with a NUL byte
        raise SpecError([Problem(file, None, "", f"cannot read file: {exc}")]) from None
    if b"\0" in raw:
        raise SpecError([Problem(file, _line_at(raw, raw.index(b"\0")), "", "NUL byte: a binary file, not YAML text")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError([Problem(file, _line_at(raw, exc.start), "",
                                 f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})")]) from None
    return parse_yaml_text(text, file)


def parse_scalar(text: str) -> Any:
    """Parse a ``--set`` value the way YAML would (``4`` -> int, ``full`` -> str, ``[4, 4]`` -> list).

    Raises ValueError when the text is not valid YAML.
    """
    if not text.strip():
        return None
    try:
        return _parse(text, "--set")[1]
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
    except SpecError as exc:
        problem = exc.problems[0].reason
    except RecursionError:
        problem = "nested too deeply"
    raise ValueError(f"cannot read value {_short(text)!r}: {problem}")
