"""Validation: Narayanan et al. 2021 (SC'21), Table 1, all ten rows, predicted vs published.

    python benchmarks/validation/narayanan2021.py [--only 1.7b,39.1b] [--scripted] [--json FILE]

The same as ``python -m simcluster validate-published``: the suite, its rows and workload files
are part of the package (:mod:`simcluster.validation.narayanan2021`, package data in
``simcluster/data/validation/``); this script only runs it from a source checkout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a source checkout

from simcluster.commands.validate_published import add_arguments  # noqa: E402
from simcluster.validation.narayanan2021 import main  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="narayanan2021.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
