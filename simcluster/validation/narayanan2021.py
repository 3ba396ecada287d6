"""Validation group ``table1``: Narayanan et al. 2021 (SC'21), Table 1, ten rows, predicted vs published.

    python -m simcluster validate-published --group table1 [--only 1.7b,39.1b] [--scripted] [--json FILE]

Source: D. Narayanan, M. Shoeybi, J. Casper, P. LeGresley, M. Patwary, V. Korthikanti,
D. Vainbrand, P. Kashinkunti, J. Bernauer, B. Catanzaro, A. Phanishayee, M. Zaharia,
"Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM", SC'21,
Table 1 (weak scaling, 1.7B to 1T parameters on Selene: DGX A100 80GB, 8 GPUs per node on
NVSwitch, 8 × 200 Gb/s HDR InfiniBand per node). Published figure: TFLOP/s per GPU counted
with the paper's eq. (3), full activation recomputation included, which is simcluster's
``hardware_tflops_per_gpu`` (the suite checks the simulated FLOPs equal eq. 3 exactly).

The rows are the corpus group ``simcluster/data/validation/table1.yaml`` (package data, the
format is :mod:`simcluster.validation.corpus`), and so are the workloads, plain files, one per
row, in ``simcluster/data/validation/narayanan2021/``
(``python -m simcluster run simcluster/data/validation/narayanan2021/gpt-145.6b.yaml`` runs one).
Every row: seq 2048, vocab 51200, fp16 mixed precision with Adam, full recompute, no flash
attention (2021), data parallel = GPUs / (t·p). What the table does not give, taken from
the paper's own launch script, NVIDIA/Megatron-LM ``examples/sc21/run_table_1.sh``:

- micro batch: 16 (1.7B, 3.6B, 7.5B), 8 (18.4B), 4 (39.1B), 2 (76.1B, 145.6B), 1 (310.1B,
  529.6B, 1T);
- virtual stages from its ``--num-layers-per-virtual-pipeline-stage`` (76.1B: 5 layers →
  v = 15/5 = 3; 145.6B: 5 → v = 2; 310.1B: 3 → v = 2; 529.6B: 1 → v = 3);
- gradient reduction from its ``DDP``: ``torch`` for the four rows without a pipeline
  (PyTorch DDP overlaps the all-reduce with the last microbatch's backward:
  ``overlap_grad_reduce: true``), ``local`` for the six pipelined rows (Megatron's own DDP of
  2021 all-reduces after the whole backward, in ``train_step``: ``overlap_grad_reduce: false``).

The script passes no interleaving flag for 39.1B (p = 2) and 1T (p = 64) although the paper
(§5.1) says every row ran the interleaved schedule; the suite follows the paper and assumes
v = 2 for those two (the smallest interleaving: 12 and 1 layers per chunk). ``--scripted``
runs them as the script does (non-interleaved 1F1B) instead. Nothing in the simulator is
fitted to this table: see :func:`constants` for what the predictions rest on.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from simcluster.costs import efficiency as eff
from simcluster.costs.devices import device_calibration
from simcluster.costs.flops import narayanan_flops
from simcluster.plan import costing
from simcluster.run import simulate_workload
from simcluster.spec import load_workload
from simcluster.topology.devices import DEVICES
from simcluster.topology.efficiency import NIC_BY_RATE, NVLINK_BY_DEVICE
from simcluster.validation import corpus

#: The suite's package data: the corpus group ``table1.yaml`` (the rows) and ``narayanan2021/`` (the workloads).
DATA = corpus.DATA
HERE = DATA / "narayanan2021"
GROUP = corpus.load_group("table1")
TOLERANCE = GROUP.rows[0].tolerance  # every row within ±10 % (the group's default)
MAPE_LIMIT = GROUP.mape_limit  # mean absolute percentage error


@dataclass(frozen=True)
class Row:
    """One row of Table 1: the workload file and the published figures."""

    key: str  # "1.7b": the file gpt-<key>.yaml, and what --only takes
    params: str  # as printed in the table
    gpus: int
    tensor: int
    pipeline: int
    batch: int
    published_tflops: float  # per GPU, eq. 3
    scripted: tuple[str, ...] = ()  # overrides that give run_table_1.sh's layout, if it differs

    @property
    def path(self) -> Path:
        """The row's workload file (package data)."""
        return HERE / f"gpt-{self.key}.yaml"


