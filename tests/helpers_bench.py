"""Load a held-out validation script of ``benchmarks/validation`` as a module (they are scripts, not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "validation"


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/validation/<name>.py`` as a module; its folder goes on ``sys.path`` (bridge_h100 imports
    bridge_recipes beside it)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
