"""Schedules and ZeRO against the literature's trends (issue: parallelism breadth).

1. GPT-3 175B on 96 A100 (TP 8, PP 12, micro batch 1): interleaved 1F1B with
   two model chunks per stage against 1F1B as the global batch grows from 96 to
   768. Narayanan et al. 2021 (§5.4, Fig. 12) report the interleaved schedule
   about 10 % faster at small batch, the gap closing as the batch grows.
2. GPT-3 175B with ZeRO-3 and pure data parallelism at a fixed global batch:
   per-microbatch parameter gathers stay while compute per GPU shrinks, so
   throughput per GPU falls as the data-parallel degree grows.

Run: ``python benchmarks/parallelism.py``.
"""

from __future__ import annotations

from pathlib import Path

from simcluster.run import simulate_workload
from simcluster.spec import load_workload

GPT3 = str(Path(__file__).resolve().parent.parent / "workloads" / "gpt3-175b.yaml")


def run(*overrides: str) -> dict:
    return simulate_workload(load_workload(GPT3, overrides=list(overrides))).summary


def interleaved_table() -> None:
    print("GPT-3 175B on 96 A100, TP 8 x PP 12: 1F1B vs interleaved (v = 2)")
    print(f"{'global batch':>12} {'1f1b s':>9} {'interleaved s':>14} {'speed-up':>9} "
          f"{'bubble 1f1b':>12} {'bubble int.':>12}")
    base = ("parallelism.tensor=8", "parallelism.pipeline=12", "parallelism.data=1", "cluster.nodes=12",
            "training.micro_batch=1")
    for batch in (96, 192, 384, 768):
        a = run(*base, f"training.global_batch={batch}", "parallelism.schedule=1f1b")
        b = run(*base, f"training.global_batch={batch}", "parallelism.schedule=interleaved",
                "parallelism.virtual_stages=2")
        print(f"{batch:>12} {a['iteration_time_s']:>9.2f} {b['iteration_time_s']:>14.2f} "
              f"{a['iteration_time_s'] / b['iteration_time_s'] - 1:>9.1%} "
              f"{a['bubble_fraction']:>12.1%} {b['bubble_fraction']:>12.1%}")


def zero3_table() -> None:
    print("\nGPT-3 175B, ZeRO-3, pure data parallelism, global batch 512, full recompute")
    print(f"{'data parallel':>13} {'iteration s':>12} {'TFLOP/s/GPU':>12} {'exposed comm':>13}")
    for dp in (64, 128, 256, 512):
        s = run("parallelism.tensor=1", "parallelism.pipeline=1", f"parallelism.data={dp}",
                "parallelism.zero_stage=3", f"cluster.nodes={dp // 8}", "training.global_batch=512")
        print(f"{dp:>13} {s['iteration_time_s']:>12.2f} {s['hardware_tflops_per_gpu']:>12.1f} "
              f"{s['exposed_comm_fraction']:>13.1%}")


if __name__ == "__main__":
    interleaved_table()
    zero3_table()
