"""Sweep filters: small boolean expressions over a point's dotted keys, evaluated safely.

``parallelism.tensor * parallelism.pipeline <= 8`` keeps the points whose product is at
most 8. The language is a Python expression restricted to: numbers, strings, ``true`` /
``false`` / ``null``, dotted workload keys, ``+ - * / // %``, comparisons (chains allowed),
``in`` / ``not in`` a list or tuple, ``and`` / ``or`` / ``not``, ``a if cond else b`` and
the functions ``min``, ``max``, ``abs``. Nothing is passed to :func:`eval`: the syntax tree
is walked by :func:`_evaluate`, so a filter can read keys and nothing else.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from typing import Any, Callable

#: A filter's length: enough for any condition on a few keys, too short to nest without bound.
MAX_FILTER_CHARS = 1000


def _multiply(a: Any, b: Any) -> Any:
    """``a * b`` for numbers only: ``"x" * 10**9`` would build a gigabyte string."""
    if not all(isinstance(v, (int, float)) for v in (a, b)):
        raise TypeError(f"only numbers can be multiplied, got {type(a).__name__} * {type(b).__name__}")
    return a * b


_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: _multiply,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCTIONS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "abs": abs}
_LITERALS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}


class FilterError(ValueError):
    """A filter that cannot be evaluated at a point (e.g. comparing a string with a number)."""


@dataclass(frozen=True)
class Filter:
    """A compiled filter: its text, syntax tree and the dotted keys it reads."""

    text: str
    tree: ast.Expression
    names: tuple[str, ...]

    def __call__(self, lookup: Callable[[str], Any]) -> bool:
        """Whether the point whose keys ``lookup`` reads passes; raises FilterError."""
        try:
            return bool(_evaluate(self.tree.body, lookup))
        except FilterError:
            raise
        except KeyError as exc:
            raise FilterError(f"{exc.args[0]} has no value at this point") from None
        except (TypeError, ValueError, ZeroDivisionError, ArithmeticError, RecursionError, MemoryError) as exc:
            raise FilterError(f"cannot evaluate {self.text!r}: {exc}") from None


def dotted_name(node: ast.AST) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _check(node: ast.AST, names: list[str]) -> None:
    """Raise ValueError for anything outside the filter language; collect the keys read."""
    if isinstance(node, ast.Expression):
        _check(node.body, names)
    elif isinstance(node, (ast.Name, ast.Attribute)):
        name = dotted_name(node)
        if name is None:
            raise ValueError("only dotted workload keys like parallelism.tensor may be read")
        if name not in _LITERALS and name not in names:
            names.append(name)
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float, str, bool, type(None))):
            raise ValueError(f"unsupported constant {node.value!r}")
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, names)
        _check(node.right, names)
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _check(node.operand, names)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, names)
    elif isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        for child in (node.left, *node.comparators):
            _check(child, names)
    elif isinstance(node, (ast.List, ast.Tuple)):
        for child in node.elts:
            _check(child, names)
    elif isinstance(node, ast.IfExp):
        for child in (node.test, node.body, node.orelse):
            _check(child, names)
    elif isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS) or node.keywords:
            raise ValueError(f"only the functions {', '.join(_FUNCTIONS)} may be called, without keywords")
        for arg in node.args:
            _check(arg, names)
    else:
        raise ValueError(f"unsupported expression {ast.unparse(node)!r} "
                         "(use keys, numbers, strings, arithmetic, comparisons, and/or/not, min/max/abs)")


def compile_filter(text: str) -> Filter:
    """Parse and check a filter; raises ValueError with a one-line reason."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("expected a non-empty expression")
    if len(text) > MAX_FILTER_CHARS:
        raise ValueError(f"{len(text):,} characters; a filter has at most {MAX_FILTER_CHARS:,}")
    names: list[str] = []
    try:
        tree = ast.parse(text.strip(), mode="eval")
        _check(tree, names)
    except SyntaxError as exc:
        raise ValueError(f"not an expression: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ValueError("nested too deeply") from None
    return Filter(text.strip(), tree, tuple(names))


def _evaluate(node: ast.AST, lookup: Callable[[str], Any]) -> Any:
    """The value of a checked expression node."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Name, ast.Attribute)):
        name = dotted_name(node)
        assert name is not None
        return _LITERALS[name] if name in _LITERALS else lookup(name)
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, lookup), _evaluate(node.right, lookup))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, lookup))
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_evaluate(v, lookup) for v in node.values)
        return any(_evaluate(v, lookup) for v in node.values)
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, lookup)
        for op, right_node in zip(node.ops, node.comparators):
            right = _evaluate(right_node, lookup)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.List):
        return [_evaluate(e, lookup) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_evaluate(e, lookup) for e in node.elts)
    if isinstance(node, ast.IfExp):
        return _evaluate(node.body if _evaluate(node.test, lookup) else node.orelse, lookup)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return _FUNCTIONS[node.func.id](*(_evaluate(a, lookup) for a in node.args))
    raise FilterError(f"unsupported expression {ast.unparse(node)!r}")  # unreachable after _check
