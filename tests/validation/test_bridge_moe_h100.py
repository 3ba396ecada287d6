"""The held-out Megatron-Bridge MoE check (``benchmarks/validation/bridge_moe_h100.py``): its simulated rows
build valid workloads whose layout is the table's (GPT-OSS's with its alternating windows, the rows whose recipe
sets moe_a2a_overlap with Megatron-Core's merged 1F1B), the rest are skipped with a reason, and the 26.06 Qwen3-30B-A3B row (recipe v0.5.0) stays within ±20 %. GPT-OSS's rows are held out
and far off (+63 to +68 %, docs/validation.md): no bound is asserted on them.

The bound: the row (16 H100, EP 16 over two nodes, dropless, FP8 current scaling) predicts −7.9 % today (−6.8 % before
its q/k RMSNorms were costed, session 30); its caveat (HybridEP simulated as an NCCL all-to-all) is a
few percent of an iteration whose all-to-all is about half exposed, so ±20 % guards the MoE path (expert
grid, grouped GEMMs, inter-node all-to-all) without holding it to the ±10 % of the dense rows.
"""

from __future__ import annotations

from helpers_bench import load_benchmark
from simcluster import api

BM = load_benchmark("bridge_moe_h100")

SIMULATED = [r for r in BM.MOE_ROWS if BM.reason(r) is None]


def test_every_moe_row_is_simulated_or_skipped_with_a_reason():
    assert len(BM.MOE_ROWS) == 23
    assert {(r.release, r.model) for r in SIMULATED} == {
        ("25.09", "Qwen3_30B_a3B"), ("25.09", "Qwen3_235B_a22B"), ("26.04", "Qwen3_30B_a3B"),
        ("26.04.01", "Qwen3_30B_a3B"), ("26.06", "Qwen3_30B_a3B"), ("26.02", "Qwen3_30B_a3B"),
        ("25.11", "Qwen3_235B_a22B"), ("26.02", "Qwen3_235B_a22B"), ("26.02.01", "Qwen3_235B_a22B"),
        ("26.04", "Qwen3_235B_a22B"), ("26.04.01", "Qwen3_235B_a22B"),
        ("26.02", "GPT_OSS_120B"), ("26.02.01", "GPT_OSS_120B"), ("26.04", "GPT_OSS_120B"),
        ("26.04.01", "GPT_OSS_120B")}
    for row in BM.MOE_ROWS:
        assert BM.reason(row) is None or len(BM.reason(row)) > 20


def test_every_simulated_row_builds_a_valid_workload_with_the_table_layout():
    for row in SIMULATED:
        spec = api.load(BM.workload(row))
        p, t, m = spec.parallelism, spec.training, spec.model
        oss = row.model == "GPT_OSS_120B"
        assert spec.num_gpus == row.gpus
        assert t.precision == ("bf16" if oss else "fp8") and (oss or t.fp8_recipe == "current")
        assert (p.tensor, p.pipeline, p.context, p.expert) == (row.tp, row.pp, row.cp, row.ep)
        assert (p.virtual_stages or 1) == max(row.vp, 1)
        assert (t.global_batch, t.micro_batch) == (row.gbs, row.mbs)
        assert p.expert_tensor == 1 and m.moe is not None and m.moe.top_k == (4 if oss else 8)
        # GPT-OSS: Megatron-Core's window_attn_skip_freq 2, a 128-key window on layers 0, 2, 4, ...
        assert (m.sliding_window, m.full_attention_every) == ((128, 2) if oss else (None, None))
        # moe_a2a_overlap: Megatron-Core's merged 1F1B with delayed weight gradients (utils/overrides.py)
        merged = BM.recipe(row).a2a_overlap
        assert (p.moe_a2a_overlap, p.delay_wgrad_compute) == (merged, merged)
        assert merged == ((row.model, row.release) == ("Qwen3_30B_a3B", "26.02")
                          or (row.model == "Qwen3_235B_a22B" and row.release != "25.09"))
        if row.model == "Qwen3_235B_a22B":  # CommOverlapConfig(tp_comm_overlap=False) on H100 from v0.2.0
            assert p.tp_comm_overlap == (row.release == "25.09")


def test_the_235b_stages_account_for_embedding_and_loss():
    row = next(r for r in SIMULATED if r.model == "Qwen3_235B_a22B")
    layers = BM.workload(row)["parallelism"]["stage_layers"]
    assert layers == [2] + [3] * 30 + [2] and sum(layers) == 94


def test_the_2606_qwen3_30b_row_is_within_twenty_percent():
    row = next(r for r in SIMULATED if (r.release, r.model) == ("26.06", "Qwen3_30B_a3B"))
    tokens = float(api.simulate(BM.workload(row)).summary["tokens_per_s"]) / row.gpus
    assert abs(tokens / row.tokens_per_gpu - 1) <= 0.20
