"""Quantities with units: the one place where strings like ``"300 GB/s"`` become SI floats.

Everything inside simcluster is SI: bytes, bytes/s, seconds, FLOP/s. Users may write
numbers (taken as already SI) or strings with a unit:

========== ====================================================================
kind       examples (value in SI)
========== ====================================================================
bytes      ``"80 GiB"`` (80·2^30), ``"80 GB"`` (80e9), ``"25 MB"``, ``"4 Gb"`` (bits: 0.5e9)
bandwidth  ``"300 GB/s"`` (300e9 B/s), ``"200 Gb/s"`` (25e9 B/s: lowercase b = bits), ``"100 Gbps"``
time       ``"2 us"``, ``"2 µs"``, ``"5 ms"``, ``"1.5 s"``, ``"10 ns"``
flops_rate ``"312 TFLOP/s"``, ``"1.2 PFLOP/s"``, ``"312 TFLOPS"``
number     ``"25 M"`` (25e6), ``"1.5e3"``
========== ====================================================================

Decimal prefixes are k (or K) M G T P E; binary prefixes Ki Mi Gi Ti Pi Ei.
"""

from __future__ import annotations

import math
import re

KINDS = ("bytes", "bandwidth", "time", "flops_rate", "number")

_EXAMPLES = {
    "bytes": "a size like '80 GiB'",
    "bandwidth": "a bandwidth like '300 GB/s'",
    "time": "a time like '2 us'",
    "flops_rate": "a compute rate like '312 TFLOP/s'",
    "number": "a number like '25e6' or '25 M'",
}

_NAMES = {
    "bytes": "a size",
    "bandwidth": "a bandwidth",
    "time": "a time",
    "flops_rate": "a compute rate",
    "number": "a plain number",
}

_DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60}
_PREFIXES = {**_DECIMAL, **_BINARY}

# time unit -> (multiplier, divisor); dividing keeps "5 us" exactly 5e-6
_TIME = {
    "s": (1.0, 1.0), "sec": (1.0, 1.0), "secs": (1.0, 1.0), "second": (1.0, 1.0), "seconds": (1.0, 1.0),
    "ms": (1.0, 1e3), "us": (1.0, 1e6), "µs": (1.0, 1e6), "μs": (1.0, 1e6), "ns": (1.0, 1e9),
    "ps": (1.0, 1e12), "min": (60.0, 1.0), "h": (3600.0, 1.0),
}


def _build_table() -> dict[str, tuple[str, float, float]]:
    """Every accepted unit spelling -> (kind, multiplier, divisor) to SI."""
    table: dict[str, tuple[str, float, float]] = {}
    for prefix, factor in _PREFIXES.items():
        table[prefix + "B"] = ("bytes", factor, 1.0)
        table[prefix + "b"] = ("bytes", factor, 8.0)
        table[prefix + "bit"] = ("bytes", factor, 8.0)
        for spelling in ("B/s", "Bps", "byte/s", "bytes/s"):
            table[prefix + spelling] = ("bandwidth", factor, 1.0)
        for spelling in ("b/s", "bps", "bit/s"):
            table[prefix + spelling] = ("bandwidth", factor, 8.0)
        for spelling in ("FLOP/s", "FLOPS", "FLOPs", "flop/s", "flops", "Flop/s", "FLOP/S"):
            table[prefix + spelling] = ("flops_rate", factor, 1.0)
        if prefix:
            table[prefix] = ("number", factor, 1.0)
    for spelling in ("byte", "bytes"):
        table[spelling] = ("bytes", 1.0, 1.0)
    for spelling, (mul, div) in _TIME.items():
        table[spelling] = ("time", mul, div)
    return table


_UNITS = _build_table()
_PATTERN = re.compile(
    r"^\s*(?P<num>[+-]?(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<unit>[A-Za-zµμ/]*)\s*$"
)


def _shown(value: object) -> str:
    """``repr(value)``, shortened to 60 characters for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def describe(kind: str) -> str:
    """A short example of a valid value, for error messages ("a bandwidth like '300 GB/s'")."""
    return _EXAMPLES[kind]


def parse_quantity(value: object, kind: str) -> float:
    """Turn ``value`` (a number, already SI, or a string with a unit) into an SI float.

    ``kind`` is one of ``bytes``, ``bandwidth``, ``time``, ``flops_rate``, ``number``.
    Raises ``ValueError`` naming what was expected and what was given, including a unit
    of the wrong dimension (``"2 us"`` for a bandwidth). Negative values are refused for
    every kind but ``number``; NaN and infinities are always refused.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown quantity kind {kind!r}; known: {', '.join(KINDS)}")
    expected = f"expected {_EXAMPLES[kind]}"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{expected}, got {_shown(value)}")
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match is None:
            raise ValueError(f"{expected}, got {_shown(value)}")
        number = float(match["num"].replace("_", ""))
        unit = match["unit"]
        if unit:
            if unit not in _UNITS:
                raise ValueError(f"{expected}, got {_shown(value)} (unknown unit {unit!r})")
            unit_kind, mul, div = _UNITS[unit]
            if unit_kind != kind:
                raise ValueError(f"{expected}, got {_shown(value)}, which is {_NAMES[unit_kind]}")
            number = number * mul / div
    else:
        number = float(value)
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"{expected}, got {_shown(value)}")
    if number < 0 and kind != "number":
        raise ValueError(f"{expected}, got {_shown(value)}: must not be negative")
    return number


def format_quantity(value: float, kind: str) -> str:
    """A human-readable rendering with a decimal prefix ("300 GB/s"), for summaries and reports."""
    suffix = {"bytes": "B", "bandwidth": "B/s", "time": "s", "flops_rate": "FLOP/s", "number": ""}[kind]
    if kind == "time":
        for unit, factor in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
            if abs(value) >= factor or unit == "ns":
                return f"{value / factor:.4g} {unit}"
    for prefix in ("P", "T", "G", "M", "k", ""):
        factor = _DECIMAL[prefix]
        if abs(value) >= factor or prefix == "":
            return f"{value / factor:.4g} {prefix}{suffix}".rstrip()
    raise AssertionError("unreachable")
