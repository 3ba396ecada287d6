"""Held-out check: Megatron-Bridge's DGX-H100 pre-training rows, predicted vs published (dense Llama).

    PYTHONPATH=$PWD python benchmarks/validation/bridge_h100.py [--json FILE]

Source: NVIDIA-NeMo/Megatron-Bridge ``docs/performance-summary.md`` and
``docs/performance-summary-archive.md`` at commit 067f987 (2026-08-22): every DGX-H100 pre-training row
of the releases 25.09, 25.11, 26.02, 26.02.01, 26.04, 26.04.01 and 26.06 (26.08, the current page, has
no DGX-H100 row). Columns kept: release, model, GPUs, precision, GBS, MBS, sequence, TP, PP, CP, VP,
EP, tokens/s/GPU.

Dense rows (Llama 3 8B, Llama 3 70B, Llama 3.1 405B) are simulated in FP8 (``training.precision:
fp8``); MoE rows are out of scope. Every dense H100 row is FP8: the 25.09 H100 table names no
precision, but ``scripts/performance/configs/llama3/llama3_8b_llm_pretrain.yaml`` at fa0315ae2 (the 25.09
page's commit) gives H100 ``bf16: cp 2, use_megatron_fsdp false`` and ``fp8_cs: cp 1,
use_megatron_fsdp true`` -- the row's layout (FSDP 8, CP 1) is the FP8 one -- and
``llama3_70b_llm_pretrain.yaml`` gives ``bf16: pp 4, cp 2`` vs ``fp8_*: pp 8, cp 1``; 25.11 republishes
the same three layouts labelled FP8-CS.

Each row takes its settings from the perf recipe at the Megatron-Bridge version its container ships
(:mod:`bridge_recipes`, which names the files and commits): Megatron's distributed optimizer
(``parallelism.zero_stage: 1``; Megatron-FSDP ``optim_grads_params``: ``zero_stage: 3``, framework
megatron), ``overlap_param_gather``, ``tp_comm_overlap`` (70B, 405B), ``cross_entropy_loss_fusion``
(``training.cross_entropy: megatron_fused``), no recompute unless the recipe sets ``recompute_num_layers``
(8B from v0.2.0: 5, full recompute of each chunk's first five layers, ``training.recompute_num_layers``),
and for the 405B Megatron-Core's
``account_for_{embedding,loss}_in_pipeline_split`` (``parallelism.stage_layers``), and the recipes'
``fp8_param_gather = True`` (FP8 weights, FP8 parameter all-gather: ``training.fp8_param_gather`` since session
17; bf16 gathers before, printed as a caveat). The table's FP8-CS is Transformer Engine's
per-tensor current scaling (``training.fp8_recipe: current``: an amax pass before each cast, cuBLASLt's FP8
GEMMs). Rows whose recipe needs a
setting the simulator lacks are printed as skipped with the reason.
"""

from __future__ import annotations

import copy
import json
import statistics
import sys
from pathlib import Path
from typing import Any, NamedTuple

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a source checkout

from simcluster import api  # noqa: E402
from simcluster.validation.stats import error_summary, held_line, held_out_parser, interval_holds  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bridge_recipes import RECIPES, TABLE_FSDP, stage_layers  # noqa: E402


class Row(NamedTuple):
    """One DGX-H100 pre-training row (VP/EP 0 where the table says n/a)."""

    release: str
    model: str
    gpus: int
    precision: str
    gbs: int
    mbs: int
    seq: int
    tp: int
    pp: int
    cp: int
    vp: int
    ep: int
    tokens_per_gpu: float


