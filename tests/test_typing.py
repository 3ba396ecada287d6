"""mypy on the packages declared type-clean: ``files`` of ``[tool.mypy]`` in pyproject.toml.

The list of checked packages lives there alone (add a package once it passes); the settings
(strict, networkx without stubs) too. tests/typing_interfaces.py is checked with them: the
spec models and the topology against the Protocols of the packages that receive them.
Cold (no ``.mypy_cache/``), mypy takes ~10 s on two cores for the 69 files declared now, and the
interpreter spends about as long again freeing mypy's objects when the session ends; with the
cache the test takes about 1 s.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
INTERFACES = Path(__file__).resolve().parent / "typing_interfaces.py"


def checked_files() -> list[str]:
    """The paths mypy checks: ``[tool.mypy] files`` of pyproject.toml."""
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    return list(config["tool"]["mypy"]["files"])


def test_the_declared_packages_are_type_clean(monkeypatch):
    api = pytest.importorskip("mypy.api", reason="mypy is not installed (pip install -e '.[test]')")
    files = checked_files()
    assert files and all((ROOT / f).exists() for f in files), files
    monkeypatch.chdir(ROOT)  # `files` and the cache are relative to the repository root
    stdout, stderr, status = api.run(["--config-file", str(PYPROJECT), *files,
                                      str(INTERFACES.relative_to(ROOT))])
    assert status == 0, f"mypy found errors (run `mypy` in the repository root):\n{stdout}{stderr}"
