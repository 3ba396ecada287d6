"""Eager PyTorch attention without a fused kernel (simcluster.costs.eager_attention)."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.costs import eager_attention as EA
from simcluster.costs.eager import block_extra, launches
from simcluster.costs.memory import activation_bytes_per_layer
from simcluster.plan import costing
from simcluster.plan.costing import model_blocks
from simcluster.plan.plan import compute_model
from simcluster.costs.frameworks import framework
from simcluster.workload import model_ops

UNFUSED = ("training.framework=pytorch", "training.flash_attention=false")


def _p_bytes(kernels, backward: bool) -> float:
    return sum(per for k in kernels if k.backward == backward for b, per in k.terms if b == "p")


def test_score_bytes_are_the_docstring_counts():
    """16-bit code: scale and mask, 4 + 4 B per score each way, five launches (the boolean mask one of them).
    Autocast: the fp32 softmax (+2), the cast to 16 bits (6) and the fp32 dropout (+4) forward; the cast back
    (6), the fp32 dropout (+4) and softmax (+4) backward; no dropout, no dropout widening."""
    plain = EA.score_kernels(autocast=False, dropout=True)
    assert (_p_bytes(plain, False), _p_bytes(plain, True)) == (8.0, 8.0)
    assert sum(launches(k, False) for k in plain) == 5
    auto = EA.score_kernels(autocast=True, dropout=True)
    assert (_p_bytes(auto, False), _p_bytes(auto, True)) == (8 + 2 + 6 + 4, 8 + 6 + 4 + 4)
    assert sum(launches(k, False) for k in auto) == 5 + 2  # the widenings launch nothing
    bare = EA.score_kernels(autocast=True, dropout=False)
    assert (_p_bytes(bare, False), _p_bytes(bare, True)) == (8 + 2 + 6, 8 + 6 + 4)


def test_the_attention_half_grows_by_the_passes_over_the_scores(tmp_path, monkeypatch):
    """pytorch with flash_attention false: the attention half's forward and backward grow by exactly the extra
    kernels' time over b·a·s² scores (one GPU, autocast), the MLP half not at all; with flash attention, and
    under Megatron's unfused path (its fused scale-mask-softmax), the passes are not there."""
    spec = make_spec(tmp_path, *UNFUSED, "model.seq_len=2048")
    ops, cm = model_ops(spec.model, spec.training), compute_model(spec, spec.cluster.device)
    stack = framework("pytorch")
    eager = model_blocks(ops, cm, 1, 1, False, False, stack)
    extra = block_extra(ops, "attn", cm, 1, 1, False, EA.score_kernels(True, spec.model.attention_dropout > 0))
    b, a, s = spec.training.micro_batch, spec.model.heads, spec.model.seq_len
    assert extra.fwd_s > cm.memory_body_time(20 * b * a * s * s, "elementwise") * 0.9
    flash = model_blocks(ops, cm, 1, 1, False, True, stack)
    mega = model_blocks(ops, cm, 1, 1, False, False, framework("megatron"))
    monkeypatch.setattr(costing, "score_kernels", lambda *args: ())
    without = model_blocks(ops, cm, 1, 1, False, False, stack)
    assert eager.attn.fwd_s - without.attn.fwd_s == pytest.approx(extra.fwd_s, rel=1e-9)
    assert eager.attn.bwd_s - without.attn.bwd_s == pytest.approx(extra.bwd_s, rel=1e-9)
    assert eager.mlp == without.mlp
    assert model_blocks(ops, cm, 1, 1, False, True, stack) == flash
    assert model_blocks(ops, cm, 1, 1, False, False, framework("megatron")) == mega


def test_autocast_keeps_the_fp32_softmax_output(tmp_path):
    """Without recompute and without flash attention, eager code under autocast saves 2 B more per score than
    the same layer under FSDP's bf16 parameters (16-bit code: no widening); with flash attention no score is
    kept either way."""
    two = ("parallelism.data=2", "training.global_batch=32")
    one = make_spec(tmp_path, *UNFUSED, *two)
    fsdp = make_spec(tmp_path, *UNFUSED, *two, "parallelism.zero_stage=3")
    flash = [make_spec(tmp_path, "training.framework=pytorch", *two, *z) for z in ((), ("parallelism.zero_stage=3",))]
    m, tr = one.model, one.training
    scores = tr.micro_batch * m.seq_len * m.heads * m.seq_len
    sbh = tr.micro_batch * m.seq_len * m.hidden
    diff = activation_bytes_per_layer(one.model, one.training, one.parallelism) \
        - activation_bytes_per_layer(fsdp.model, fsdp.training, fsdp.parallelism)
    flash_diff = activation_bytes_per_layer(flash[0].model, flash[0].training, flash[0].parallelism) \
        - activation_bytes_per_layer(flash[1].model, flash[1].training, flash[1].parallelism)
    assert diff - flash_diff == pytest.approx(2 * scores)
    assert flash_diff == pytest.approx(4 * sbh)  # the fp32 stream's norm inputs alone (test_autocast_stream)