#: Every DGX-H100 pre-training row of the Bridge summary pages at 067f987.
ROWS: tuple[Row, ...] = (
    Row("26.06", "LLAMA3.1_405B", 1024, "FP8", 1536, 1, 8192, 8, 8, 2, 8, 0, 326),
    Row("26.06", "Qwen3_30B_a3B", 16, "FP8", 1024, 1, 4096, 1, 1, 1, 0, 16, 8826),
    Row("26.06", "Nemotron_3_Nano", 16, "FP8", 1024, 1, 8192, 1, 1, 1, 0, 8, 14719),
    Row("26.04.01", "LLAMA3_70B", 64, "FP8", 256, 1, 8192, 4, 8, 1, 5, 0, 1664),
    Row("26.04.01", "LLAMA3.1_405B", 1024, "FP8", 1536, 1, 8192, 8, 8, 2, 8, 0, 328),
    Row("26.04.01", "GPT_OSS_120B", 64, "BF16", 1280, 1, 4096, 1, 4, 1, 0, 8, 5824),
    Row("26.04.01", "Qwen3_30B_a3B", 16, "FP8", 1024, 1, 4096, 1, 1, 1, 0, 16, 8960),
    Row("26.04.01", "Qwen3_235B_a22B", 256, "FP8", 8192, 1, 4096, 2, 8, 1, 4, 32, 1712),
    Row("26.04.01", "Nemotron_3_Nano", 16, "FP8", 1024, 1, 8192, 1, 1, 1, 0, 8, 14336),
    Row("26.04", "LLAMA3_70B", 64, "FP8", 256, 1, 8192, 4, 8, 1, 5, 0, 1633),
    Row("26.04", "GPT_OSS_120B", 64, "BF16", 1280, 1, 4096, 1, 4, 1, 0, 8, 5810),
    Row("26.04", "Qwen3_30B_a3B", 16, "FP8", 1024, 1, 4096, 1, 1, 1, 0, 16, 8901),
    Row("26.04", "Qwen3_235B_a22B", 256, "FP8", 8192, 1, 4096, 2, 8, 1, 4, 32, 1686),
    Row("26.04", "Nemotron_3_Nano", 16, "FP8", 1024, 1, 8192, 1, 1, 1, 0, 8, 14507),
    Row("26.02.01", "LLAMA3_70B", 64, "FP8", 256, 1, 8192, 4, 8, 1, 5, 0, 1639),
    Row("26.02.01", "GPT_OSS_120B", 64, "BF16", 1280, 1, 4096, 1, 4, 1, 0, 8, 5984),
    Row("26.02.01", "Qwen3_30B_a3B", 16, "FP8", 1024, 1, 4096, 1, 2, 1, 12, 8, 9058),
    Row("26.02.01", "Qwen3_235B_a22B", 256, "FP8", 8192, 1, 4096, 2, 8, 1, 4, 32, 1611),
    Row("26.02.01", "Nemotron_3_Nano", 16, "FP8", 1024, 1, 8192, 1, 1, 1, 0, 8, 14890),
    Row("26.02", "LLAMA3_70B", 64, "FP8", 256, 1, 8192, 4, 8, 1, 5, 0, 1621),
    Row("26.02", "LLAMA3.1_405B", 1024, "FP8", 1536, 1, 8192, 8, 8, 2, 8, 0, 311),
    Row("26.02", "GPT_OSS_120B", 64, "BF16", 1280, 1, 4096, 1, 4, 1, 0, 8, 5993),
    Row("26.02", "Qwen3_30B_a3B", 16, "FP8", 1024, 1, 4096, 1, 2, 1, 12, 8, 5113),
    Row("26.02", "Qwen3_235B_a22B", 256, "FP8", 8192, 1, 4096, 2, 8, 1, 4, 32, 1633),
    Row("25.11", "LLAMA3_8B", 8, "FP8-CS", 128, 1, 8192, 1, 1, 1, 0, 1, 14451),  # FSDP 8
    Row("25.11", "LLAMA3_70B", 64, "FP8-CS", 128, 1, 8192, 4, 8, 1, 5, 1, 1602),
    Row("25.11", "LLAMA3.1_405B", 1024, "FP8-CS", 512, 1, 8192, 8, 8, 2, 8, 1, 292),
    Row("25.11", "GPT_OSS_120B", 64, "BF16", 512, 4, 4096, 1, 4, 1, 1, 8, 5630),
    Row("25.11", "Qwen3_30B_a3B", 16, "FP8-CS", 512, 2, 4096, 1, 2, 1, 24, 8, 5275),
    Row("25.11", "Qwen3_235B_a22B", 256, "FP8-CS", 2048, 1, 4096, 2, 8, 1, 4, 32, 1575),
    # 25.09: no precision column; FP8 by the recipe layouts (module docstring).
    Row("25.09", "LLAMA3_8B", 8, "FP8*", 128, 1, 8192, 1, 1, 1, 0, 1, 14079),  # FSDP 8
    Row("25.09", "LLAMA3_70B", 64, "FP8*", 128, 1, 8192, 4, 8, 1, 5, 1, 1619),
    Row("25.09", "LLAMA3.1_405B", 1024, "FP8*", 512, 1, 8192, 8, 8, 2, 8, 1, 302),
    Row("25.09", "DeepSeekV3", 1024, "FP8*", 8192, 1, 4096, 2, 8, 1, 4, 64, 1297),
    Row("25.09", "Qwen3_30B_a3B", 16, "FP8*", 512, 2, 4096, 1, 2, 1, 24, 8, 10494),
    Row("25.09", "Qwen3_235B_a22B", 256, "FP8*", 2048, 1, 4096, 2, 8, 1, 4, 32, 1204),
)

#: Dense models the corpus holds, with the workload whose architecture and recipe flags a row reuses.
DENSE: dict[str, Path] = {
    "LLAMA3_8B": ROOT / "workloads" / "llama3-8b.yaml",
    "LLAMA3_70B": ROOT / "workloads" / "llama3-70b.yaml",
    "LLAMA3.1_405B": ROOT / "simcluster" / "data" / "validation" / "megatron" / "nemo-llama31-405b-576.yaml",
}
MOE = ("GPT_OSS", "Qwen3", "DeepSeek", "Nemotron_3", "Kimi")


