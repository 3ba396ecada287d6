"""The house rules of docs/architecture.md, checked on the source with ``ast``.

Imports are read from the syntax tree (``import x``, ``from x import y``, relative imports
resolved against the module's package, ``importlib.import_module("x")`` / ``__import__("x")``,
an f-string's constant prefix ``f"simcluster.commands.{name}"``), so comments, strings and
docstrings never count. The allowed edges between packages are the table of tests/layering.py.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from layering import ALLOWED, LAZY, allowed, cycles, part_of

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


DYNAMIC = "<dynamic>"  # an import whose module name the scanner cannot read
BY_PATH = "<by path>"  # code loaded from a file path (importlib.util.spec_from_file_location, runpy, ...)
_PATH_LOADERS = ("spec_from_file_location", "SourceFileLoader", "run_path", "load_source")


def _dynamic_import(call: ast.Call) -> str | None:
    """The module a call imports: ``importlib.import_module("x")`` / ``__import__("x")`` -> ``x``;
    ``import_module(f"a.b.{name}")`` -> ``a.b`` (the constant prefix); :data:`DYNAMIC` when the name is
    not written in the call; :data:`BY_PATH` for loaders that run a file; None for any other call."""
    func = call.func
    called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    if called in _PATH_LOADERS:
        return BY_PATH
    if called not in ("__import__", "import_module"):
        return None
    arg = call.args[0] if call.args else None
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        prefix = str(arg.values[0].value).rpartition(".")[0]
        return prefix or DYNAMIC
    return DYNAMIC


IMPORTS = {path: imports_of(path) for path in MODULES}


def _under(path: Path, package: str) -> bool:
    return path.relative_to(PACKAGE).parts[0] == package


def _matches(module: str, target: str) -> bool:
    return module == target or module.startswith(target + ".")


def violations(owner: str | None, target: str, *, files: list[Path] | None = None) -> list[str]:
    """Imports of ``target`` from files outside package ``owner`` (or from ``files``)."""
    bad = []
    for path in files if files is not None else MODULES:
        if owner is not None and _under(path, owner):
            continue
        for imp in IMPORTS[path]:
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


def test_scanner_reads_import_strings():
    source = ("import importlib\nimportlib.import_module('simcluster.lowering.lower')\n"
              "def f(name):\n    __import__('simcluster.engine')\n"
              "    importlib.import_module(f'simcluster.sweep.{name}')\n    importlib.import_module(name)\n"
              "    importlib.util.spec_from_file_location('x', 'benchmarks/x.py')\n")
    found = {(i.module, i.in_function) for i in imports_of(PACKAGE / "spec" / "probe.py", source)}
    assert {("simcluster.lowering.lower", False), ("simcluster.engine", True), ("simcluster.sweep", True),
            (DYNAMIC, True), (BY_PATH, True)} <= found


@pytest.mark.parametrize("library, owner", [("simpy", "engine"), ("matplotlib", "reporting"), ("yaml", "spec")])
def test_only_one_package_imports(library, owner):
    bad = violations(owner, library)
    assert not bad, f"only simcluster/{owner}/ may import {library}:\n" + "\n".join(bad)


def test_no_module_over_the_line_limit():
    long = [f"{path.relative_to(PACKAGE.parent)} has {lines} lines" for path in MODULES
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, f"modules over {MAX_LINES} lines:\n" + "\n".join(long)


def test_the_edges_table_has_no_cycles():
    assert not cycles(), cycles()


def test_imports_follow_the_edges_table():
    """Every import of every module (module level, in functions, TYPE_CHECKING, import strings)
    is an edge of tests/layering.py's table; no exceptions."""
    bad = []
    for path in MODULES:
        source = part_of(module_name(path))
        where = path.relative_to(PACKAGE.parent)
        if source not in ALLOWED:
            bad.append(f"{where}: simcluster/{source} is not in the table of tests/layering.py")
            continue
        for imp in IMPORTS[path]:
            if imp.module in (DYNAMIC, BY_PATH):
                what = "loads code by file path" if imp.module == BY_PATH else "imports a module named at run time"
                bad.append(f"{where}:{imp.lineno} {what}; the table cannot check it")
                continue
            target = part_of(imp.module)
            if target is not None and not allowed(source, target):
                how = " (TYPE_CHECKING)" if imp.type_only else " (in a function)" if imp.in_function else ""
                bad.append(f"{where}:{imp.lineno} {source} -> {target}: imports {imp.module}{how}")
    assert not bad, "imports outside the edges of tests/layering.py:\n" + "\n".join(sorted(set(bad)))


def test_lazy_edges_are_taken_in_functions_only():
    """The edges of layering.LAZY (the root's re-export of the public API) are imports made
    inside functions, never at module level: they run after every part is loaded."""
    bad = []
    for path in MODULES:
        source = part_of(module_name(path))
        for imp in IMPORTS[path]:
            target = part_of(imp.module)
            if target in LAZY.get(source or "", frozenset()) and target not in ALLOWED.get(source or "", frozenset()) \
                    and not imp.in_function:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{imp.lineno} imports {imp.module} at module level")
    assert not bad, "\n".join(bad)
