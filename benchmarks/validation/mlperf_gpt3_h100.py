"""Held-out check: every H100 submission of MLPerf Training's GPT-3 175B (rounds v3.0 to v4.1), predicted vs measured.

    python benchmarks/validation/mlperf_gpt3_h100.py [--json FILE]

Source: the MLCommons results repositories ``mlcommons/training_results_v3.0`` (commit 63e326c4), ``v3.1``
(d06288b2), ``v4.0`` (6fe95437) and ``v4.1`` (b87b9e39): for each submission its launch configuration
(``<org>/benchmarks/gpt3/implementations/<impl>/config_DGXH100_<nodes>x8x<MINIBS>x4x<PP>_mbs<MBS>*.sh`` with the
``config_common.sh``, ``config_fp8.sh`` and ``conf/custom.yaml`` they source) and its three result logs
(``<org>/results/<system>/gpt3/result_{0,1,2}.txt``). The figure is the training time per step, measured from the
logs' MLLOG ``block_start`` -> ``block_stop`` intervals (training steps only: the evaluations run between blocks;
each block's steps = its ``epoch_count`` tokens / (global batch x 2,048)), the median over the blocks after the
first (warm-up), averaged over the three runs (their spread is 0.3 % or less but for v4.1 on 64 nodes, 1.8 %).
Round v3.0 logs the whole run as one block: there the evaluations' ``eval_start`` -> ``eval_stop`` time is taken
out. Tokens/s = global batch x 2,048 / step time. The B200 preview of v4.1 is left out (no B200 device here).

What every submission runs (the model and layout of ``simcluster/data/validation/megatron/mlperf-gpt3-175b.yaml``,
whose top comment gives each source line): GPT-3 175B (96 layers, hidden 12,288, sequence 2,048, vocabulary padded
to 50,688), TP 4, sequence parallel, the interleaved schedule, no activation checkpointing, the distributed optimizer
with overlapped gradient and parameter sync in bf16, TE userbuffers' TP overlap, FP8 (hybrid, delayed scaling),
8 H100 per node on 8 x 400 Gb/s InfiniBand. Per round:

- v3.0 (NeMo 1.17, Transformer Engine ``release_v0.8``): PP 8, 12 virtual stages, micro batch 1. TE 0.8 calls
  FlashAttention 1 (``transformer.py`` imports ``flash_attn_unpadded_func``, the v1 API; ``setup.py`` requires
  ``flash-attn>=1.0.2``): ``training.attention_kernel: fa1``. Three of the five are NVIDIA+CoreWeave's HGX H100
  cloud runs (the same configuration files).
- v3.1 (NeMo r1.20, TE 09ba8427 with flash-attn 2.0.8, which that TE calls before cuDNN's fused attention): PP 8,
  12 virtual stages, micro batch 1; one run is Azure+NVIDIA's on ND H100 v5 (same files). The 64-node log has
  global batch 2,048 (128 accumulation steps) where its only configuration file says MINIBS 192: the log is used.
- v4.0 (NeMo 2.0.0rc0, TE 1.6, which selects cuDNN's fused attention on sm90): FP8 weights (``FP8_PARAMS``; gathered
  in FP8: ``training.fp8_param_gather``); 64 nodes PP 8, 4 virtual stages, micro batch 2,
  global batch 2,304 (the log; the file defaults to 2,048); 1,344 and 1,452 nodes PP 6, 8 virtual stages, micro
  batch 1, with per-layer CUDA graphs (host launch work the simulator keeps).
- v4.1 (NeMo 24.09): as v4.0's 64-node run with 6 virtual stages and global batch 2,048, plus ``VBOOST_VALUE=1``
  (``run.sub``: ``nvidia-smi boost-slider --vboost 1``, which "increases the core clock rate by reducing the off-chip
  memory clock rate": NVIDIA-NeMo/Megatron-Bridge docs/performance-guide.md, "GPU Core Clock Optimization"; by how
  much no source here says, so the simulator keeps its 1,830 MHz) and
  deferred embedding weight gradients.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a source checkout

from simcluster import api  # noqa: E402
from simcluster.validation.stats import held_out_parser, report, step_line, step_record  # noqa: E402

WORKLOAD = ROOT / "simcluster" / "data" / "validation" / "megatron" / "mlperf-gpt3-175b.yaml"
GPUS_PER_NODE, TENSOR, SEQUENCE = 8, 4, 2048


class Row(NamedTuple):
    """One submission: its round, results folder, layout and measured seconds per step (module docstring)."""

    round: str
    system: str
    nodes: int
    global_batch: int
    pipeline: int
    virtual_stages: int
    micro_batch: int
    step_s: float

    @property
    def attention(self) -> str:
        """The attention kernel its Transformer Engine runs: FlashAttention before TE 1.6 (v1 under TE 0.8, v3.0;
        flash-attn 2.0.8 under v3.1's), cuDNN's fused attention after (``auto`` on H100)."""
        return {"v3.0": "fa1", "v3.1": "fa2"}.get(self.round, "auto")

    @property
    def caveat(self) -> str:
        """What the simulation cannot express for this row, and the direction it moves the prediction."""
        return {"v4.1": "VBOOST clock (slow bound)"}.get(self.round, "")


ROWS: tuple[Row, ...] = (
    Row("v3.0", "dgxh100_n64_nemo", 64, 2048, 8, 12, 1, 12.116),
    Row("v3.0", "dgxh100_n96_nemo", 96, 3072, 8, 12, 1, 12.158),
    Row("v3.0", "coreweave_hgxh100_n96_ngc23.04_pytorch", 96, 3072, 8, 12, 1, 12.359),
    Row("v3.0", "coreweave_hgxh100_n192_ngc23.04_pytorch", 192, 3072, 8, 12, 1, 6.395),
    Row("v3.0", "coreweave_hgxh100_n448_ngc23.04_pytorch", 448, 2688, 8, 12, 1, 2.643),
    Row("v3.1", "eos_n64_ngc23.09_nemo", 64, 2048, 8, 12, 1, 11.071),
    Row("v3.1", "eos_n96_ngc23.09_nemo", 96, 3072, 8, 12, 1, 11.092),
    Row("v3.1", "eos-dfw_n512_ngc23.09_nemo", 512, 2048, 8, 12, 1, 1.628),
    Row("v3.1", "eos-dfw_n768_ngc23.09_nemo", 768, 3072, 8, 12, 1, 1.636),
    Row("v3.1", "eos-dfw_n1024_ngc23.09_nemo", 1024, 4096, 8, 12, 1, 1.640),
    Row("v3.1", "eos-dfw_n1280_ngc23.09_nemo", 1280, 2560, 8, 12, 1, 0.947),
    Row("v3.1", "eos-dfw_n1344_ngc23.09_nemo", 1344, 2688, 8, 12, 1, 0.952),
    Row("v3.1", "ND_H100_v5_n1344_pytorch", 1344, 2688, 8, 12, 1, 0.980),
    Row("v4.0", "eos_n64_ngc24.04_nemo", 64, 2304, 8, 4, 2, 10.956),
    Row("v4.0", "eos-dfw_n1344_ngc24.04_nemo", 1344, 2688, 6, 8, 1, 0.921),
    Row("v4.0", "eos-dfw_n1452_ngc24.04_nemo", 1452, 2904, 6, 8, 1, 0.922),
    Row("v4.1", "eos_n32_ngc24.09_nemo", 32, 2048, 8, 6, 2, 18.425),
    Row("v4.1", "eos_n64_ngc24.09_nemo", 64, 2048, 8, 6, 2, 9.594),
)


def published_tokens_per_s(row: Row) -> float:
    """The row's measured training throughput: global batch × sequence / seconds per step."""
    return row.global_batch * SEQUENCE / row.step_s


def overrides(row: Row) -> tuple[str, ...]:
    """``--set`` overrides that turn the v3.1 1,344-node workload into ``row``'s submission."""
    data = row.nodes * GPUS_PER_NODE // (TENSOR * row.pipeline)
    return (f"cluster.nodes={row.nodes}", f"parallelism.data={data}", f"parallelism.pipeline={row.pipeline}",
            f"parallelism.virtual_stages={row.virtual_stages}", f"training.micro_batch={row.micro_batch}",
            f"training.global_batch={row.global_batch}", f"training.attention_kernel={row.attention}",
            f"training.fp8_param_gather={'true' if row.round in ('v4.0', 'v4.1') else 'false'}")


def predict(row: Row) -> dict[str, Any]:
    """The summary of ``row``'s simulation."""
    return api.simulate(api.load(WORKLOAD, overrides(row))).summary


def main(argv: list[str] | None = None) -> int:
    parser = held_out_parser("mlperf_gpt3_h100.py", __doc__)
    args = parser.parse_args(argv)
    out: list[dict[str, Any]] = []
    for row in ROWS:
        rec = step_record(predict(row), published_tokens_per_s(row), row.step_s, round=row.round, system=row.system,
                          gpus=row.nodes * GPUS_PER_NODE, caveat=row.caveat)
        out.append(rec)
        print(f"{row.round} {row.system:40s} {rec['gpus']:6,d} GPUs  {step_line(rec)}", flush=True)
    return report(out, lambda r: r["round"], args.json)


if __name__ == "__main__":
    sys.exit(main())
