"""Grid expansion: the cartesian product of the grid keys and the zip groups, then the filters.

Axes come in file order: each grid key is one axis, each zip group one axis whose values
vary together. The product is taken like :func:`itertools.product` (the last axis varies
fastest); points that fail any filter are dropped, and the rest are numbered 0, 1, ... in
that order, which is the row order of ``results.csv``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from simcluster.errors import Problem, SpecError
from simcluster.spec.filters import FilterError


@dataclass(frozen=True)
class Axis:
    """One dimension of the sweep: one key (grid) or several varying together (zip)."""

    keys: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]  # one tuple per step, aligned with ``keys``


def axes(sweep: Any) -> list[Axis]:
    """The sweep's axes in file order (``sweep`` is a :class:`simcluster.spec.sweep.Sweep`)."""
    out = [Axis((key,), tuple((v,) for v in values)) for key, values in sweep.spec.grid.items()]
    for group in sweep.spec.zip:
        keys = tuple(group)
        out.append(Axis(keys, tuple(zip(*(group[k] for k in keys)))))
    return out


def product_size(sweep: Any) -> int:
    """Points before filtering."""
    n = 1
    for axis in axes(sweep):
        n *= len(axis.values)
    return n


def expand(sweep: Any) -> list[dict[str, Any]]:
    """Every kept point as ``{dotted key: value}`` (keys in :attr:`Sweep.keys` order).

    A filter that cannot be evaluated at some point (e.g. ``"full" < 3``) is bad input:
    raises SpecError naming the filter's line.
    """
    dims = axes(sweep)
    points: list[dict[str, Any]] = []
    for combo in itertools.product(*(axis.values for axis in dims)):
        values: dict[str, Any] = {}
        for axis, step in zip(dims, combo):
            values.update(zip(axis.keys, step))
        if _keep(sweep, values):
            points.append(values)
    return points


def _keep(sweep: Any, values: dict[str, Any]) -> bool:
    for i, flt in enumerate(sweep.filters):
        try:
            if not flt(lambda key: sweep.lookup(key, values)):
                return False
        except FilterError as exc:
            at = ", ".join(f"{k}={v!r}" for k, v in values.items())
            raise SpecError([Problem(sweep.file, sweep.line_of(f"filters.{i}"), f"filters.{i}",
                                     f"{exc} (at {at})")]) from None
    return True
