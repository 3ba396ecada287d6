"""Unit parsing: every accepted spelling, SI numbers, and clear errors."""

import pytest

from simcluster.units import describe, format_quantity, parse_quantity


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("300 GB/s", "bandwidth", 300e9),
        ("200 Gb/s", "bandwidth", 25e9),
        ("100 Gbps", "bandwidth", 12.5e9),
        ("900GB/s", "bandwidth", 900e9),
        ("2 TB/s", "bandwidth", 2e12),
        ("1 GiB/s", "bandwidth", 2**30),
        ("2 us", "time", 2e-6),
        ("2 µs", "time", 2e-6),
        ("2 μs", "time", 2e-6),
        ("5 ms", "time", 5e-3),
        ("1.5 s", "time", 1.5),
        ("10 ns", "time", 10e-9),
        ("5 us", "time", 5e-6),
        ("80 GiB", "bytes", 80 * 2**30),
        ("80 GB", "bytes", 80e9),
        ("25 MB", "bytes", 25e6),
        ("4 KiB", "bytes", 4096),
        ("1 TiB", "bytes", 2**40),
        ("8 Gb", "bytes", 1e9),
        ("2 kB", "bytes", 2000),
        ("312 TFLOP/s", "flops_rate", 312e12),
        ("1.2 PFLOP/s", "flops_rate", 1.2e15),
        ("312 TFLOPS", "flops_rate", 312e12),
        ("19.5 TFLOP/s", "flops_rate", 19.5e12),
        ("25 M", "number", 25e6),
        ("1.5e3", "number", 1500),
        ("3e9", "bandwidth", 3e9),
        ("  7 ms  ", "time", 7e-3),
    ],
)
def test_strings(text, kind, expected):
    assert parse_quantity(text, kind) == pytest.approx(expected, rel=1e-15)


def test_exact_decimal_values():
    assert parse_quantity("5 us", "time") == 5e-6
    assert parse_quantity("200 Gb/s", "bandwidth") == 25e9
    assert parse_quantity("1.5 ms", "time") == 1.5e-3


@pytest.mark.parametrize("kind", ["bytes", "bandwidth", "time", "flops_rate", "number"])
def test_numbers_are_si(kind):
    assert parse_quantity(3, kind) == 3.0
    assert parse_quantity(2.5e-6, kind) == 2.5e-6
    assert isinstance(parse_quantity(3, kind), float)


def test_not_a_quantity():
    with pytest.raises(ValueError, match=r"expected a bandwidth like '300 GB/s', got 'fast'"):
        parse_quantity("fast", "bandwidth")


@pytest.mark.parametrize(
    ("text", "kind", "what"),
    [
        ("2 us", "bandwidth", "a time"),
        ("300 GB/s", "time", "a bandwidth"),
        ("80 GiB", "bandwidth", "a size"),
        ("300 GB/s", "bytes", "a bandwidth"),
        ("312 TFLOP/s", "bandwidth", "a compute rate"),
        ("25 M", "bytes", "a plain number"),
    ],
)
def test_wrong_dimension(text, kind, what):
    with pytest.raises(ValueError, match=f"got '{text}', which is {what}"):
        parse_quantity(text, kind)


@pytest.mark.parametrize("value", ["3 XB", "GB/s", "", "1 2 GB", "1.2.3 GB", [1], None, True, {"a": 1}])
def test_rejected(value):
    with pytest.raises(ValueError, match="expected a bandwidth"):
        parse_quantity(value, "bandwidth")


def test_unknown_unit_named():
    with pytest.raises(ValueError, match="unknown unit 'XB'"):
        parse_quantity("3 XB", "bytes")


@pytest.mark.parametrize("value", [-1, "-2 us", float("nan"), float("inf")])
def test_negative_and_non_finite(value):
    with pytest.raises(ValueError):
        parse_quantity(value, "time")


def test_negative_plain_number_allowed():
    assert parse_quantity("-3", "number") == -3.0


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown quantity kind"):
        parse_quantity(1, "speed")


def test_describe_and_format():
    assert "300 GB/s" in describe("bandwidth")
    assert format_quantity(300e9, "bandwidth") == "300 GB/s"
    assert format_quantity(2e-6, "time") == "2 us"
    assert format_quantity(312e12, "flops_rate") == "312 TFLOP/s"
    assert format_quantity(5, "number") == "5"
