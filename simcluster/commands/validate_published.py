"""``python -m simcluster validate-published [--group G] [--only ROWS] [--json FILE] [options]``

Options: ``--leave-one-source-out``, ``--scripted`` (table1).

Runs the validation corpus against the simulator: groups of published training runs, each a
package-data file ``simcluster/data/validation/<group>.yaml`` (:mod:`simcluster.validation.corpus`).
``table1``: Narayanan et al. 2021 (SC'21) Table 1, ten GPT models from 1.7B on 32 A100s to 1T
on 3,072 (:mod:`simcluster.validation.narayanan2021`); ``famous``: the systems the field cites,
each a ``workloads/<name>.yaml`` of the repository laid out as its paper describes (Megatron 8.3B,
GPT-3, MT-NLG, Megatron 1T, Gopher, PaLM, BLOOM, Llama 3). Prints each row's predicted and
published figure and error, each group's MAPE and acceptance; :mod:`simcluster.validation.runner`
runs them.

Exit status: 0 every group run passes (table1: every row within ±10 %, MAPE ≤ 5 %; famous: every
row within its tolerance, MAPE ≤ 8 %); 1 not; 2 bad input (an unknown group or row, or a row
whose workload is in a ``workloads/`` folder that an installed copy does not have).
"""

from __future__ import annotations

import argparse

HELP = "check predictions against published training runs (a corpus of groups): error per row, MAPE per group"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--group", metavar="G",
                   help="one group of the corpus: table1 (Narayanan et al. 2021 Table 1), famous (the systems "
                        "the field cites), megatron (Megatron/NeMo runs), stacks (PyTorch FSDP, DeepSpeed, JAX), "
                        "memory (peak memory per GPU) or moe (mixture of experts); famous and moe need the "
                        "repository's workloads/ folder; default: every group")
    p.add_argument("--only", metavar="ROWS",
                   help="comma-separated rows of any group, e.g. 1.7b,39.1b or llama3-8b,gpt3-175b "
                        "(default: every row of the groups run)")
    p.add_argument("--json", metavar="FILE", nargs="?", const="-",
                   help="also write the results as JSON (mape, passed, groups, rows) to FILE; --json alone prints "
                        "them on stdout and the report on stderr")
    p.add_argument("--leave-one-source-out", action="store_true",
                   help="also report each source's error with its rows held out of every fitted constant")
    p.add_argument("--scripted", action="store_true",
                   help="table1: run 39.1B and 1T non-interleaved, as Megatron-LM's examples/sc21/run_table_1.sh does "
                        "(default: interleaved with 2 virtual stages, as the paper's §5.1 says)")


def main(args: argparse.Namespace) -> int:
    """Run the corpus (imported here: the simulator loads only when the command runs)."""
    from simcluster.validation import runner

    return runner.main(args)
