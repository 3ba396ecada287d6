"""How fast the layout search screens layouts, and (``--acceptance``) the two searches of docs/search.md.

Run ``python benchmarks/search_speed.py`` for the analytical tier's speed on the GPT-3 175B
(1,024 A100) and 1T (3,072 A100) spaces: layouts screened, layouts that fit, wall time and
layouts per second on one core (the screening runs in one process).

``python benchmarks/search_speed.py --acceptance [--jobs N]`` runs both searches end to end
(``python -m simcluster search``, default budget) into ``reports/bench-search/`` and prints,
per workload: the best layout found, Megatron's published layout as the workload writes it
(2021: full recompute) and the best layout with Megatron's degrees, the rank correlation and
top-10 overlap between the two tiers, the wall time; then it simulates the layouts tier 1
pruned by the narrowest margin and checks that the simulator says none of them fits.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CASES = [("GPT-3 175B on 1024 A100", "workloads/gpt3-175b.yaml"), ("1T on 3072 A100", "workloads/megatron-1t.yaml")]


def screening(path: str) -> dict:
    from simcluster.search.estimate import Estimator
    from simcluster.search.screen import screen
    from simcluster.search.space import make_space
    from simcluster.spec import load_workload
    from simcluster.topology.build import build_topology

    spec = load_workload(ROOT / path)
    n = spec.cluster.num_gpus
    tokens = spec.training.global_batch * spec.model.seq_len
    t0 = time.perf_counter()
    est = Estimator(spec, build_topology(spec.cluster))
    space = make_space(spec, n, n // 2 + 1, {})
    out = screen(spec, space, est, lambda T, gpus: tokens / T, keep=64)
    return {"layouts": out.layouts, "fitting": out.fitting, "wall_s": time.perf_counter() - t0, "rate": out.rate,
            "near_misses": out.near_misses}


def acceptance(name: str, path: str, jobs: int | None) -> None:
    from simcluster.run import simulate_workload
    from simcluster.search import SearchOptions, run_search
    from simcluster.search.memory import layout_overrides
    from simcluster.search.report import summary_text
    from simcluster.spec import load_workload

    out = ROOT / "reports" / "bench-search" / Path(path).stem
    t0 = time.perf_counter()
    outcome = run_search(SearchOptions(ROOT / path, out=out, jobs=jobs, progress=False))
    wall = time.perf_counter() - t0
    print(f"\n## {name} ({wall:.0f} s)\n")
    print(summary_text(outcome))
    table = outcome.table
    best = table.iloc[0]
    print(f"\n| | layout | iteration (s) | MFU | vs best |\n|---|---|---|---|---|")
    rows = [("best found", best)]
    for label, role in (("Megatron as published", outcome.baseline), ("best with Megatron's degrees", outcome.reference)):
        match = table[table["layout"] == role]
        if not match.empty:
            rows.append((label, match.iloc[0]))
    for label, row in rows:
        slower = row["iteration_time_s"] / best["iteration_time_s"] - 1
        print(f"| {label} | {row['layout']} | {row['iteration_time_s']:.2f} | {row['mfu']:.1%} | "
              f"{'—' if label == 'best found' else f'+{slower:.1%} time, {1 / (1 + slower):.1%} throughput'} |")
    a = outcome.agreement
    print(f"\nSpearman {a.spearman:.2f} over {a.pairs}; top-10 overlap {a.overlap}/{a.top}; "
          f"{outcome.simulated} simulated; wall {wall:.0f} s")
    misses = outcome.screening.near_misses[:4]
    spec = load_workload(ROOT / path)
    for lay, peak in misses:
        sets = layout_overrides(spec, lay)
        fits = simulate_workload(load_workload(ROOT / path, sets)).summary["fits_in_memory"]
        print(f"pruned {lay.label()}: estimated {peak / 2**30:.3f} GiB > {spec.cluster.device.memory_bytes / 2**30:.0f} GiB;"
              f" simulator: {'FITS (pruning error)' if fits else 'does not fit'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--acceptance", action="store_true", help="run both searches end to end (minutes)")
    ap.add_argument("--jobs", type=int, help="simulation workers for --acceptance (default: the cores)")
    args = ap.parse_args()
    print("| space | layouts | fit in memory | wall | layouts/s (one core) |\n|---|---|---|---|---|")
    for name, path in CASES:
        r = screening(path)
        print(f"| {name} | {r['layouts']:,} | {r['fitting']:,} | {r['wall_s']:.1f} s | {r['rate']:,.0f} |")
    if args.acceptance:
        for name, path in CASES:
            acceptance(name, path, args.jobs)


if __name__ == "__main__":
    main()
