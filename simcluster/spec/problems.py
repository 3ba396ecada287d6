"""Turn pydantic validation errors into one-line :class:`~simcluster.errors.Problem` s.

A *locator* maps a dotted key (relative to the validated mapping) to the file, line and
key to print; that is how problems in a preset name the preset file and problems in
values that came from ``--set`` name ``--set``.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from simcluster.errors import Problem
from simcluster.spec.overrides import SET_FILE
from simcluster.spec.yamlio import YamlDoc


@dataclass
class Locator:
    """Where the keys of one mapping were written: a YAML file, possibly changed by ``--set``.

    ``prefix`` is prepended to keys (``"cluster"`` for the workload's cluster section);
    ``set_keys`` are the dotted keys (with prefix) that ``--set`` wrote.
    """

    doc: YamlDoc | None
    prefix: str = ""
    set_keys: list[str] = field(default_factory=list)
    file: str = "<inline>"

    def __post_init__(self) -> None:
        if self.doc is not None:
            self.file = self.doc.file

    def full_key(self, key: str) -> str:
        return ".".join(p for p in (self.prefix, key) if p)

    def from_set(self, key: str) -> bool:
        """Whether the value at ``key`` (full dotted key) came from ``--set``."""
        for s in self.set_keys:
            if key == s or key.startswith(s + "."):
                return True
            if s.startswith(key + ".") and (self.doc is None or key not in self.doc.lines):
                return True
        return False

    def __call__(self, key: str) -> tuple[str, int | None, str]:
        full = self.full_key(key)
        if self.from_set(full):
            return SET_FILE, None, full
        line = self.doc.line_of(full) if self.doc is not None else None
        return self.file, line, full


def field_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``annotation`` (unwrapping Optional / Annotated), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = field_model(arg)
            if found is not None:
                return found
    return None


def known_keys(model: type[BaseModel], path: tuple[str, ...]) -> list[str] | None:
    """The keys a user may write in the section at ``path`` under ``model``.

    A model may name a sub-model for a field that is not itself a model (e.g. a device
    given as a mapping) in a ``user_sections`` class attribute.
    """
    current: type[BaseModel] | None = model
    for part in path:
        if current is None:
            return None
        hints = getattr(current, "user_sections", {})
        if part in hints:
            current = hints[part]
            continue
        info = current.model_fields.get(part)
        current = field_model(info.annotation) if info is not None else None
    if current is None:
        return None
    hidden = getattr(current, "hidden_keys", ())
    extra = list(getattr(current, "extra_keys", ()))
    return sorted([k for k in current.model_fields if k not in hidden] + extra)


def _reason(error: ErrorDetails, known: list[str] | None) -> str:
    kind, msg, value = error["type"], error["msg"], error.get("input")
    if kind == "extra_forbidden":
        return "unknown key" + (f"; known keys: {', '.join(known)}" if known else "")
    if kind == "missing":
        return "required key is missing"
    if kind.startswith("value_error") or kind == "assertion_error":
        return msg.split(", ", 1)[1] if msg.startswith(("Value error, ", "Assertion failed, ")) else msg
    plain = {
        "int_type": "expected an integer", "int_parsing": "expected an integer",
        "int_from_float": "expected an integer", "float_type": "expected a number",
        "float_parsing": "expected a number", "bool_type": "expected true or false",
        "bool_parsing": "expected true or false", "string_type": "expected a string",
        "list_type": "expected a list", "dict_type": "expected a section of keys",
        "model_type": "expected a section of keys", "model_attributes_type": "expected a section of keys",
    }
    if kind in plain:
        reason = plain[kind]
    elif kind == "literal_error":
        reason = f"expected {error.get('ctx', {}).get('expected', 'one of the allowed values')}"
    else:
        reason = msg[:1].lower() + msg[1:]
        reason = reason.replace("input should be", "must be")
    if not isinstance(value, (dict, list)):
        shown = repr(value)
        reason += f", got {shown if len(shown) <= 80 else shown[:79] + '…'}"
    return reason


def problems_from_error(
    err: ValidationError,
    model: type[BaseModel],
    locate: Callable[[str], tuple[str, int | None, str]],
    skip: Callable[[str], bool] = lambda key: False,
    known: Callable[[tuple[str, ...]], list[str] | None] | None = None,
) -> list[Problem]:
    """One Problem per pydantic error, located by ``locate``.

    Keys for which ``skip`` is true are dropped. ``known(path)`` lists the keys allowed
    in the section holding the unknown key at ``path`` (default: read from ``model``).
    """
    known = known or (lambda path: known_keys(model, path[:-1]))
    problems: list[Problem] = []
    seen: set[Problem] = set()
    for error in err.errors():
        loc = tuple(str(p) for p in error["loc"] if p != "[key]")
        key = ".".join(loc)
        if skip(key):
            continue
        allowed = known(loc) if error["type"] == "extra_forbidden" else None
        file, line, shown = locate(key)
        problem = Problem(file, line, shown, _reason(error, allowed))
        if problem not in seen:
            seen.add(problem)
            problems.append(problem)
    return problems
