"""Field types shared by the spec models: quantities with units and names from registries.

Registries are imported when a value is checked, not when this module is imported, so
that the packages owning them may import ``simcluster.spec`` without an import cycle.
"""

from __future__ import annotations

import importlib
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field

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

_REGISTRIES = {
    "schedule": ("simcluster.lowering.schedules", "SCHEDULES"),
    "fabric": ("simcluster.topology.fabrics", "FABRICS"),
    "algorithm": ("simcluster.collectives.algorithms", "ALGORITHMS"),
    "device": ("simcluster.topology.devices", "DEVICES"),
}


def registry(kind: str):
    """The registry for ``kind`` (schedule, fabric, algorithm, device), imported on first use."""
    module, name = _REGISTRIES[kind]
    return getattr(importlib.import_module(module), name)


def registry_names(kind: str) -> list[str]:
    """Known names in the ``kind`` registry."""
    return registry(kind).names()


def _check_name(kind: str):
    def check(value: str) -> str:
        reg = registry(kind)
        if value not in reg:
            raise ValueError(f"unknown {reg.kind} {value!r}; known: {', '.join(reg.names())}")
        return value

    return AfterValidator(check)


ScheduleName = Annotated[str, _check_name("schedule")]
FabricName = Annotated[str, _check_name("fabric")]
AlgorithmName = Annotated[str, _check_name("algorithm")]
