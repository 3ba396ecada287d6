"""`python -m simcluster search` (not implemented yet)."""

from __future__ import annotations

import argparse
import sys

HELP = "search (not implemented yet)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*")


def main(args: argparse.Namespace) -> int:
    print("simcluster search: not implemented yet", file=sys.stderr)
    return 1
