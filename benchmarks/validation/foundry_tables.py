"""Held-out check: every 8-GPU row of llm-foundry's H100 BF16 and A100 80GB tables, predicted vs published.

    python benchmarks/validation/foundry_tables.py [--device h100|a100] [--json FILE]

Source: mosaicml/llm-foundry ``scripts/train/benchmarking/README.md`` (commit 061f2c7), tables
"H100 80GB BF16" and "A100 80GB with 1600 Gbps node-node interconnect (RoCE)": every row on 8 GPUs
(one node; 37 on H100, 59 on A100), MPT-125M to MPT-30B at sequence 512 to 65,536, with its micro
batch, gradient accumulation and activation checkpointing. The corpus (``validate-published``) holds
eleven of these rows; the others were never looked at while building the model, so they measure
how the llm-foundry rows' errors vary with model size and sequence length on each device.

Each row is the corpus' MPT workload (``stacks/foundry-mpt-1b-h100.yaml``: FSDP FULL_SHARD as ZeRO-3,
llm-foundry's FlashAttention in Triton, flash-attn's fused cross-entropy, Composer's two train
metrics) with the row's model (``scripts/train/yamls/pretrain/mpt-<size>.yaml``: d_model, n_heads,
n_layers; vocabulary 50,368), sequence, micro batch, gradient accumulation, ``recompute: full``
where the row checkpoints activations, and the ``dgx-a100-80gb`` preset for the A100 rows.

It prints one line per row (published and predicted tokens/s, signed error) and per device the
MAPE, the median signed error and the share of rows within ±10 %.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a source checkout

from simcluster import api  # noqa: E402
from simcluster.validation.stats import (error_summary, held_out_parser, implied_stack_sigma,  # noqa: E402
                                         sigma_without_stack)

#: MPT sizes (llm-foundry ``scripts/train/yamls/pretrain/mpt-<size>.yaml``): (n_layers, d_model, n_heads).
MODELS: dict[str, tuple[int, int, int]] = {
    "125m": (12, 768, 12), "350m": (24, 1024, 16), "760m": (24, 1536, 12), "1b": (24, 2048, 16),
    "3b": (32, 2560, 20), "7b": (32, 4096, 32), "13b": (40, 5120, 40), "30b": (48, 7168, 56),
}

#: (model, sequence, micro batch, gradient accumulation, activation checkpointing, tokens/s on 8 GPUs)
H100: tuple[tuple[str, int, int, int, bool, int], ...] = (
    ("30b", 8192, 1, 21, True, 11072), ("30b", 4096, 1, 21, True, 14419), ("30b", 2048, 3, 21, True, 16022),
    ("30b", 1024, 6, 21, True, 16672),
    ("13b", 32768, 1, 3, True, 15812), ("13b", 16384, 3, 3, True, 23881), ("13b", 4096, 10, 3, True, 37740),
    ("13b", 2048, 2, 1, False, 38336), ("13b", 1024, 40, 3, True, 44019),
    ("7b", 65536, 1, 2, True, 15654), ("7b", 32768, 2, 2, True, 26550), ("7b", 8192, 8, 2, True, 55481),
    ("7b", 4096, 16, 2, True, 68893), ("7b", 2048, 6, 1, False, 85144), ("7b", 1024, 64, 2, True, 81628),
    ("3b", 65536, 1, 2, True, 26099), ("3b", 32768, 3, 6, True, 46984), ("3b", 16384, 1, 6, False, 89223),
    ("3b", 8192, 3, 6, False, 132626), ("3b", 4096, 5, 6, False, 167712), ("3b", 1024, 20, 6, False, 216369),
    ("3b", 512, 40, 6, False, 223721),
    ("1b", 65536, 1, 2, True, 44050), ("1b", 32768, 1, 4, False, 96203), ("1b", 16384, 2, 4, False, 157194),
    ("1b", 8192, 3, 4, False, 233256), ("1b", 4096, 7, 4, False, 308282), ("1b", 2048, 14, 1, False, 363645),
    ("1b", 1024, 18, 4, False, 391287), ("1b", 512, 56, 4, False, 418201),
    ("760m", 32768, 1, 2, False, 130333), ("760m", 16384, 3, 2, False, 222521), ("760m", 8192, 6, 2, False, 334602),
    ("760m", 4096, 12, 2, False, 443674), ("760m", 2048, 24, 2, False, 505177), ("760m", 1024, 48, 2, False, 628648),
    ("760m", 512, 96, 2, False, 669998),
)
A100: tuple[tuple[str, int, int, int, bool, int], ...] = (
    ("30b", 8192, 1, 21, True, 4594), ("30b", 4096, 1, 21, True, 6513), ("30b", 2048, 3, 21, True, 7330),
    ("30b", 1024, 6, 21, True, 7571), ("30b", 512, 12, 21, True, 7739),
    ("13b", 32768, 1, 3, True, 8134), ("13b", 16384, 3, 3, True, 11454), ("13b", 8192, 5, 3, True, 14362),
    ("13b", 4096, 10, 3, True, 16482), ("13b", 2048, 2, 3, False, 18097), ("13b", 1024, 40, 3, True, 18647),
    ("7b", 65536, 1, 2, True, 8108), ("7b", 32768, 2, 2, True, 13382), ("7b", 16384, 4, 2, True, 19629),
    ("7b", 8192, 8, 2, True, 25655), ("7b", 4096, 16, 2, True, 29472), ("7b", 2048, 6, 2, False, 37130),
    ("7b", 1024, 64, 2, True, 34857),
    ("3b", 65536, 1, 2, True, 14137), ("3b", 32768, 3, 6, True, 24235), ("3b", 16384, 1, 6, False, 44233),
    ("3b", 8192, 3, 6, False, 61567), ("3b", 4096, 5, 6, False, 75658), ("3b", 2048, 10, 2, False, 86491),
    ("3b", 1024, 20, 6, False, 92643), ("3b", 512, 40, 6, False, 97019),
    ("1b", 65536, 1, 2, True, 24353), ("1b", 32768, 1, 4, False, 50207), ("1b", 16384, 2, 4, False, 79650),
    ("1b", 8192, 3, 4, False, 110516), ("1b", 4096, 7, 4, False, 142457), ("1b", 2048, 14, 4, False, 164109),
    ("1b", 1024, 18, 4, False, 176898), ("1b", 512, 56, 4, False, 185186),
    ("760m", 65536, 1, 2, True, 33150), ("760m", 32768, 1, 2, False, 70417), ("760m", 16384, 3, 2, False, 114198),
    ("760m", 8192, 6, 2, False, 167471), ("760m", 4096, 12, 2, False, 218808), ("760m", 2048, 24, 2, False, 259472),
    ("760m", 1024, 48, 2, False, 238122), ("760m", 512, 96, 2, False, 235571),
    ("350m", 65536, 1, 2, False, 60195), ("350m", 32768, 2, 2, False, 109222), ("350m", 16384, 4, 2, False, 188478),
    ("350m", 8192, 8, 2, False, 292559), ("350m", 4096, 16, 2, False, 396442), ("350m", 2048, 32, 2, False, 470263),
    ("350m", 1024, 64, 2, False, 518504), ("350m", 512, 128, 2, False, 554643),
    ("125m", 65536, 1, 2, False, 162946), ("125m", 32768, 2, 2, False, 291256), ("125m", 16384, 4, 2, False, 480322),
    ("125m", 8192, 8, 2, False, 723142), ("125m", 4096, 16, 2, False, 947172), ("125m", 2048, 40, 2, False, 1142641),
    ("125m", 2048, 32, 2, False, 1133901), ("125m", 1024, 64, 2, False, 1251751), ("125m", 512, 128, 2, False, 1325455),
)
TABLES = {"h100": H100, "a100": A100}
BASE = ROOT / "simcluster" / "data" / "validation" / "stacks" / "foundry-mpt-1b-h100.yaml"
GPUS = 8


def workload(device: str, row: tuple[str, int, int, int, bool, int], base: dict[str, Any]) -> dict[str, Any]:
    """The corpus' MPT workload with ``row``'s model, sequence, batch and checkpointing on ``device``."""
    size, seq, mb, ga, ac, _ = row
    layers, hidden, heads = MODELS[size]
    d = copy.deepcopy(base)
    d["name"] = f"foundry-mpt-{size}-{device}-{seq}"
    d["model"].update(layers=layers, hidden=hidden, heads=heads, seq_len=seq)
    d["training"].update(micro_batch=mb, global_batch=mb * ga * GPUS, recompute="full" if ac else "none")
    d["parallelism"]["data"] = GPUS
    if device == "a100":
        d["cluster"]["preset"] = "dgx-a100-80gb"
    return d


def row_error(device: str, row: tuple[str, int, int, int, bool, int], base: dict[str, Any]) -> tuple[float, float]:
    """(predicted tokens/s, signed error against the published figure) of one table row."""
    predicted, _, _ = row_prediction(device, row, base)
    return predicted, predicted / row[5] - 1


def row_prediction(device: str, row: tuple[str, int, int, int, bool, int],
                   base: dict[str, Any]) -> tuple[float, list[float], float]:
    """(predicted tokens/s, its 80 % interval, σ of ln T without the stack term) of one table row: the
    summary's ``iteration_time_sigma`` with the ``stack_sigma`` it holds taken out in quadrature."""
    result = api.simulate(workload(device, row, base))
    s, u = result.summary, result.details["uncertainty"]
    rest = sigma_without_stack(u)
    return float(s["tokens_per_s"]), [float(x) for x in s["tokens_per_s_interval"]], rest


