"""The README's table of shipped workloads: what the simulator predicts, next to what was published.

Run: ``python benchmarks/readme_figures.py [--only NAME]`` (about a minute; the 1T workload
takes most of it). Simulates each ``workloads/*.yaml`` (one iteration, no report files) and
prints one Markdown row per workload, the rows of the README's table: GPUs and layout, the
published TFLOP/s per GPU (its source as a numbered note below the table), the predicted one
with its error, the predicted iteration time, MFU (model FLOPs over the dense peak) and peak
memory per GPU.

Published figures are TFLOP/s per GPU counted as Narayanan et al. 2021 (SC'21,
"Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM") count
them: eq. 3, recomputed FLOPs included, which is ``hardware_tflops_per_gpu``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: workload stem -> (what it is, published TFLOP/s per GPU or None, source)
WORKLOADS: dict[str, tuple[str, float | None, str]] = {
    "toy-8gpu": ("a 4-layer GPT on one DGX A100 node; a smoke test", None, ""),
    "gpt3-175b": ("GPT-3 175B on 1,024 A100 80GB, fp16, full recompute", 140.0,
                  "Narayanan et al. 2021 §5.1 (training-time estimate)"),
    "megatron-1t": ("the 1T-parameter GPT on 3,072 A100 80GB, fp16, full recompute", 163.0,
                    "Narayanan et al. 2021 Table 1, last row"),
}

HEADER = ("| workload | what it is | GPUs (t × p × d) | published TFLOP/s/GPU | predicted TFLOP/s/GPU | "
          "iteration | MFU | memory/GPU |\n|---|---|---|---|---|---|---|---|")


def _time(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def row(stem: str, note: int) -> str:
    """One README row: simulate ``workloads/<stem>.yaml`` and format its figures."""
    from simcluster.run import simulate_workload
    from simcluster.spec import load_workload

    what, published, _ = WORKLOADS[stem]
    spec = load_workload(ROOT / "workloads" / f"{stem}.yaml")
    s = simulate_workload(spec).summary
    p = spec.parallelism
    layout = f"{s['num_gpus']:,} ({p.tensor} × {p.pipeline} × {p.data})"
    hardware = s["hardware_tflops_per_gpu"]
    if published is None:
        pub, pred = "—", f"{hardware:.1f}"
    else:
        pub, pred = f"{published:g} [{note}]", f"{hardware:.1f} ({hardware / published - 1:+.1%})"
    return (f"| `{stem}` | {what} | {layout} | {pub} | {pred} | {_time(s['iteration_time_s'])} | "
            f"{s['mfu']:.1%} | {s['peak_memory_bytes'] / 2**30:.1f} GiB |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="only the workload whose file stem contains this")
    args = ap.parse_args()
    missing = sorted(p.stem for p in (ROOT / "workloads").glob("*.yaml") if p.stem not in WORKLOADS)
    if missing:
        raise SystemExit(f"workloads without a README entry here: {', '.join(missing)}")
    print(HEADER)
    notes = [stem for stem, (_, published, _) in WORKLOADS.items() if published is not None]
    for stem in WORKLOADS:
        if args.only is None or args.only in stem:
            print(row(stem, notes.index(stem) + 1 if stem in notes else 0), flush=True)
    print()
    for i, stem in enumerate(notes, 1):
        print(f"[{i}] {WORKLOADS[stem][2]}.")


if __name__ == "__main__":
    main()
