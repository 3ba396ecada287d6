"""The held-out Megatron-Core model-zoo check (``benchmarks/validation/modelzoo_qwen3_h100.py``, Qwen3-235B-A22B on
256 H100): every simulated row builds a valid workload with the table's layout (embedding and loss counted in the
pipeline split, the run script's BF16 flags), the script row's TFLOP/s becomes a step time with the table's own FLOPs
a step, and the FSDP row is skipped with its reason. The rows are held out and all too fast (−10 to −44 %,
docs/validation.md): no bound is asserted on their errors."""

from __future__ import annotations

import pytest
from helpers_bench import load_benchmark
from simcluster import api

BM = load_benchmark("modelzoo_qwen3_h100")


def test_every_row_is_simulated_with_the_tables_layout_or_skipped_with_a_reason():
    assert len(BM.ROWS) == 6 and sum(r.lacks is None for r in BM.ROWS) == 5
    for row in BM.ROWS:
        if row.lacks:
            assert "FSDP" in row.lacks
            continue
        spec = api.load(BM.workload(row))
        p = spec.parallelism
        assert spec.num_gpus == 256 and (p.tensor, p.expert, p.pipeline) == (row.tp, row.ep, row.pp)
        assert (p.virtual_stages or 1) == row.vp and sum(p.stage_layers) == 94
        assert p.stage_layers[0] == p.stage_layers[-1] == max(p.stage_layers) - 1  # embedding, loss: a layer each
        assert p.tp_comm_overlap and p.moe_dispatcher == row.dispatcher and p.moe_a2a_overlap == row.overlap
        assert spec.training.precision == "bf16" and spec.training.global_batch == 2048


def test_the_script_rows_tflops_become_a_step_time_with_the_tables_flops():
    assert BM.TABLE_TFLOP_PER_STEP == pytest.approx((19.7 * 245 + 17.6 * 276) / 2)
    script = next(r for r in BM.ROWS if r.name.startswith("run_h100_235b"))
    assert script.step_s == pytest.approx(15.13, abs=0.01) and script.balanced and script.overlap


def test_the_norm_act_rows_recompute_megatron_cores_modules_and_every_note_is_a_sentence():
    """The table's recompute "norm, act" is the run script's ``--recompute-granularity selective --recompute-modules
    moe_act layernorm``: those rows carry the modules (and not the attention core); notes are tuples of sentences."""
    for row in BM.ROWS:
        assert isinstance(row.notes, tuple) and all(isinstance(n, str) and len(n) > 20 for n in row.notes)
        if row.lacks or not row.modules:
            continue
        spec = api.load(BM.workload(row))
        assert spec.training.recompute == "selective"
        assert spec.training.recomputed_modules == {"moe_act", "layernorm"}
    assert sum(bool(r.modules) for r in BM.ROWS) == 4