def corpus_rows() -> set[tuple[str, str, int, int]]:
    """(device, model, sequence, micro batch) of the table rows the corpus holds (8-GPU ``foundry-mpt-*`` rows on
    H100 or A100 80GB): the held-out figures below leave them out."""
    from simcluster.spec import load_workload
    from simcluster.validation import corpus

    sizes = {(h, a): name for name, (_, h, a) in MODELS.items()}
    out: set[tuple[str, str, int, int]] = set()
    for group in corpus.load_corpus():
        for r in group.rows:
            if not r.key.startswith("foundry-mpt-") or r.device not in ("h100", "a100-80gb"):
                continue
            spec = load_workload(r.path)
            if spec.num_gpus == GPUS:
                out.add(("h100" if r.device == "h100" else "a100", sizes[(spec.model.hidden, spec.model.heads)],
                         spec.model.seq_len, spec.training.micro_batch))
    return out


def held_out(base: dict[str, Any]) -> tuple[list[float], list[float], list[bool]]:
    """Over every table row the corpus does not hold: ln(predicted / published), σ without the stack term, and
    whether the 80 % interval holds the published figure."""
    shared = corpus_rows()
    logs: list[float] = []
    rests: list[float] = []
    inside: list[bool] = []
    for device, table in TABLES.items():
        for row in table:
            if (device, row[0], row[1], row[2]) in shared:
                continue
            predicted, bounds, rest = row_prediction(device, row, base)
            logs.append(math.log(predicted / row[5]))
            rests.append(rest)
            inside.append(bounds[0] <= row[5] <= bounds[1])
    return logs, rests, inside


