"""YAML reading that remembers where every key was written (the only YAML reader in simcluster).

``load_yaml(path)`` returns a :class:`YamlDoc`: the plain data plus the 1-based line of
every dotted key (``"parallelism.tensor" -> 14``; list items as ``"parallelism.stage_layers.2"``).
Missing files, YAML syntax errors, duplicate keys and a top level that is not a mapping
become :class:`~simcluster.errors.Problem` s inside a :class:`~simcluster.errors.SpecError`.
"""

from __future__ import annotations

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


def _walk(node: yaml.Node, prefix: str, lines: dict[str, int], problems: list[Problem], file: str) -> None:
    """Record the line of every key under ``node``; flag keys written twice in one mapping."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            dotted = f"{prefix}.{key}" if prefix else key
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(Problem(file, line, dotted, "key written twice"))
            seen.add(key)
            lines[dotted] = line
            _walk(value_node, dotted, lines, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            dotted = f"{prefix}.{index}"
            lines[dotted] = item.start_mark.line + 1
            _walk(item, dotted, lines, problems, file)


def parse_yaml_text(text: str, file: str) -> YamlDoc:
    """Parse YAML ``text`` (reported as ``file``) into a :class:`YamlDoc`; raises SpecError."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise SpecError([Problem(file, line, "", f"YAML syntax error: {reason}")]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(file, None, "", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        line = node.start_mark.line + 1 if node is not None else None
        raise SpecError([Problem(file, line, "", f"expected a mapping of keys at the top level, got {type(data).__name__}")])
    lines: dict[str, int] = {}
    problems: list[Problem] = []
    if node is not None:
        _walk(node, "", lines, problems, file)
    if problems:
        raise SpecError(problems)
    return YamlDoc({str(k): v for k, v in data.items()}, file, lines)


def load_yaml(path: str | Path) -> YamlDoc:
    """Read and parse the YAML file at ``path``; raises SpecError naming the file."""
    file = str(path)
    p = Path(path)
    if not p.exists():
        raise SpecError([Problem(file, None, "", "file not found")])
    if not p.is_file():
        raise SpecError([Problem(file, None, "", "not a file")])
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(file, None, "", f"cannot read file: {exc}")]) from None
    return parse_yaml_text(text, file)


def parse_scalar(text: str) -> Any:
    """Parse a ``--set`` value the way YAML would (``4`` -> int, ``full`` -> str, ``[4, 4]`` -> list).

    Raises ValueError when the text is not valid YAML.
    """
    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValueError(f"cannot read value {text!r}: {problem}") from None
