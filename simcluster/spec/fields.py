"""Field types shared by the spec models: quantities with units and names from the catalogue.

Names (schedules, fabrics, collective algorithms and ops) are checked against the leaf
:mod:`simcluster.catalogue`, never against the packages that own what they stand for, so
that spec/ imports nothing but the leaf modules.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, GetCoreSchemaHandler
from pydantic_core import core_schema

from simcluster import catalogue
from simcluster.units import format_quantity, parse_quantity

#: Every spec model: unknown keys are errors; no silent str -> int or float -> int coercion.
STRICT = ConfigDict(extra="forbid", strict=True, validate_default=False)


def _quantity(kind: str) -> BeforeValidator:
    return BeforeValidator(lambda value: parse_quantity(value, kind))


_BYTES, _BANDWIDTH, _TIME, _FLOPS = (_quantity(k) for k in ("bytes", "bandwidth", "time", "flops_rate"))
Bytes = Annotated[float, _BYTES]
Bandwidth = Annotated[float, _BANDWIDTH]
Seconds = Annotated[float, _TIME]
FlopRate = Annotated[float, _FLOPS]
PositiveInt = Annotated[int, Field(gt=0)]


@dataclass(frozen=True)
class Range:
    """The values a number may take, ``low`` to ``high`` inclusive (and 0 when ``zero`` says what
    0 means). As metadata of an ``Annotated`` type it validates (pydantic) and is printed in the
    key reference (:mod:`simcluster.spec.reference`). ``kind`` is a :data:`simcluster.units.KINDS`
    entry, for the messages."""

    low: float
    high: float
    kind: str = "number"
    zero: str = ""

    def show(self, value: float) -> str:
        """``value`` with its unit (``"100 TB/s"``)."""
        return "0" if value == 0 else format_quantity(value, self.kind)

    def describe(self) -> str:
        """``"1 MB/s to 100 TB/s, or 0 (not given)"``."""
        text = f"{self.show(self.low)} to {self.show(self.high)}"
        return text + (f", or 0 ({self.zero})" if self.zero else "")

    def check(self, value: float) -> float:
        """``value`` when in range; raises ValueError saying the range."""
        if value == 0 and self.zero:
            return value
        if not (math.isfinite(value) and self.low <= value <= self.high):
            raise ValueError(f"must be {self.describe()}, got {self.show(value) if math.isfinite(value) else value}")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))


#: Bounds on a whole cluster: what a topology may hold and still be built in seconds and a few GB.
MAX_DEVICES = 262_144
#: Bandwidth of any link, NIC, fabric or memory: 1 MB/s to 100 TB/s.
BANDWIDTH = Range(1e6, 1e14, "bandwidth")
LinkBandwidth = Annotated[float, _BANDWIDTH, BANDWIDTH]
#: The same, 0 meaning "not given" (a fabric that is not used).
MaybeBandwidth = Annotated[float, _BANDWIDTH, Range(1e6, 1e14, "bandwidth", zero="not given")]
#: A link's or fabric's latency: 0 to 1 s.
Latency = Annotated[float, _TIME, Range(0.0, 1.0, "time")]
StepSeconds = Annotated[float, _TIME, Range(0.0, 3600.0, "time")]
#: A device's peak compute rate: 1 GFLOP/s to 1 EFLOP/s.
PeakRate = Annotated[float, _FLOPS, Range(1e9, 1e18, "flops_rate")]
#: A device's memory: 1 MB to 1 PB.
Capacity = Annotated[float, _BYTES, Range(1e6, 1e15, "bytes")]
#: A communication bucket: 1 kB to 1 TB.
BucketBytes = Annotated[float, _BYTES, Range(1e3, 1e12, "bytes")]


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


_FILE_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
FILE_NAME_RULE = "a file name: 1 to 100 letters, digits, '.', '-' or '_', not '.' or '..'"


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot name a file in an output folder, or None when it can."""
    if not _FILE_NAME.fullmatch(value) or value in (".", ".."):
        shown = value if len(value) <= 60 else value[:59] + "…"
        return f"must be {FILE_NAME_RULE}, got {shown!r}"
    return None


def _check_file_name(value: str) -> str:
    problem = name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def as_file_name(text: str) -> str:
    """``text`` made into a valid name (a default taken from a file's stem): runs of other
    characters become ``-``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:100]
    return name if name and name not in (".", "..") else "run"


#: A name that becomes a file or folder name (a run's, a sweep's, an export's prefix).
FILE_NAME_CHECK = AfterValidator(_check_file_name)
FileName = Annotated[str, FILE_NAME_CHECK]
