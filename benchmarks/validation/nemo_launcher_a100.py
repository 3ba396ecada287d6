"""Held-out check: NeMo Megatron's 2022 DGX A100 scaling tables, GPT-3 5B and 175B, predicted vs published.

    python benchmarks/validation/nemo_launcher_a100.py [--json FILE]

Source: NVIDIA/NeMo-Framework-Launcher (then NeMo-Megatron-Launcher) ``README.md``, "7.1.2. Training Performance
Results", in two editions: the one of 2022-07-14 (d4317ddd, "Update README.md"; 5B on 1, 2, 5, 9, 10, 18, 20 nodes,
39,543 to 731,791 tokens/s; 175B on 16, 32, 128 nodes, 20,642, 38,025, 141,306 tokens/s, the row mislabelled "5B")
and the one first published at commit 3579cdb3 (2022-09-07) and kept unchanged until the README was replaced
(9dbd2dad, 2023-10-06): "NVIDIA DGX SuperPOD (16 x 8 x A100 80GB for 5B GPT model)", "(128 x 8 x A100 80GB for 175B
GPT model)", tokens per second on 1, 2, 4, 8, 16, 32 nodes (5B: 40,345 to 1,159,288) and on 8, 16, 32, 64, 128 nodes
(175B: 7,500 to 109,684). Twenty-one figures of Megatron-LM's stack (NeMo Megatron on Apex's Megatron, before
Megatron-Core) on A100 that the corpus does not hold: its A100 Megatron-LM rows are Narayanan et al. 2021's and
Korthikanti et al. 2022's, the runs the model was built against; these measure the A100 intervals away from them.

Each edition is simulated with the launcher's configuration files of its own commit. July (d4317ddd): 5B = TP 2,
PP 1, micro batch 2, global batch 1440, no recompute; 175B = TP 8, PP 8, micro batch 2, global batch 1536, selective
recompute, sequence parallelism; both ``fused_adam`` (no distributed optimizer). The node counts fit those
batches (5B on 9 nodes: 36 data-parallel ranks of 20 microbatches; 175B on 16 nodes: 2 of 384). September:
``conf/training/gpt3/5b.yaml`` and ``175b.yaml`` at 3579cdb3 (the commit that published the table):
5B = 24 layers, hidden 4096, 32 heads, TP 1, PP 1, micro batch 2, no activation checkpointing
(``activations_checkpoint_num_layers: 0``), no sequence parallelism; 175B = 96 layers, hidden 12288, 96 heads,
TP 8, PP 8, micro batch 2, selective recompute, sequence parallelism; both sequence 2048, global batch 2048, bf16
with ``megatron_amp_O2`` (fp32 master weights), ``distributed_fused_adam`` (Apex's distributed Adam: ZeRO-1 with
the gradient reduction overlapped with the backward, the parameter all-gather after the step), hidden dropout
0.1, GPT-2 BPE vocabulary (50,257) padded to a multiple of 128 × TP (50,304, 50,432 and 51,200), tied embeddings. The
data-parallel size is what the nodes leave: 8 × nodes / (TP × PP). Assumed: the table ran those files with the
node count changed (global batch kept, so the microbatches per pipeline fall from 128 to 4 for 5B and from 1,024
to 64 for 175B); the 2022 stack's unfused attention with Megatron's fused softmax (no FlashAttention in NeMo
before 2023); 1F1B (no virtual pipeline in the files); DGX A100 80GB nodes with 8 HDR NICs (the SuperPOD).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a source checkout

from simcluster import api  # noqa: E402
from simcluster.validation.stats import held_out_parser, interval_holds, report  # noqa: E402

#: (edition, model, nodes, published tokens/s of the whole run) of the README's tables.
ROWS: tuple[tuple[str, str, int, float], ...] = (
    ("2022-07", "5b", 1, 39543), ("2022-07", "5b", 2, 79128), ("2022-07", "5b", 5, 195047),
    ("2022-07", "5b", 9, 344523), ("2022-07", "5b", 10, 383500), ("2022-07", "5b", 18, 670254),
    ("2022-07", "5b", 20, 731791),
    ("2022-07", "175b", 16, 20642), ("2022-07", "175b", 32, 38025), ("2022-07", "175b", 128, 141306),
    ("2022-09", "5b", 1, 40345), ("2022-09", "5b", 2, 79815), ("2022-09", "5b", 4, 161754), ("2022-09", "5b", 8, 312774),
    ("2022-09", "5b", 16, 659481), ("2022-09", "5b", 32, 1159288),
    ("2022-09", "175b", 8, 7500), ("2022-09", "175b", 16, 14950), ("2022-09", "175b", 32, 29537),
    ("2022-09", "175b", 64, 58211), ("2022-09", "175b", 128, 109684),
)
#: What the July files set differently from the September ones (d4317ddd against 3579cdb3).
JULY: dict[str, dict[str, dict[str, Any]]] = {
    "5b": {"model": {"vocab": 50432}, "training": {"global_batch": 1440}, "parallelism": {"tensor": 2, "zero_stage": 0}},
    "175b": {"training": {"global_batch": 1536}, "parallelism": {"zero_stage": 0}},
}
GPUS_PER_NODE = 8
#: The two configurations (conf/training/gpt3/{5b,175b}.yaml at 3579cdb3), in the spec's keys.
BASE: dict[str, dict[str, Any]] = {
    "5b": {
        "model": {"layers": 24, "hidden": 4096, "heads": 32, "seq_len": 2048, "vocab": 50304},
        "training": {"global_batch": 2048, "micro_batch": 2, "precision": "bf16", "recompute": "none",
                     "flash_attention": False, "framework": "megatron"},
        "parallelism": {"tensor": 1, "pipeline": 1, "zero_stage": 1, "overlap_grad_reduce": True},
    },
    "175b": {
        "model": {"layers": 96, "hidden": 12288, "heads": 96, "seq_len": 2048, "vocab": 51200},
        "training": {"global_batch": 2048, "micro_batch": 2, "precision": "bf16", "recompute": "selective",
                     "flash_attention": False, "framework": "megatron"},
        "parallelism": {"tensor": 8, "pipeline": 8, "sequence_parallel": True, "schedule": "1f1b",
                        "zero_stage": 1, "overlap_grad_reduce": True},
    },
}


Row = tuple[str, str, int, float]


def workload(row: Row) -> dict[str, Any]:
    """The workload of ``row``: its edition's configuration of its model on its nodes, data parallelism filling them."""
    edition, size, nodes, _ = row
    d = copy.deepcopy(BASE[size])
    if edition == "2022-07":
        for section, keys in JULY[size].items():
            d[section].update(keys)
    par = d["parallelism"]
    par["data"] = nodes * GPUS_PER_NODE // (par["tensor"] * par["pipeline"])
    d["name"] = f"nemo-launcher-{edition}-gpt3-{size}-{nodes}n"
    d["cluster"] = {"preset": "dgx-a100-80gb", "nodes": nodes}
    return d


def predict(row: Row) -> dict[str, Any]:
    """The summary of ``row``'s simulation."""
    return api.simulate(workload(row)).summary


def main(argv: list[str] | None = None) -> int:
    parser = held_out_parser("nemo_launcher_a100.py", __doc__)
    args = parser.parse_args(argv)
    out: list[dict[str, Any]] = []
    for row in ROWS:
        edition, size, nodes, published = row
        summary = predict(row)
        tok = float(summary["tokens_per_s"])
        rec = {"edition": edition, "model": size, "nodes": nodes, "published": published, "predicted": tok,
               "error": tok / published - 1, "inside": interval_holds(summary, "tokens_per_s", published)}
        out.append(rec)
        print(f"{edition} {size:>4s} on {nodes:3d} nodes  published {published:11,.0f}  predicted {tok:11,.0f}  "
              f"{rec['error']:+6.1%}  {'in' if rec['inside'] else 'OUTSIDE'}", flush=True)
    return report(out, lambda r: f"{r['edition']} {r['model']}", args.json)


if __name__ == "__main__":
    sys.exit(main())