def skip_reason(row: Row) -> str | None:
    """Why ``row`` is not simulated (None: it is)."""
    if row.model.startswith(MOE) or row.ep > 1:
        return "MoE"
    if row.model not in DENSE:
        return "no corpus workload"
    recipe = RECIPES.get((row.release, row.model))
    if recipe is None:
        return "no recipe read"
    fsdp = TABLE_FSDP.get((row.release, row.model))
    if fsdp is not None and (fsdp > 0) != recipe.fsdp:
        return f"table FSDP {fsdp} vs recipe {recipe.tag} use_megatron_fsdp {recipe.fsdp}"
    return None


def caveats(row: Row) -> list[str]:
    """Recipe settings of a simulated row that the simulator cannot carry (module docstring): none left since
    ``training.fp8_param_gather`` (session 17)."""
    return []


def workload(row: Row) -> dict[str, Any]:
    """The corpus workload of ``row``'s model with the row's layout, batch, node count and recipe."""
    recipe = RECIPES[(row.release, row.model)]
    d = copy.deepcopy(yaml.safe_load(DENSE[row.model].read_text()))
    p = d["parallelism"]
    p.update(tensor=row.tp, pipeline=row.pp, context=row.cp, data=row.gpus // (row.tp * row.pp * row.cp))
    p["sequence_parallel"] = row.tp > 1
    if row.vp > 1:
        p.update(schedule="interleaved", virtual_stages=row.vp)
    else:
        p.pop("virtual_stages", None)
        p.pop("schedule", None)
    layers = stage_layers(d["model"]["layers"], row.pp * max(row.vp, 1), recipe.account_for_embedding_and_loss)
    if layers is not None:
        p["stage_layers"] = layers
    p["zero_stage"] = 3 if recipe.fsdp else 1
    # ZeRO-3 (Megatron-FSDP) gathers each layer's weights before its forward; no post-step all-gather.
    p["overlap_param_gather"] = recipe.overlap_param_gather and not recipe.fsdp
    p["tp_comm_overlap"] = recipe.tp_comm_overlap and row.tp > 1
    t = d["training"]
    # fp8_weight_cache: Megatron-Core's TE layers pass is_first_microbatch (transformer_engine.py, core_r0.10.0)
    # fp8_recipe current: the table's FP8-CS, Transformer Engine's per-tensor current scaling
    t.update(global_batch=row.gbs, micro_batch=row.mbs, precision="fp8", recompute="none", framework="megatron",
             fp8_weight_cache=True, fp8_recipe="current",
             fp8_param_gather=recipe.fp8_param_gather)  # FP8 weights, all-gathered in FP8
    if recipe.recompute_num_layers:  # utils/helpers.py: granularity full, method block, N layers of each chunk
        t.update(recompute="full", recompute_num_layers=recipe.recompute_num_layers)
    t["cross_entropy"] = "megatron_fused" if recipe.cross_entropy_loss_fusion else "auto"
    d["model"]["seq_len"] = row.seq
    d["cluster"]["nodes"] = row.gpus // 8
    d["name"] = f"bridge-{row.release}-{row.model}-{row.gpus}"
    return d


def main(argv: list[str] | None = None) -> int:
    parser = held_out_parser("bridge_h100.py", __doc__)
    args = parser.parse_args(argv)
    out: list[dict[str, Any]] = []
    errors: dict[str, list[float]] = {}
    for row in ROWS:
        layout = f"TP{row.tp} PP{row.pp} CP{row.cp} VP{row.vp or '-'} EP{row.ep or '-'}"
        rec: dict[str, Any] = {**row._asdict(), "predicted": None, "error": None}
        reason = skip_reason(row)
        if reason is None:
            summary = api.simulate(workload(row)).summary
            tok = float(summary["tokens_per_s"]) / row.gpus
            rec.update(predicted=tok, error=tok / row.tokens_per_gpu - 1, caveats=caveats(row),
                       recipe=RECIPES[(row.release, row.model)]._asdict(),
                       inside=interval_holds(summary, "tokens_per_s", row.tokens_per_gpu, row.gpus))
            errors.setdefault(row.release, []).append(rec["error"])
            tail = (f"predicted {tok:9,.0f}  {rec['error']:+7.1%}  {'in' if rec['inside'] else 'OUTSIDE'}  "
                    f"[{RECIPES[(row.release, row.model)].tag}]")
        else:
            rec["skipped"] = reason
            tail = f"skipped: {reason}"
        out.append(rec)
        print(f"{row.release:9s} {row.model:16s} {row.gpus:5d} {layout:26s} published {row.tokens_per_gpu:8,.0f}  "
              f"{tail}", flush=True)
    for release, errs in errors.items():
        print(f"{release}: {error_summary(errs)}")
    every = [e for errs in errors.values() for e in errs]
    if every:
        print(f"all: {error_summary(every, absolute_median=True)}; "
              f"{held_line([r['inside'] for r in out if 'inside' in r])}")
    print(f"\n{len(every)} of {len(ROWS)} DGX-H100 pre-training rows simulated (dense FP8 Llama; caveats: "
          f"{'; '.join(caveats(ROWS[0]))}).")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
