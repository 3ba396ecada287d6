"""Held-out check: Megatron-Core's MoE model zoo, Qwen3-235B-A22B on 256 H100 (BF16), predicted vs published step time.

    PYTHONPATH=$PWD python benchmarks/validation/modelzoo_qwen3_h100.py [--json FILE]

Source: yanring/Megatron-MoE-ModelZoo (the Megatron-Core MoE team's best-practice repository; read at e865051),
``best_practice/qwen3/readme.md`` ("Performance Results", H100: 256 H100, NVLink 4th generation, InfiniBand 8 × 50 GB/s;
each row's dispatcher, layout, batch, recompute, step time and TFLOP/s a GPU) and ``best_practice/qwen3/
run_h100_235b.sh`` ("H100 config, 320 TFLOPS"); the settings every row shares from ``model_configs/benchmarking/
Qwen3-235B-A22B.yaml`` (94 layers, hidden 4,096, 64 heads of 128, 4 query groups, q/k RMSNorm, 128 experts of 1,536,
top-8, untied embeddings, sequence 4,096, distributed optimizer with overlapped gradient reduce and parameter gather,
sequence parallel, fused cross-entropy, grouped GEMMs, permute and router fusion, embedding and loss counted in the
pipeline split) and ``sbatch_benchmarking.sh`` (``PR=bf16``: ``--tp-comm-overlap``; ``DISPATCHER=deepep``: the flex
dispatcher's DeepEP backend; ``A2A_OVERLAP=1``: ``--overlap-moe-expert-parallel-comm --delay-wgrad-compute``).

The script's row gives TFLOP/s as Megatron-Core counts them, not a step time: it is turned into one with the table's
own FLOPs a GPU per step (step time × TFLOP/s of the two cross-node rows, 19.7 × 245 and 17.6 × 276, their mean).
Rows the spec cannot carry are printed as skipped with the reason.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a source checkout

from simcluster import api  # noqa: E402
from simcluster.validation.stats import error_summary, held_out_parser  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bridge_moe_recipes import ARCH  # noqa: E402
from bridge_recipes import stage_layers  # noqa: E402


class Row(NamedTuple):
    name: str
    dispatcher: str  #: alltoall | deepep
    tp: int
    ep: int
    pp: int
    vp: int
    mbs: int
    step_s: float  #: published step time (the script's row: from its TFLOP/s, module docstring)
    overlap: bool = False  #: A2A_OVERLAP=1
    recompute: str = "none"  #: the table's recompute column: "norm, act" is selective with NORM_ACT's modules
    modules: tuple[str, ...] = ()  #: training.recompute_modules (Megatron-Core's --recompute-modules)
    balanced: bool = False  #: --moe-router-force-load-balancing
    notes: tuple[str, ...] = ()
    lacks: str | None = None  #: what the spec cannot carry (the row is skipped)


#: The MCore FLOPs a GPU and step of the 235B rows at GBS 2048 (step time × TFLOP/s of the two cross-node rows).
TABLE_TFLOP_PER_STEP = statistics.fmean((19.7 * 245, 17.6 * 276))
#: The table's recompute "norm, act": run_h100_235b.sh's ``--recompute-granularity selective --recompute-modules moe_act
#: layernorm`` (the attention core is not recomputed).
NORM_ACT = {"recompute": "selective", "modules": ("moe_act", "layernorm")}
DROPLESS = "dropless routing without forced balance: the run's router imbalance is not simulated (uniform router)"

ROWS: tuple[Row, ...] = (
    Row("cross-node EP, DeepEP", "deepep", 2, 32, 8, 4, 1, 19.7, **NORM_ACT, notes=(DROPLESS,)),
    Row("cross-node EP, DeepEP, 1F1B overlap", "deepep", 2, 32, 8, 4, 1, 17.6, overlap=True, **NORM_ACT,
        notes=(DROPLESS,)),
    Row("run_h100_235b.sh (320 TFLOPS)", "deepep", 2, 32, 8, 4, 1, TABLE_TFLOP_PER_STEP / 320, overlap=True,
        balanced=True, **NORM_ACT, notes=("CUDA graphs over the router and the dispatcher's preprocessing "
                                          "(--cuda-graph-scope moe_router moe_preprocess): host work the simulator "
                                          "does not cost either way",)),
    Row("intra-node EP, FSDP", "deepep", 2, 8, 1, 1, 4, 17.6, recompute="full",
        lacks="Megatron-Core's FSDP of an MoE model (ZeRO-3 with experts is not in the spec)"),
    Row("intra-node EP, alltoall, PP 32", "alltoall", 2, 8, 32, 3, 1, 24.2, **NORM_ACT, notes=(DROPLESS,)),
    Row("intra-node EP, DeepEP, TP 4", "deepep", 4, 8, 8, 4, 1, 29.0, notes=(DROPLESS,)),
)


def workload(row: Row) -> dict[str, Any]:
    """The workload of ``row`` (module docstring)."""
    model = {**ARCH["Qwen3_235B_a22B"], "seq_len": 4096, "mlp": "swiglu", "tied_embeddings": False}
    data = 256 // (row.tp * row.pp)
    par: dict[str, Any] = {
        "tensor": row.tp, "pipeline": row.pp, "data": data, "sequence_parallel": True, "expert": row.ep,
        "expert_tensor": 1, "zero_stage": 1, "overlap_param_gather": True, "tp_comm_overlap": True,
        "moe_dispatcher": row.dispatcher, "moe_a2a_overlap": row.overlap, "delay_wgrad_compute": row.overlap,
        "stage_layers": stage_layers(94, row.pp * row.vp, True)}
    if row.vp > 1:
        par.update(schedule="interleaved", virtual_stages=row.vp)
    training = {"global_batch": 2048, "micro_batch": row.mbs, "precision": "bf16", "recompute": row.recompute,
                "framework": "megatron", "cross_entropy": "megatron_fused"}
    if row.modules:
        training["recompute_modules"] = list(row.modules)
    return {"name": f"modelzoo-qwen3-235b-{row.dispatcher}-tp{row.tp}-ep{row.ep}-pp{row.pp}", "model": model,
            "training": training, "parallelism": par, "cluster": {"preset": "dgx-h100", "nodes": 32}}


def main(argv: list[str] | None = None) -> int:
    parser = held_out_parser("modelzoo_qwen3_h100.py", __doc__)
    args = parser.parse_args(argv)
    out: list[dict[str, Any]] = []
    errors: list[float] = []
    for row in ROWS:
        rec: dict[str, Any] = {**row._asdict(), "predicted_s": None, "error": None}
        layout = f"TP{row.tp} EP{row.ep} PP{row.pp} VP{row.vp} MBS{row.mbs}"
        if row.lacks:
            print(f"{row.name:38s} {layout:24s} published {row.step_s:5.1f} s  skipped: {row.lacks}")
            out.append(rec)
            continue
        summary = api.simulate(workload(row)).summary
        t = float(summary["iteration_time_s"])
        err = t / row.step_s - 1
        errors.append(err)
        rec.update(predicted_s=t, error=err, mfu=summary["mfu"])
        out.append(rec)
        print(f"{row.name:38s} {layout:24s} published {row.step_s:5.1f} s  predicted {t:5.1f} s  {err:+6.1%} "
              f"(time; − is fast)", flush=True)
        print(f"{'':40s}caveats: {'; '.join(row.notes)}")
    print(f"\nall: {error_summary(errors, absolute_median=True)} ({len(errors)} of {len(ROWS)} rows simulated)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
