"""The house rules of docs/architecture.md, checked on the source with ``ast``.

Imports are read from the syntax tree (``import x``, ``from x import y``, relative imports
resolved against the module's package), so comments, strings and docstrings never count.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "simcluster"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 500


@dataclass(frozen=True)
class Import:
    """One imported module name (absolute, dotted), where it was imported, and how."""

    module: str
    lineno: int
    in_function: bool  # inside a def (runs only when called)
    type_only: bool  # inside ``if TYPE_CHECKING:`` (never runs)


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, source: str | None = None) -> list[Import]:
    """Every module ``path`` (or ``source`` as if it were at ``path``) imports.

    ``from a import b`` yields both ``a`` and ``a.b`` (b may be a submodule).
    """
    text = source if source is not None else path.read_text(encoding="utf-8")
    tree = ast.parse(text, filename=str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool, type_only: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(alias.name, node.lineno, in_function, type_only))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            found.append(Import(base_name, node.lineno, in_function, type_only))
            for alias in node.names:
                if alias.name != "*":
                    found.append(Import(f"{base_name}.{alias.name}", node.lineno, in_function, type_only))
        elif isinstance(node, (ast.Call,)) and _dynamic_import(node) is not None:
            found.append(Import(_dynamic_import(node), node.lineno, in_function, type_only))
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, in_function, True)
            for child in node.orelse:
                visit(child, in_function, type_only)
            return
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner, type_only)

    visit(tree, False, False)
    return found


def _dynamic_import(call: ast.Call) -> str | None:
    """``importlib.import_module("x")`` / ``__import__("x")`` with a literal name."""
    func = call.func
    named = (isinstance(func, ast.Name) and func.id in ("__import__", "import_module")) or (
        isinstance(func, ast.Attribute) and func.attr == "import_module")
    if named and call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


IMPORTS = {path: imports_of(path) for path in MODULES}


def _under(path: Path, package: str) -> bool:
    return path.relative_to(PACKAGE).parts[0] == package


def _matches(module: str, target: str) -> bool:
    return module == target or module.startswith(target + ".")


def violations(owner: str | None, target: str, *, module_level_only: bool = False,
               files: list[Path] | None = None) -> list[str]:
    """Imports of ``target`` from files outside package ``owner`` (or from ``files``)."""
    bad = []
    for path in files if files is not None else MODULES:
        if owner is not None and _under(path, owner):
            continue
        for imp in IMPORTS[path]:
            if module_level_only and (imp.in_function or imp.type_only):
                continue
            if _matches(imp.module, target):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{imp.lineno} imports {imp.module}")
    return sorted(set(bad))


def files_in(package: str) -> list[Path]:
    return [p for p in MODULES if _under(p, package)]


def test_the_scanner_sees_the_package():
    assert len(MODULES) > 20
    # sanity: the scanner finds the imports the rules are about, where they are allowed
    assert violations(None, "simpy", files=files_in("engine"))
    assert violations(None, "yaml", files=files_in("spec"))
    assert violations(None, "matplotlib", files=files_in("reporting"))


def test_scanner_resolves_relative_imports():
    source = ("from ..lowering import lower\nfrom . import devices\n"
              "if TYPE_CHECKING:\n    from simcluster.spec import x\ndef f():\n    import simpy\n")
    found = imports_of(PACKAGE / "topology" / "probe.py", source)  # never written to disk
    assert ("simcluster.spec", False) in {(i.module, i.in_function) for i in found if i.type_only}
    modules = {(i.module, i.in_function) for i in found}
    assert ("simcluster.lowering", False) in modules
    assert ("simcluster.lowering.lower", False) in modules
    assert ("simcluster.topology.devices", False) in modules
    assert ("simpy", True) in modules


@pytest.mark.parametrize("library, owner", [("simpy", "engine"), ("matplotlib", "reporting"), ("yaml", "spec")])
def test_only_one_package_imports(library, owner):
    bad = violations(owner, library)
    assert not bad, f"only simcluster/{owner}/ may import {library}:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_no_module_over_500_lines(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE.parent)} has {lines} lines (max {MAX_LINES})"


@pytest.mark.parametrize("package, forbidden, module_level_only", [
    ("workload", ("topology", "lowering", "engine", "costs"), False),
    # topology may import these inside a function or under `if TYPE_CHECKING:` (neither runs at import)
    ("topology", ("lowering", "engine", "metrics", "reporting", "spec"), True),
    ("engine", ("reporting", "metrics"), False),
])
def test_imports_go_one_way(package, forbidden, module_level_only):
    bad = []
    for target in forbidden:
        bad += violations(None, f"simcluster.{target}", module_level_only=module_level_only,
                          files=files_in(package))
    where = " at module level" if module_level_only else ""
    assert not bad, f"simcluster/{package}/ must not import {', '.join(forbidden)}{where}:\n" + "\n".join(bad)
