"""Held-out check: torchtitan's first FSDP2 runs on 8 H100, full AC against per-op SAC, predicted vs published.

    python benchmarks/validation/torchtitan_pr165.py [--json FILE]

Source: pytorch/torchtitan pull request #165 "Used per-parameter FSDP" (merged 2024-03-28 as 83c879f1),
description, "Numeric Parity / 1D FSDP / Eager: 1k steps of minipile on 8 H100 GPUs, local batch size 8,
sequence length 2048, AC/SAC, bf16 mixed precision, fp32 reduce-scatter": "FSDP2 (AC): 23.92% peak active,
32.64% peak reserved, 6100-6300 WPS" and "FSDP2 (SAC): 52.13% peak active, 62.51% peak reserved, 6600-6800
WPS", percentages of "95.0396 GiB GPU memory". The AC figures are corpus rows (``torchtitan-llama2-7b-h100``,
``-active``, ``-memory``); the SAC ones are checked here, with the AC ones beside them for the difference.

SAC is per-op selective checkpointing: the description's figures are already in the pull request's first
version (#116, 2024-03-06), when ``torchtrain/config_manager.py`` had only ``--training.enable_selective_ac``
and ``parallelize_llama.py``'s policy (at 85263f76) "Saves output of all compute ops, except every second mm"
(``aten.mm`` and the SDPA kernels in ``no_recompute_list``): the policy the ``pytorch`` stack's
``recompute: selective`` models from torchtitan 9dec370 (Dec 2024, the same list and rule). The layer option
("checkpoint every 2nd" block, later the default) came with #125 on 2024-03-14. The FSDP1 rows (a flat
parameter per block, no copy-out) and the ``torch.compile`` rows are not expressible (``pytorch`` is FSDP2 in
eager mode).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a source checkout

from simcluster import api  # noqa: E402
from simcluster.validation.stats import error_summary, held_out_parser  # noqa: E402

BASE = ROOT / "simcluster" / "data" / "validation" / "stacks" / "torchtitan-llama2-7b-h100.yaml"
GIB = 2 ** 30
MEMORY_GIB = 95.0396  #: the description's GPU memory, of which its memory figures are percentages
GPUS = 8
#: (run, training.recompute, tokens/s per GPU (the range's midpoint), peak active %, peak reserved %)
ROWS: tuple[tuple[str, str, float, float, float], ...] = (
    ("FSDP2 (AC)", "full", 6200.0, 23.92, 32.64),
    ("FSDP2 (SAC)", "selective", 6700.0, 52.13, 62.51),
)


def simulate(recompute: str) -> dict[str, float]:
    """Summary of the corpus workload (full AC) with ``recompute``; memory as PyTorch's statistics count it (the
    description's figures are torchtitan's, from ``torch.cuda.memory_stats``: no CUDA context, no NCCL buffers)."""
    d = yaml.safe_load(BASE.read_text())
    d["training"]["recompute"] = recompute
    s = api.simulate(d).summary
    return {"wps": float(s["tokens_per_s"]) / GPUS, "active": float(s["torch_max_memory_allocated_bytes"]) / GIB,
            "reserved": float(s["torch_max_memory_reserved_bytes"]) / GIB}


def main(argv: list[str] | None = None) -> int:
    parser = held_out_parser("torchtitan_pr165.py", __doc__)
    args = parser.parse_args(argv)
    out: list[dict[str, Any]] = []
    held: list[float] = []
    for run, recompute, wps, active, reserved in ROWS:
        corpus = recompute == "full"
        pred = simulate(recompute)
        published = {"wps": wps, "active": active / 100 * MEMORY_GIB, "reserved": reserved / 100 * MEMORY_GIB}
        for key, unit in (("wps", "tokens/s per GPU"), ("active", "GiB peak active"), ("reserved", "GiB peak reserved")):
            err = pred[key] / published[key] - 1
            if not corpus:
                held.append(err)
            out.append({"run": run, "figure": key, "published": published[key], "predicted": pred[key], "error": err,
                        "corpus": corpus})
            print(f"{run:12s} {unit:18s} published {published[key]:9,.1f}  predicted {pred[key]:9,.1f}  {err:+6.1%}"
                  f"{'  (corpus row)' if corpus else ''}")
    print("held out (SAC): " + error_summary(held))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
