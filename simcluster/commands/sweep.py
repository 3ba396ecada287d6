"""`python -m simcluster sweep` (not implemented yet)."""

from __future__ import annotations

import argparse
import sys

HELP = "sweep (not implemented yet)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*")


def main(args: argparse.Namespace) -> int:
    print("simcluster sweep: not implemented yet", file=sys.stderr)
    return 1
