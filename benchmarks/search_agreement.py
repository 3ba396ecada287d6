"""How well the analytical screen ranks layouts, on workloads no term of it was set from.

The screen (simcluster/search/estimate.py) sums the plan's unit steps in closed form and
has no fitted term. This script takes held-out workloads (not GPT-3 175B or the 1T model,
the workloads the search was first built on), screens every layout, keeps the best
``--keep`` that fit, simulates ``--sample`` of them spread evenly over that ranking (not
only the top, where near-ties make rank correlation meaningless), and prints per
workload: Spearman's rank correlation between estimated and simulated iteration time,
the mean and worst absolute error of the estimate, and the wall time.

    python benchmarks/search_agreement.py [--sample 24] [--keep 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HELD_OUT = [("Llama 3 8B on 128 H100", "benchmarks/cases/llama3-8b-128.yaml"),
            ("GPT 8-GPU toy (A100)", "workloads/toy-8gpu.yaml")]


def agreement(path: str, sample: int, keep: int) -> dict[str, float]:
    """Spearman, mean and worst |error| of the estimate over a spread sample of layouts."""
    from simcluster.run import simulate_workload
    from simcluster.search.estimate import Estimator
    from simcluster.search.memory import layout_overrides
    from simcluster.search.results import spearman
    from simcluster.search.screen import screen
    from simcluster.search.space import make_space
    from simcluster.spec import load_workload
    from simcluster.topology.build import build_topology

    spec = load_workload(ROOT / path)
    n = spec.cluster.num_gpus
    t0 = time.perf_counter()
    est = Estimator(spec, build_topology(spec.cluster))
    out = screen(spec, make_space(spec, n, n // 2 + 1, {}), est, lambda T, gpus: gpus / T, keep=keep)
    best = out.best
    step = max(1, len(best) // sample)
    picked = best[::step][:sample]
    estimated, simulated = [], []
    for cand in picked:
        sets = layout_overrides(spec, cand.layout)
        simulated.append(simulate_workload(load_workload(ROOT / path, sets), check=False).summary["iteration_time_s"])
        estimated.append(cand.estimate.iteration_time_s)
    errors = [abs(e / s - 1) for e, s in zip(estimated, simulated)]
    return {"pairs": len(picked), "spearman": spearman(estimated, simulated), "mean_err": sum(errors) / len(errors),
            "max_err": max(errors), "wall_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=24, help="layouts simulated per workload (default 24)")
    ap.add_argument("--keep", type=int, default=2000, help="best estimates the sample spreads over (default 2000)")
    args = ap.parse_args()
    print("| held-out workload | layouts | Spearman | mean error | worst error | wall |\n|---|---|---|---|---|---|")
    for name, path in HELD_OUT:
        r = agreement(path, args.sample, args.keep)
        print(f"| {name} | {r['pairs']} | {r['spearman']:.2f} | {r['mean_err']:.1%} | {r['max_err']:.1%} | "
              f"{r['wall_s']:.0f} s |")


if __name__ == "__main__":
    main()
