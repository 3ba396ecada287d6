"""``simcluster import-megatron ARGS.txt [--out FILE] [--gpus N | --nodes N] [--cluster PRESET]``

Turns a Megatron-LM command line (``pretrain_gpt.py``'s arguments, in a file; ``-`` reads
stdin) into a workload YAML file: the model, the batch, the precision, recomputation and the
parallel layout (:mod:`simcluster.spec.megatron` lists what maps to what). Megatron's arguments
do not say how many GPUs run: give ``--gpus`` or ``--nodes`` (or keep a ``torchrun --nnodes ...
--nproc_per_node ...`` line in the file). The workload is validated before it is written; it
goes to ``--out`` or, without, to stdout.

Exit status: 0 written; 2 bad input (a file that cannot be read, arguments that cannot be
mapped, such as mixture-of-experts ones, or a workload that does not validate).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simcluster.commands.options import positive
from simcluster.errors import Problem, SpecError

HELP = "turn a Megatron-LM command line (pretrain_gpt.py arguments) into a workload YAML file"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("args_file", metavar="ARGS.txt", help="a file holding the Megatron-LM arguments (- for stdin)")
    p.add_argument("-o", "--out", metavar="FILE", help="write the workload here (default: stdout)")
    p.add_argument("--gpus", type=positive, metavar="N", help="GPUs the job runs on (data = N / (tensor × pipeline))")
    p.add_argument("--nodes", type=positive, metavar="N", help="nodes the job runs on (instead of --gpus)")
    p.add_argument("--cluster", default="dgx-a100-80gb", help="cluster preset (default dgx-a100-80gb)")
    p.add_argument("--name", help="the workload's name (default: the file's stem)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a dotted key of the workload written, e.g. training.precision=bf16")


def main(args: argparse.Namespace) -> int:
    from simcluster.spec import workload_from_data
    from simcluster.spec.megatron import megatron_workload, workload_yaml
    from simcluster.spec.overrides import apply_overrides

    where = str(args.args_file)
    try:
        text = sys.stdin.read() if where == "-" else Path(where).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(where, None, "", f"cannot read: {getattr(exc, 'strerror', None) or exc}")]) from None
    if args.gpus and args.nodes:
        raise SpecError([Problem("--nodes", None, "", "give --gpus or --nodes, not both")])
    name = args.name or (Path(where).stem if where != "-" else "megatron")
    vocab_given = any(o.partition("=")[0].strip() == "model.vocab" for o in args.overrides)
    data, ignored = megatron_workload(text, file=where, name=name, gpus=args.gpus, nodes=args.nodes,
                                      cluster=args.cluster, vocab_given=vocab_given)
    _, problems = apply_overrides(data, list(args.overrides))
    if problems:
        raise SpecError(problems)
    spec = workload_from_data(data, source=where)  # the workload written must validate (SpecError: exit 2)
    header = (f"Imported from {where} by simcluster import-megatron.\n"
              f"{spec.num_gpus} GPUs: tensor {spec.parallelism.tensor} x pipeline {spec.parallelism.pipeline} "
              + (f"x context {spec.parallelism.context} " if spec.parallelism.context > 1 else "")
              + f"x data {spec.parallelism.data}"
              + (f"; experts over expert {spec.parallelism.expert}" if spec.model.moe is not None else "") + ".\n")
    if ignored:
        header += "Ignored (no effect on what is simulated): " + " ".join(ignored) + "\n"
    text_out = workload_yaml(data, header)
    if args.out:
        Path(args.out).write_text(text_out, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        (getattr(args, "stdout", None) or sys.stdout).write(text_out)  # the product: kept under --quiet
    return 0
