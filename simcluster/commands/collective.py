"""`python -m simcluster collective`: a collective benchmark in the style of nccl-tests.

    python -m simcluster collective --op all_reduce --min 1MiB --max 8GiB --gpus 16 \\
        --cluster dgx-a100-80gb [--algorithm auto] [--step-factor 2]

Runs one collective on GPUs 0..gpus-1 of the cluster (nodes = ceil(gpus /
gpus_per_node)) for every size min, min*f, min*f^2, ... <= max, each through
the simulation engine alone (one task), and prints, like nccl-tests'
``all_reduce_perf``: size, time, algbw = size / time and busbw, the bus
bandwidth (nccl-tests doc/PERFORMANCE.md), a figure comparable across
numbers of GPUs:

    all_reduce                      busbw = algbw * 2(n-1)/n
    all_gather, reduce_scatter      busbw = algbw * (n-1)/n
    all_to_all                      busbw = algbw * (n-1)/n
    broadcast                       busbw = algbw

Sizes follow NCCL: all_gather's size is the gathered output, reduce_scatter's
the full input (see simcluster.collectives.algorithms). ``count`` is the
number of 4-byte elements (nccl-tests' default type, float). The last column
names the algorithm run (the one ``auto`` picked for that size).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from simcluster.errors import Problem, SpecError

HELP = "benchmark one collective over a range of sizes, like nccl-tests (size, time, algbw, busbw)"

BENCH_OPS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all")
WHERE = "collective"


def busbw_factor(op: str, n: int) -> float:
    """busbw / algbw for ``op`` on n ranks (nccl-tests doc/PERFORMANCE.md)."""
    if op == "all_reduce":
        return 2 * (n - 1) / n
    if op == "broadcast":
        return 1.0
    return (n - 1) / n


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--op", default="all_reduce", help=f"collective: {' | '.join(BENCH_OPS)} (default all_reduce)")
    p.add_argument("--min", dest="min_size", default="8B", help="smallest size, e.g. 8B, 1MiB (default 8B)")
    p.add_argument("--max", dest="max_size", default="8GiB", help="largest size (default 8GiB)")
    p.add_argument("--step-factor", default="2", help="multiply the size by this between rows (default 2)")
    p.add_argument("--gpus", default="8", help="GPUs taking part, 0..gpus-1 (default 8)")
    p.add_argument("--cluster", default="dgx-a100-80gb", help="a preset name or a cluster file (default dgx-a100-80gb)")
    p.add_argument("--algorithm", default="auto", help="collective algorithm (default auto: chosen per size)")
    p.add_argument("--json", action="store_true",
                   help="print the rows as JSON on stdout (op, gpus, cluster, rows: size, time_s, algbw, busbw, "
                        "algorithm; bandwidths in bytes/s)")


@dataclass(frozen=True)
class Row:
    size: int
    time_s: float
    algbw: float  # bytes/s
    busbw: float  # bytes/s
    algorithm: str


def _bad(key: str, reason: str) -> SpecError:
    return SpecError([Problem(WHERE, None, key, reason)])


def _quantity(value: str, kind: str, key: str) -> float:
    from simcluster.units import parse_quantity

    try:
        return parse_quantity(value, kind)
    except ValueError as exc:
        raise _bad(key, str(exc)) from None


def sizes(lo: float, hi: float, factor: float) -> list[int]:
    """lo, lo*f, lo*f^2, ... up to hi (inclusive), as whole bytes."""
    out, s = [], float(lo)
    while s <= hi * (1 + 1e-12):
        out.append(int(round(s)))
        s *= factor
    return out


def _topology(cluster_ref: str, gpus: int):
    from simcluster.spec import load_cluster
    from simcluster.spec.fields import MAX_DEVICES
    from simcluster.topology import build_topology

    cluster = load_cluster(cluster_ref)
    nodes = math.ceil(gpus / cluster.gpus_per_node)
    if nodes * cluster.gpus_per_node > MAX_DEVICES:
        raise _bad("--gpus", f"{gpus:,} GPUs; at most {MAX_DEVICES:,}")
    cluster = cluster.model_copy(update={"nodes": nodes})
    try:
        return build_topology(cluster)
    except ValueError as exc:
        raise _bad("--cluster", f"{cluster_ref} with {nodes} nodes: {exc}") from None


def benchmark(op: str, topo, gpus: int, sizes_: list[int], algorithm: str = "auto") -> list[Row]:
    """Time ``op`` on GPUs 0..gpus-1 for every size through the engine; one row per size."""
    from simcluster.collectives import plan_collective
    from simcluster.collectives.select import choose
    from simcluster.engine import simulate
    from simcluster.lowering.task import TaskGraph

    group = tuple(range(gpus))
    rows = []
    for size in sizes_:
        tg = TaskGraph()
        transfers = plan_collective(op, group, size, topo, algorithm=algorithm)
        tg.add(kind="collective", name=op, ranks=(0,), stream="comm", transfers=transfers, nbytes=size)
        t = simulate(tg, topo).end[0]
        algbw = size / t if t > 0 else float("inf")
        name = choose(op, group, size, topo) if algorithm == "auto" else algorithm
        rows.append(Row(size, t, algbw, algbw * busbw_factor(op, gpus), name))
    return rows


def format_table(rows: list[Row], title: str) -> str:
    """nccl-tests-like text: a header, one line per size, the average bus bandwidth."""
    lines = [f"# {title}",
             f"# {'size':>12} {'count':>12} {'type':>6} {'time':>12} {'algbw':>8} {'busbw':>8}  algorithm",
             f"# {'(B)':>12} {'(elements)':>12} {'':>6} {'(us)':>12} {'(GB/s)':>8} {'(GB/s)':>8}"]
    for r in rows:
        lines.append(f"  {r.size:>12d} {r.size // 4:>12d} {'float':>6} {r.time_s * 1e6:>12.2f} "
                     f"{r.algbw / 1e9:>8.2f} {r.busbw / 1e9:>8.2f}  {r.algorithm}")
    if rows:
        lines.append(f"# Avg bus bandwidth    : {sum(r.busbw for r in rows) / len(rows) / 1e9:.3f} GB/s")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    from simcluster.collectives import ALGORITHMS
    from simcluster.registry import UnknownName

    op = args.op.replace("-", "_")
    if op not in BENCH_OPS:
        raise _bad("--op", f"unknown collective {args.op!r}; known: {', '.join(BENCH_OPS)}")
    lo = _quantity(args.min_size, "bytes", "--min")
    hi = _quantity(args.max_size, "bytes", "--max")
    factor = _quantity(args.step_factor, "number", "--step-factor")
    gpus_f = _quantity(args.gpus, "number", "--gpus")
    if lo < 1:
        raise _bad("--min", f"must be at least 1 byte, got {args.min_size!r}")
    if hi < lo:
        raise _bad("--max", f"must be >= --min ({args.min_size}), got {args.max_size!r}")
    if factor <= 1:
        raise _bad("--step-factor", f"must be > 1, got {args.step_factor!r}")
    if gpus_f != int(gpus_f) or gpus_f < 2:
        raise _bad("--gpus", f"must be a whole number >= 2, got {args.gpus!r}")
    gpus = int(gpus_f)
    try:
        ALGORITHMS.get(args.algorithm)
    except UnknownName as exc:
        raise _bad("--algorithm", str(exc)) from None
    topo = _topology(args.cluster, gpus)
    try:
        rows = benchmark(op, topo, gpus, sizes(lo, hi, factor), args.algorithm)
    except ValueError as exc:  # e.g. an algorithm that does not implement the op
        raise _bad("--algorithm", str(exc)) from None
    nodes = topo.num_nodes
    title = (f"simcluster collective: {op} on {gpus} GPUs ({nodes} node{'s' if nodes > 1 else ''} x "
             f"{topo.gpus_per_node}) of {topo.name}, algorithm {args.algorithm}")
    print(format_table(rows, title))
    if args.json:
        from dataclasses import asdict

        from simcluster.commands.options import print_json

        print_json(args, {"op": op, "gpus": gpus, "nodes": nodes, "cluster": topo.name, "algorithm": args.algorithm,
                          "rows": [asdict(r) for r in rows]})
    return 0
