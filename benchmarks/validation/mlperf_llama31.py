"""Held-out check: MLPerf Training's Llama 3.1 405B (v5.0) and 8B (v5.1) on H100 and H200, predicted vs measured.

    python benchmarks/validation/mlperf_llama31.py [--json FILE]

Source: ``mlcommons/training_results_v5.0`` (commit 0fdc28f0) and ``v5.1`` (441d65f4): every H100 and H200
submission of the two benchmarks (closed division; GB200, B200, B300 and MI3xx are left out: no such device
here), each with its launch configuration (``<org>/benchmarks/<benchmark>/implementations/<impl>/config_*.sh`` and
the ``config_common*.sh``, ``conf/custom.yaml`` and ``pretrain.py`` it runs) and its result logs. The figure is the
training time per step from the MLLOG lines: each ``block_start`` -> ``block_stop`` interval holds only training
steps (the evaluations run between blocks; its steps are the samples to the next evaluation over the global
batch, in sequences), the median over the blocks after the first (warm-up), the median over the runs (3 for
405B, 10 for 8B; within 0.3 % of each other but for 405B on 304 and 320 nodes, 2.5 % and 1.9 %). Wall time per
step, as the GPT-3 check takes it: the logs' per-step ``train_step_time`` reads 0.3-2.5 % lower for 405B and 3
and 9 % lower for Cisco's 8B runs (it leaves the host's work and the occasional slow step out). Nebius's v5.1
405B results are byte-identical copies of its v5.0 ones and counted once.

405B (``simcluster/data/validation/megatron/mlperf-llama31-405b.yaml``, the v5.0 NVIDIA 1,024-node run, whose top
comment gives each source line): NeMo 2.2.0, TP 8 (Nebius: 4), PP 8, 8 virtual stages with the embedding and the
loss counted as a layer each in the split, CP 2, micro batch 1, sequence 8192, FP8 E4M3 with delayed scaling and
FP8 weights gathered in FP8 (``training.fp8_param_gather``), bf16 gradient reduction, TP overlap, the output layer's weight
gradient deferred, no recompute, no CUDA graphs, cuDNN attention. The vocabulary (Mixtral-8x22B's tokenizer,
32,000) pads to 32,768 at TP 8 and 32,256 at TP 4 (the Nebius log).

8B (Llama31Config8B: 32 layers, hidden 4096, FFN 14336, 32 heads, 8 K/V groups, vocabulary 128,256, sequence
8192), micro batch 1, one microbatch per data-parallel rank, FP8, the distributed optimizer:
- Cisco (H100, Ethernet fabric of 8 x 400 Gb/s per node; NeMo 2.4.0): NVIDIA's v5.0 scripts, TP 1 on 8 nodes and
  TP 2 with sequence parallelism on 16; its ``pretrain.py`` leaves the TP-overlap callback commented out, so
  ``tp_comm_overlap`` is off.
- HPE (XD670, H200; NeMo of the 25.08 container): CP 2, TP 1, FP8 hybrid with current (tensorwise) scaling,
  full-iteration CUDA graphs (host launch work the simulator keeps: a slow bound), TE's fused cross-entropy.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a source checkout

from simcluster import api  # noqa: E402
from simcluster.validation.stats import held_out_parser, report, step_line, step_record  # noqa: E402

WORKLOAD_405B = ROOT / "simcluster" / "data" / "validation" / "megatron" / "mlperf-llama31-405b.yaml"
GPUS_PER_NODE, SEQUENCE = 8, 8192
#: The 8B model and what every 8B submission sets (module docstring).
MODEL_8B: dict[str, Any] = {"layers": 32, "hidden": 4096, "heads": 32, "kv_heads": 8, "ffn_hidden": 14336,
                            "seq_len": SEQUENCE, "vocab": 128256, "mlp": "swiglu", "tied_embeddings": False}


class Row(NamedTuple):
    """One submission: benchmark, round, submitter, results folder, device, layout, measured seconds per step."""

    model: str  # 405b | 8b
    round: str
    submitter: str
    system: str
    device: str  # h100 | h200
    nodes: int
    tensor: int
    context: int
    global_batch: int
    step_s: float

    @property
    def data(self) -> int:
        """Data-parallel ranks: the GPUs over tensor × pipeline × context (PP 8 for 405B, 1 for 8B)."""
        return self.nodes * GPUS_PER_NODE // (self.tensor * (8 if self.model == "405b" else 1) * self.context)

    @property
    def caveat(self) -> str:
        """What the simulation cannot express for this row, and the direction it moves the prediction."""
        return "full-iteration CUDA graphs (slow bound)" if self.submitter == "HPE" else ""


ROWS: tuple[Row, ...] = (
    Row("405b", "v5.0", "NVIDIA", "eos-dfw_n64_ngc25.01_nemo", "h100", 64, 8, 2, 1152, 55.24),
    Row("405b", "v5.0", "NVIDIA", "eos-dfw_n256_ngc25.01_nemo", "h100", 256, 8, 2, 1152, 14.256),
    Row("405b", "v5.0", "NVIDIA", "eos-dfw_n304_ngc25.01_nemo", "h100", 304, 8, 2, 1216, 12.895),
    Row("405b", "v5.0", "NVIDIA", "eos-dfw_n320_ngc25.01_nemo", "h100", 320, 8, 2, 1120, 11.355),
    Row("405b", "v5.0", "NVIDIA", "eos-dfw_n1024_ngc25.01_nemo", "h100", 1024, 8, 2, 1536, 5.252),
    Row("405b", "v5.0", "Nebius", "nebius_soperator_8xH200_n64_ngc25.01_nemo", "h200", 64, 4, 2, 1152, 50.04),
    Row("405b", "v5.0", "Nebius", "nebius_soperator_8xH200_n128_ngc25.01_nemo", "h200", 128, 4, 2, 1152, 25.387),
    Row("8b", "v5.1", "Cisco", "hpf_n8", "h100", 8, 1, 1, 64, 0.742),
    Row("8b", "v5.1", "Cisco", "hpf_n16", "h100", 16, 2, 1, 64, 0.528),
    Row("8b", "v5.1", "HPE", "HPE-Cray-XD670-H200-SXM5-141GB_n8_25.09", "h200", 8, 1, 2, 32, 0.354),
)


def published_tokens_per_s(row: Row) -> float:
    """The row's measured training throughput: global batch × 8192 / seconds per step."""
    return row.global_batch * SEQUENCE / row.step_s


