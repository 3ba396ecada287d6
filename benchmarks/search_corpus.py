"""The analytical screen against the simulator on the validation corpus' own layouts.

Every corpus row whose figure is a time or a rate (memory rows and rows that repeat a layout left out) is
loaded as ``validate-published`` loads it, its layout estimated by the search's tier 1
(simcluster/search/estimate.py) and simulated, and the row's error of the estimate against the simulation
printed, worst first, with the share within ``--within`` (default 0.5 %). The layouts come from the published
runs (Megatron, DeepSpeed, FSDP, JAX, MoE, TPU), not from the search's space; a workload with per-stage layer
counts (``parallelism.stage_layers``) is screened and simulated without them, as the search does.

    python benchmarks/search_corpus.py [--within 0.005] [--only KEY ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from simcluster.errors import SpecError
    from simcluster.run import simulate_workload
    from simcluster.search.estimate import Estimator
    from simcluster.search.layout import layout_of
    from simcluster.spec import load_workload
    from simcluster.topology.build import build_topology
    from simcluster.validation.corpus import load_corpus

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--within", type=float, default=0.005, help="the error counted as agreement (default 0.005)")
    ap.add_argument("--only", nargs="*", default=None, help="row keys to run (default: every row)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    seen: set[tuple[str, tuple[str, ...]]] = set()
    rows: list[tuple[float, str]] = []
    skipped: list[str] = []
    for group in load_corpus():
        for row in group.rows:
            if "memory" in row.metric or (args.only is not None and row.key not in args.only):
                continue
            key = (str(row.path), tuple(row.overrides))
            if key in seen:
                continue
            seen.add(key)
            try:
                spec = load_workload(row.path, list(row.overrides))
                if spec.parallelism.stage_layers is not None:
                    spec = load_workload(row.path, list(row.overrides) + ["parallelism.stage_layers=null"])
            except SpecError as err:  # e.g. more pipeline chunks than layers without the per-stage counts
                skipped.append(f"{row.key} ({str(err).splitlines()[0][:80]})")
                continue
            est = Estimator(spec, build_topology(spec.cluster)).estimate(layout_of(spec)).iteration_time_s
            sim = simulate_workload(spec, check=False).summary["iteration_time_s"]
            rows.append((est / sim - 1, row.key))
    rows.sort(key=lambda r: -abs(r[0]))
    print("| corpus row | screen against simulation |\n|---|---|")
    for err, key in rows:
        print(f"| {key} | {err:+.2%} |")
    within = sum(abs(err) <= args.within for err, _ in rows)
    print(f"\nwithin {args.within:.1%}: {within} of {len(rows)}; wall {time.perf_counter() - t0:.0f} s")
    for s in skipped:
        print(f"not run: {s}")


if __name__ == "__main__":
    main()
