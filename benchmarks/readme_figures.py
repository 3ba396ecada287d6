"""The README's first table: the systems the field cites, what was published, what simcluster predicts.

Run: ``python benchmarks/readme_figures.py [--only NAME]`` (about a minute and a half on two
cores; the 1T and Llama 3 405B workloads take most of it). Simulates the first row of every
system of the validation corpus's ``famous`` and ``moe`` groups (``simcluster/data/validation/famous.yaml``:
one row per ``workloads/<name>.yaml`` without overrides; the overridden rows are other points of
the same runs and stay in ``validate-published --group famous``) and prints one Markdown row per
system, the rows of the README's table: what it is, the published figure in the unit its
source gives it, the predicted one with its error, and the publication. Every workload file's
top comment gives its source, layout and assumptions; ``toy-8gpu`` is a smoke test, not a
published run, and is left out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a source checkout

from simcluster.validation import corpus, runner  # noqa: E402

#: metric -> the unit printed after the published figure
UNITS = {"hardware_tflops_per_gpu": "TFLOP/s/GPU", "model_tflops_per_gpu": "model TFLOP/s/GPU", "mfu": "MFU",
         "tokens_per_s": "tokens/s", "iteration_time_s": "per iteration", "peak_memory_bytes": "per GPU"}
#: workloads that are not published runs
NOT_PUBLISHED = {"toy-8gpu"}

HEADER = ("| system | what it is | published | simcluster | source |\n"
          "|---|---|---|---|---|")


def systems() -> list[corpus.Row]:
    """The famous and moe groups' rows without overrides: one per system (= per workload file)."""
    rows = [r for g in ("famous", "moe") for r in corpus.load_group(g).rows if not r.overrides]
    stems = {Path(r.workload).stem for r in rows}
    missing = sorted(p.stem for p in (ROOT / "workloads").glob("*.yaml") if p.stem not in stems | NOT_PUBLISHED)
    if missing:
        raise SystemExit(f"workloads without a row in the famous group: {', '.join(missing)}")
    return rows


def line(row: corpus.Row) -> str:
    """One README row: simulate the row's workload and format both figures."""
    r = runner.run_row(row)
    return (f"| `{Path(row.workload).stem}` | {row.system} | {row.format(row.published)} {UNITS[row.metric]} | "
            f"{row.format(r['predicted'])} ({r['error'] * 100:+.1f} %) | {row.paper} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="only the systems whose workload stem contains this")
    args = ap.parse_args()
    print(HEADER)
    for row in systems():
        if args.only is None or args.only in Path(row.workload).stem:
            print(line(row), flush=True)


if __name__ == "__main__":
    main()
