"""How fast simcluster simulates one iteration, from 8 to 16,384 GPUs.

Run: ``python benchmarks/speed.py [--only NAME]``. Each case runs in a fresh
process (so peak RSS is its own) and prints: GPUs, simulated ranks, tasks,
events (tasks + network flows), the wall time of lowering + simulation, the
wall time of building the timeline DataFrame, events/s and peak RSS. Writing
the report files is not included (see ``python -m simcluster run``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = [
    ("toy 8 GPUs", "workloads/toy-8gpu.yaml"),
    ("8B on 128 H100", "benchmarks/cases/llama3-8b-128.yaml"),
    ("GPT-3 175B on 1024 A100", "workloads/gpt3-175b.yaml"),
    ("1T on 3072 A100", "workloads/megatron-1t.yaml"),
    ("405B on 16384 H100", "benchmarks/cases/llama3-405b-16k.yaml"),
    ("13B on 256 A100, full fidelity", "benchmarks/cases/gpt-13b-256-full.yaml"),
]


def one(path: str) -> dict:
    """Simulate one workload in this process and measure it."""
    from simcluster.engine import simulate
    from simcluster.run import lower_workload, recorded_links
    from simcluster.spec import load_workload

    spec = load_workload(str(ROOT / path))
    t0 = time.perf_counter()
    _, topo, tg = lower_workload(spec)
    res = simulate(tg, topo, record_links=recorded_links(topo, tg.ranks))
    total = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"gpus": spec.num_gpus, "ranks": len(tg.ranks), "tasks": len(tg.tasks), "events": res.events,
            "sim_s": total - res.stats["timeline_s"], "timeline_s": res.stats["timeline_s"],
            "rows": len(res.timeline), "rss": rss, "iteration_s": max(res.end)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", help="run only the cases whose name contains this")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(one(args.case)))
        return
    print(f"{'case':34} {'GPUs':>6} {'ranks':>6} {'tasks':>8} {'events':>8} {'sim s':>7} "
          f"{'timeline s':>10} {'events/s':>9} {'RSS MB':>7} {'iteration s':>11}")
    for name, path in CASES:
        if args.only and args.only not in name:
            continue
        out = subprocess.run([sys.executable, __file__, "--case", path], capture_output=True, text=True,
                             cwd=ROOT)
        if out.returncode != 0:
            print(f"{name:34} failed: {out.stderr.strip().splitlines()[-1]}")
            continue
        r = json.loads(out.stdout)
        print(f"{name:34} {r['gpus']:>6} {r['ranks']:>6} {r['tasks']:>8} {r['events']:>8} "
              f"{r['sim_s']:>7.2f} {r['timeline_s']:>10.2f} {r['events'] / r['sim_s']:>9.0f} "
              f"{r['rss'] / 2**20:>7.0f} {r['iteration_s']:>11.3f}")


if __name__ == "__main__":
    main()