def main(argv: list[str] | None = None) -> int:
    parser = held_out_parser("foundry_tables.py", __doc__)
    parser.add_argument("--device", choices=sorted(TABLES), action="append", help="only this table (repeatable)")
    args = parser.parse_args(argv)
    base = yaml.safe_load(BASE.read_text())
    shared = corpus_rows()
    out: list[dict[str, Any]] = []
    held_logs: list[float] = []
    held_sigmas: list[float] = []
    for device in args.device or ["h100", "a100"]:
        errors: list[float] = []
        inside = held = 0
        for row in TABLES[device]:
            predicted, bounds, rest = row_prediction(device, row, base)
            error = predicted / row[5] - 1
            errors.append(error)
            in_corpus = (device, row[0], row[1], row[2]) in shared
            if not in_corpus:
                held += 1
                inside += bounds[0] <= row[5] <= bounds[1]
                held_logs.append(math.log(predicted / row[5]))
                held_sigmas.append(rest)
            out.append({"device": device, "model": row[0], "seq": row[1], "micro_batch": row[2],
                        "grad_accum": row[3], "checkpointing": row[4], "published": row[5],
                        "predicted": predicted, "interval": bounds, "error": error, "in_corpus": in_corpus})
            print(f"{device} {row[0]:>5s} seq {row[1]:6d} mb {row[2]:3d} ga {row[3]:2d} "
                  f"{'AC' if row[4] else '  '}  published {row[5]:9,d}  predicted {predicted:11,.0f}  "
                  f"{error:+7.1%}{'  (corpus row)' if in_corpus else ''}", flush=True)
        within = sum(abs(e) <= 0.10 for e in errors)
        print(f"{device}: {error_summary(errors)}, within ±10 % {within} of {len(errors)}; "
              f"80 % intervals holding the published figure: {inside} of the {held} rows outside the corpus\n",
              flush=True)
    if held_logs:
        print(f"software stack σ these {len(held_logs)} held-out rows imply (pytorch, method of moments): "
              f"{implied_stack_sigma(held_logs, held_sigmas):.4f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
