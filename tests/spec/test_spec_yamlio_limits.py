"""Issue 19: the YAML reader bounds what a file can make it do, and reports it with the line."""

from __future__ import annotations

import time

import pytest

from simcluster.errors import SpecError
from simcluster.spec.yamlio import MAX_FILE_BYTES, is_file, load_yaml, parse_scalar


def _problem(tmp_path, data: bytes):
    path = tmp_path / "f.yaml"
    path.write_bytes(data)
    with pytest.raises(SpecError) as exc:
        load_yaml(path)
    return exc.value.problems[0]


@pytest.mark.parametrize("data, line, words", [
    (b"a: 1\nmodel:\0\n", 2, "NUL byte"),
    (b"a: 1\nname: caf\xe9\n", 2, "not UTF-8"),
    (b"a: 1\nname: a\x07b\n", 2, "control character U+0007 at column 8"),
    (b"model: " + b"[" * 100 + b"]" * 100, 1, "nested more than 64 levels"),
    (b"a:\n  b: " + b"9" * 70 + b"\n", 2, "70 digits"),
    (b"a: !!int four\n", 1, "cannot read 'four' as int"),
    (b"a: !!bool maybe\n", 1, "as bool"),
    (b"a: !!python/object:os.system {}\n", 1, "could not determine a constructor"),
    (b"model: &a [*a]\n", 1, "refers to the value that contains it"),
    (b"model: &a {x: {y: *a}}\n", 1, "refers to the value that contains it"),
])
def test_refused_with_line(tmp_path, data, line, words):
    problem = _problem(tmp_path, data)
    assert problem.line == line and words in problem.reason, problem


def test_alias_bomb_is_bounded(tmp_path):
    rows = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    rows += [f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]" for p, c in zip("abcdefgh", "bcdefghi")]
    start = time.perf_counter()
    problem = _problem(tmp_path, ("\n".join(rows) + "\nmodel: *i\n").encode())
    assert "aliases are expanded" in problem.reason
    assert time.perf_counter() - start < 3


def test_file_too_large(tmp_path):
    path = tmp_path / "big.yaml"
    with open(path, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(SpecError, match="larger than any"):
        load_yaml(path)


def test_ordinary_aliases_and_bom_still_work(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_bytes(b"\xef\xbb\xbfdev: &d {memory: 1}\nx: *d\ny:\n  <<: *d\n  z: 2\n")
    doc = load_yaml(path)
    assert doc.data["x"] == {"memory": 1} and doc.data["y"] == {"memory": 1, "z": 2}
    assert doc.lines["y.z"] == 5


def test_set_values_are_read_by_the_same_reader():
    assert parse_scalar("[4, 4]") == [4, 4]
    for text, words in (("&a [*a]", "refers to"), ("!!int four", "as int"), ("[" * 100, "nested")):
        with pytest.raises(ValueError, match=words):
            parse_scalar(text)


def test_is_file_never_raises(tmp_path):
    assert not is_file(tmp_path / ("a" * 5000)) and not is_file(f"{tmp_path}/a\0b") and not is_file(tmp_path)
