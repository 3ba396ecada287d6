"""`python -m simcluster collective` (not implemented yet)."""

from __future__ import annotations

import argparse
import sys

HELP = "collective (not implemented yet)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*")


def main(args: argparse.Namespace) -> int:
    print("simcluster collective: not implemented yet", file=sys.stderr)
    return 1
