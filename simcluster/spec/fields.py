"""Field types shared by the spec models: quantities with units and names from the catalogue.

Names (schedules, fabrics, collective algorithms and ops) are checked against the leaf
:mod:`simcluster.catalogue`, never against the packages that own what they stand for, so
that spec/ imports nothing but the leaf modules.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field

from simcluster import catalogue
from simcluster.units import parse_quantity

#: Every spec model: unknown keys are errors; no silent str -> int or float -> int coercion.
STRICT = ConfigDict(extra="forbid", strict=True, validate_default=False)


def _quantity(kind: str) -> BeforeValidator:
    return BeforeValidator(lambda value: parse_quantity(value, kind))


Bytes = Annotated[float, _quantity("bytes")]
Bandwidth = Annotated[float, _quantity("bandwidth")]
Seconds = Annotated[float, _quantity("time")]
FlopRate = Annotated[float, _quantity("flops_rate")]
PositiveInt = Annotated[int, Field(gt=0)]


def _check_name(kind: str, names: tuple[str, ...], *, in_order: bool = False) -> AfterValidator:
    """A validator: the value is one of ``names``, else the error lists them (sorted unless ``in_order``)."""
    def check(value: str) -> str:
        if value not in names:
            known = names if in_order else sorted(names)
            raise ValueError(f"unknown {kind} {value!r}; known: {', '.join(known)}")
        return value

    return AfterValidator(check)


ScheduleName = Annotated[str, _check_name("schedule", catalogue.SCHEDULES)]
FabricName = Annotated[str, _check_name("fabric", catalogue.FABRICS)]
AlgorithmName = Annotated[str, _check_name("collective algorithm", catalogue.COLLECTIVE_ALGORITHMS)]
OpName = Annotated[str, _check_name("collective", catalogue.COLLECTIVE_OPS, in_order=True)]