def load_rows(group: corpus.Group = GROUP) -> tuple[Row, ...]:
    """The rows of Table 1 as the corpus group gives them."""
    scripted = tuple(group.data["scripted"])
    return tuple(Row(r.key, str(r.extra["params"]), int(r.extra["gpus"]), int(r.extra["tensor"]),
                     int(r.extra["pipeline"]), int(r.extra["batch"]), r.published,
                     scripted if r.extra.get("scripted") else ())
                 for r in group.rows)


ROWS: tuple[Row, ...] = load_rows()
#: The corpus rows by key (device, framework, source of each Table 1 row).
CORPUS_ROWS = {r.key: r for r in GROUP.rows}

#: Where each row's iteration goes (shares of the iteration, averaged over pipeline stages).
SHARES = ("compute", "recompute", "exposed_tp_comm", "exposed_pp_comm", "exposed_dp_comm", "bubble",
          "optimizer")


def run_row(row: Row, scripted: bool = False) -> dict[str, Any]:
    """Simulate one row; its predicted and published TFLOP/s, the error and the breakdown."""
    t0 = time.perf_counter()
    spec = load_workload(row.path, overrides=list(row.scripted) if scripted else None)
    out = simulate_workload(spec)
    wall = time.perf_counter() - t0
    s, par, tr, m = out.summary, spec.parallelism, spec.training, spec.model
    T = s["iteration_time_s"]
    eq3 = narayanan_flops(tr.global_batch, m.seq_len, m.layers, m.hidden, m.vocab, full_recompute=True)
    stages = out.details["breakdown"]
    shares = {k: sum(b[k] for b in stages) / len(stages) / T for k in SHARES}
    predicted = s["hardware_tflops_per_gpu"]
    return {
        **CORPUS_ROWS[row.key].result(predicted),
        "params": row.params, "gpus": s["num_gpus"], "tensor": par.tensor,
        "pipeline": par.pipeline, "data": par.data, "virtual_stages": par.virtual_stages,
        "schedule": par.schedule, "global_batch": tr.global_batch, "micro_batch": tr.micro_batch,
        "microbatches": spec.num_microbatches,
        "published_tflops": row.published_tflops, "predicted_tflops": predicted,
        "eq3_tflops": eq3 / (T * s["num_gpus"]) / 1e12,
        "iteration_time_s": T, "iteration_time_s_interval": s["iteration_time_s_interval"],
        "mfu": s["mfu"], "hfu": s["hfu"],
        "peak_memory_gib": s["peak_memory_bytes"] / 2**30, "fits_in_memory": s["fits_in_memory"],
        "shares": shares, "wall_s": wall,
    }