def workload(row: Row) -> dict[str, Any] | Path:
    """The workload of ``row``: the 405B file, or the 8B spec built from :data:`MODEL_8B` (overrides: :func:`overrides`)."""
    if row.model == "405b":
        return WORKLOAD_405B
    hpe = row.submitter == "HPE"
    return {
        "name": f"mlperf-llama31-8b-{row.submitter.lower()}-{row.nodes}n",
        "model": dict(MODEL_8B),
        "training": {"global_batch": row.global_batch, "micro_batch": 1, "precision": "fp8",
                     "fp8_recipe": "current" if hpe else "delayed", "fp8_weight_cache": True, "fp8_param_gather": True,
                     "grad_reduce_in_bf16": True, "cross_entropy": "megatron_fused", "recompute": "none",
                     "flash_attention": True, "framework": "megatron"},
        "parallelism": {"tensor": row.tensor, "pipeline": 1, "context": row.context, "data": row.data,
                        "sequence_parallel": row.tensor > 1, "zero_stage": 1, "overlap_param_gather": True},
        "cluster": {"preset": f"dgx-{row.device}", "nodes": row.nodes},
    }


def overrides(row: Row) -> tuple[str, ...]:
    """``--set`` overrides that turn the 405B workload (NVIDIA, 1,024 nodes) into ``row``'s submission."""
    if row.model != "405b":
        return ()
    out = (f"cluster.nodes={row.nodes}", f"parallelism.data={row.data}", f"training.global_batch={row.global_batch}")
    if row.device != "h100":
        out += (f"cluster.preset=dgx-{row.device}",)
    if row.tensor != 8:
        padded = -(-32000 // (128 * row.tensor)) * 128 * row.tensor
        out += (f"parallelism.tensor={row.tensor}", f"model.vocab={padded}")
    return out


def predict(row: Row) -> dict[str, Any]:
    """The summary of ``row``'s simulation."""
    return api.simulate(api.load(workload(row), overrides(row))).summary


def main(argv: list[str] | None = None) -> int:
    parser = held_out_parser("mlperf_llama31.py", __doc__)
    args = parser.parse_args(argv)
    out: list[dict[str, Any]] = []
    for row in ROWS:
        rec = step_record(predict(row), published_tokens_per_s(row), row.step_s, model=row.model, round=row.round,
                          submitter=row.submitter, system=row.system, device=row.device,
                          gpus=row.nodes * GPUS_PER_NODE, caveat=row.caveat)
        out.append(rec)
        print(f"{row.model:4s} {row.round} {row.submitter:6s} {row.device} {rec['gpus']:5,d} GPUs  {step_line(rec)}",
              flush=True)
    return report(out, lambda r: f"{r['model']} {r['device']}", args.json)


if __name__ == "__main__":
    sys.exit(main())
