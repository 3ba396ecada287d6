"""``python -m simcluster validate-published [--only ROWS] [--scripted] [--json FILE]``

Runs the validation suite against published training runs: Narayanan et al. 2021 (SC'21)
Table 1, ten GPT models from 1.7B parameters on 32 A100s to 1T on 3,072, and prints the
predicted and published TFLOP/s per GPU, the error per row, the MAPE, where each row's
iteration goes and which constants the predictions rest on. The suite is
:mod:`simcluster.validation.narayanan2021`; its rows and workload files are package data in
``simcluster/data/validation/`` (see that module's docstring for the assumed micro batches
and virtual stages).

Exit status: 0 every row within ±10 % and MAPE ≤ 5 %; 1 not; 2 bad input (an unknown row).
"""

from __future__ import annotations

import argparse

HELP = "check predictions against published runs (Narayanan et al. 2021 Table 1): error per row and MAPE"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", metavar="ROWS",
                   help="comma-separated rows, e.g. 1.7b,3.6b,39.1b (default: all ten; "
                        "1.7b 3.6b 7.5b 18.4b 39.1b 76.1b 145.6b 310.1b 529.6b 1008b)")
    p.add_argument("--scripted", action="store_true",
                   help="run 39.1B and 1T non-interleaved, as Megatron-LM's examples/sc21/run_table_1.sh does "
                        "(default: interleaved with 2 virtual stages, as the paper's §5.1 says)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")


def main(args: argparse.Namespace) -> int:
    """Run the suite (imported here: the simulator loads only when the command runs)."""
    from simcluster.validation import narayanan2021

    return narayanan2021.main(args)