def run_suite(rows: list[Row] | None = None, scripted: bool = False,
              progress: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """:func:`run_row` over ``rows`` (default all); ``progress(result)`` after each."""
    results = []
    for row in rows or ROWS:
        results.append(run_row(row, scripted))
        if progress is not None:
            progress(results[-1])
    return results


def mape(results: list[dict[str, Any]]) -> float:
    """Mean absolute percentage error, as a fraction."""
    return corpus.mape(results)


def passed(results: list[dict[str, Any]]) -> bool:
    """Every row within :data:`TOLERANCE` and the MAPE within :data:`MAPE_LIMIT`."""
    return corpus.accepted(results, MAPE_LIMIT)


def table(results: list[dict[str, Any]]) -> str:
    """The predicted-vs-published table (Markdown, so the README can show it as printed)."""
    head = ("| model | GPUs | t | p | d | v | batch | micro | published | predicted | error | "
            "iteration | wall |")
    lines = [head, "|" + "---|" * 13]
    for r in results:
        lines.append(
            f"| {r['params']} | {r['gpus']} | {r['tensor']} | {r['pipeline']} | {r['data']} | "
            f"{r['virtual_stages']} | {r['global_batch']} | {r['micro_batch']} | "
            f"{r['published_tflops']:.0f} | {r['predicted_tflops']:.1f} | {r['error'] * 100:+.1f} % | "
            f"{r['iteration_time_s']:.2f} s | {r['wall_s']:.1f} s |")
    return "\n".join(lines)


def breakdown(results: list[dict[str, Any]]) -> str:
    """Where each row's iteration goes, in % (the terms to look at when a row misses)."""
    names = ("compute", "recompute", "TP exposed", "PP exposed", "DP exposed", "bubble", "optimizer")
    lines = ["| model | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for r in results:
        lines.append(f"| {r['params']} | " + " | ".join(f"{r['shares'][k] * 100:.1f}" for k in SHARES) + " |")
    return "\n".join(lines)


def constants() -> str:
    """What the predictions rest on, read from the modules (none is fitted to Table 1)."""
    a100 = DEVICES.get("a100-80gb")
    cal = device_calibration("a100-80gb")
    bw = ", ".join(f"{k} {v:.3f}" for k, v in eff.BANDWIDTH_FRACTION.items())
    hdr = dict(NIC_BY_RATE)[200e9 / 8]
    return "\n".join([
        "Constants behind these predictions (none fitted to this table):",
        f"- GEMM efficiency e_max·x/(x + x_half), e_max {eff.GEMM_EFF_MAX:.3f}, x_half {eff.GEMM_SIZE_HALF:.0f}, "
        f"launch floor {eff.LAUNCH_FLOOR_S * 1e6:.1f} µs (p {eff.LAUNCH_SOFTNESS:.2f}): fitted to the 720 H100 "
        "GEMMs of simcluster/data/calibration (python -m simcluster.costs.calibration).",
        f"- memory-bound kernels at a fraction of datasheet bandwidth ({bw}): fitted to the H100 "
        "memory-bound kernels of the same calibration.",
        f"- A100-80GB: the H100 curves at its datasheet {a100.peak_flops / 1e12:.0f} TFLOP/s fp16 and "
        f"{a100.memory_bandwidth / 1e9:.0f} GB/s, rescaled by published A100/H100 measurements (GEMM ceiling "
        f"x{cal.gemm.ratio:.3f}, bandwidth x{cal.memory.ratio:.3f}; simcluster/costs/devices.py).",
        f"- kernel gap inside a training loop {costing.TRAINING_LOOP_KERNEL_GAP_S * 1e6:.0f} µs "
        f"({costing.__name__.replace('.', '/')}.py; set, not fitted).",
        f"- link efficiency NVLink3 {NVLINK_BY_DEVICE['a100-80gb']:.3f}, HDR InfiniBand {hdr:.2f}: fitted to "
        "NCCL's published all-reduce bus bandwidth (simcluster/topology/efficiency.py).",
    ])


def report(results: list[dict[str, Any]], wall_s: float, scripted: bool) -> str:
    """Everything the command prints after the rows have run."""
    variant = ("39.1B and 1T non-interleaved, as run_table_1.sh runs them" if scripted else
               "interleaved wherever p > 1 (paper §5.1); 39.1B and 1T at v = 2")
    verdict = "PASS" if passed(results) else "FAIL"
    worst = max(results, key=lambda r: abs(r["error"]))
    return "\n".join([
        "Narayanan et al. 2021 (SC'21) Table 1 on dgx-a100-80gb: hardware TFLOP/s per GPU (eq. 3), "
        f"schedule: {variant}",
        "",
        table(results),
        "",
        f"MAPE {mape(results) * 100:.2f} % over {len(results)} rows; worst {worst['params']} "
        f"{worst['error'] * 100:+.1f} %; acceptance (every row within ±{TOLERANCE:.0%}, MAPE ≤ "
        f"{MAPE_LIMIT:.0%}): {verdict}; suite wall time {wall_s:.1f} s",
        "",
        "Where the iteration goes (% of iteration time, averaged over pipeline stages):",
        "",
        breakdown(results),
        "",
        constants(),
    ])


def main(args: argparse.Namespace) -> int:
    """``validate-published`` on this group alone (``args.group`` unset: table1)."""
    from simcluster.validation import runner

    if getattr(args, "group", None) is None:
        args.group = "table1"
    return runner.main(args)
