"""``python -m simcluster export-chakra WORKLOAD.yaml DIR [--set KEY=VALUE ...] [--prefix NAME]``

Writes the lowered task graph of a workload as MLCommons Chakra execution traces, one
``<prefix>.<rank>.et`` per GPU (``--per-simulated-rank``: per simulated rank only; see
:mod:`simcluster.chakra.export`);
``python -m simcluster run DIR`` simulates them again.

Exit status: 0 written; 2 bad input, or the ``simcluster[chakra]`` extra is not installed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "write a workload's task graph as Chakra execution traces (.et per GPU; needs simcluster[chakra])"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("workload", help="workload YAML file")
    p.add_argument("dir", help="output folder for the .et files")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a dotted key of the workload, e.g. parallelism.tensor=4")
    p.add_argument("--prefix", help="file name prefix (default: the workload's name)")
    p.add_argument("--per-simulated-rank", dest="per_gpu", action="store_false",
                   help="one file per simulated rank (one per pipeline stage in symmetric fidelity) instead of "
                        "one per GPU")


def main(args: argparse.Namespace) -> int:
    from simcluster.chakra import have_chakra
    from simcluster.spec import load_workload

    from simcluster.errors import Problem, SpecError
    from simcluster.runfolder import check_out_dir, inside
    from simcluster.spec.fields import name_problem

    if args.prefix is not None and name_problem(args.prefix):
        raise SpecError([Problem("--prefix", None, "", str(name_problem(args.prefix)))])
    spec = load_workload(args.workload, overrides=args.overrides)  # SpecError -> exit 2
    check_out_dir(args.dir, "DIR")
    inside(Path(args.dir), f"{args.prefix or spec.name}.0.et", "--prefix")  # names are names, not paths
    if not have_chakra():
        print("export-chakra needs the Chakra schema (the extra simcluster[chakra]): "
              "pip install --no-deps mlc-chakra protobuf", file=sys.stderr)
        return 2
    from simcluster.chakra import export_chakra

    paths = export_chakra(spec, args.dir, prefix=args.prefix, per_gpu=args.per_gpu)
    print(f"wrote {len(paths)} Chakra traces to {args.dir}/ ({paths[0].name} ... {paths[-1].name})")
    return 0
