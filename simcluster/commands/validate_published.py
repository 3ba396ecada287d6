"""``python -m simcluster validate-published [--only ROWS] [--scripted] [--json FILE]``

Runs the validation suite against published training runs: Narayanan et al. 2021 (SC'21)
Table 1, ten GPT models from 1.7B parameters on 32 A100s to 1T on 3,072, and prints the
predicted and published TFLOP/s per GPU, the error per row, the MAPE, where each row's
iteration goes and which constants the predictions rest on. The suite and its workload
files live in the source tree, ``benchmarks/validation/narayanan2021.py`` and
``benchmarks/validation/narayanan2021/*.yaml`` (see that module's docstring for the
assumed micro batches and virtual stages).

Exit status: 0 every row within ±10 % and MAPE ≤ 5 %; 1 not; 2 bad input (an unknown row,
or no source checkout to find the suite in).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

HELP = "check predictions against published runs (Narayanan et al. 2021 Table 1): error per row and MAPE"
SUITE = Path("benchmarks") / "validation" / "narayanan2021.py"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", metavar="ROWS",
                   help="comma-separated rows, e.g. 1.7b,3.6b,39.1b (default: all ten; "
                        "1.7b 3.6b 7.5b 18.4b 39.1b 76.1b 145.6b 310.1b 529.6b 1008b)")
    p.add_argument("--scripted", action="store_true",
                   help="run 39.1B and 1T non-interleaved, as Megatron-LM's examples/sc21/run_table_1.sh does "
                        "(default: interleaved with 2 virtual stages, as the paper's §5.1 says)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")


def suite_path() -> Path | None:
    """The suite in the source checkout this package runs from, or in the working directory."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (root / SUITE).is_file():
            return root / SUITE
    return None


def load_suite():
    """Import ``benchmarks/validation/narayanan2021.py`` by path (it is not part of the package)."""
    path = suite_path()
    if path is None:
        return None
    spec = importlib.util.spec_from_file_location("simcluster_validation_narayanan2021", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def main(args: argparse.Namespace) -> int:
    suite = load_suite()
    if suite is None:
        print(f"validate-published: {SUITE} not found; run from a source checkout of simcluster",
              file=sys.stderr)
        return 2
    return suite.main(args)
