"""Memory model: parameter counts, ZeRO model states, Korthikanti 2022 Table 2 activations."""

import pytest

from simcluster.costs import memory as mem
from simcluster.costs import params as P
from simcluster.costs.memory import activation_bytes_per_layer, stage_memory
from simcluster.costs.optimizer_states import state_bytes_per_param
from simcluster.spec.parallelism import ParallelismSpec
from simcluster.spec.training import TrainingSpec
from simcluster.spec.workload import ModelSpec

GPT3 = ModelSpec(layers=96, hidden=12288, heads=96, kv_heads=96, ffn_hidden=4 * 12288, vocab=51200,
                 seq_len=2048, mlp="gelu", tied_embeddings=True)
H, V, S = 12288, 51200, 2048


def layer_psi(h: int, t: int = 1) -> float:
    """Parameters of one GPT layer on one of t tensor-parallel ranks: 12h² + 13h in all (four
    matrices 12h²; QKV, proj, fc1, fc2 biases 3h + h + 4h + h; two layernorms 4h), of which
    the matrices and the column-parallel QKV and fc1 biases (12h² + 7h) are split t ways
    (Shoeybi et al. 2019, Megatron-LM §3)."""
    return (12 * h * h + 7 * h) / t + 6 * h


def training(**kw):
    base = dict(global_batch=1536, micro_batch=1, precision="bf16", optimizer="adam",
                recompute="none", flash_attention=False)
    return TrainingSpec(**{**base, **kw})


def par(**kw):
    base = dict(tensor=8, pipeline=8, data=16, context=1, sequence_parallel=False,
                virtual_stages=1, zero_stage=0)
    return ParallelismSpec(**{**base, **kw})


def test_layer_params_are_12h2_plus_13h():
    h = GPT3.hidden
    assert P.layer_params(GPT3) == 12 * h * h + 13 * h == layer_psi(h)
    assert P.layer_matrix_params(GPT3) == 12 * h * h


def test_gpt3_has_175b_parameters():
    # 96 layers + word embedding (tied with the output layer) + learned positions + final layernorm
    psi = 96 * (12 * H * H + 13 * H) + V * H + S * H + 2 * H
    assert P.total_params(GPT3) == psi
    assert psi == pytest.approx(175.0e9, rel=0.003)  # Brown et al. 2020, Table 2.1: 175.0B


def test_tensor_parallel_splits_all_but_replicated_biases_and_norms():
    assert P.layer_params(GPT3, 8) == pytest.approx(layer_psi(H, 8))


def test_swiglu_and_gqa_counts():
    m = GPT3.model_copy(update={"mlp": "swiglu", "kv_heads": 8, "ffn_hidden": 32768})
    h, d = m.hidden, m.hidden // m.heads
    assert P.layer_matrix_params(m) == h * (h + 2 * 8 * d) + h * h + 3 * h * 32768


@pytest.mark.parametrize("s,b,h,a,t", [(2048, 1, 12288, 96, 8), (4096, 2, 4096, 32, 4), (1024, 4, 2048, 16, 2)])
def test_korthikanti_table2_exact(s, b, h, a, t):
    model = GPT3.model_copy(update={"seq_len": s, "hidden": h, "heads": a, "kv_heads": a, "ffn_hidden": 4 * h})
    sbh = s * b * h

    def act(tensor, sp, recompute):
        return activation_bytes_per_layer(model, training(micro_batch=b, recompute=recompute),
                                          par(tensor=tensor, sequence_parallel=sp))

    assert act(1, False, "none") == pytest.approx(sbh * (34 + 5 * a * s / h), rel=1e-12)
    assert act(t, False, "none") == pytest.approx(sbh * (10 + 24 / t + 5 * a * s / (h * t)), rel=1e-12)
    assert act(t, True, "none") == pytest.approx(sbh * (34 / t + 5 * a * s / (h * t)), rel=1e-12)
    assert act(t, False, "selective") == pytest.approx(sbh * (10 + 24 / t), rel=1e-12)
    assert act(t, True, "selective") == pytest.approx(sbh * 34 / t, rel=1e-12)
    assert act(1, False, "full") == pytest.approx(2 * sbh, rel=1e-12)
    assert act(t, True, "full") == pytest.approx(2 * sbh / t, rel=1e-12)


def test_flash_attention_drops_the_score_term():
    flash = activation_bytes_per_layer(GPT3, training(flash_attention=True), par(sequence_parallel=True))
    sel = activation_bytes_per_layer(GPT3, training(recompute="selective"), par(sequence_parallel=True))
    assert flash == sel


def test_context_parallel_divides_the_sequence():
    one = activation_bytes_per_layer(GPT3, training(recompute="selective"), par(context=1))
    two = activation_bytes_per_layer(GPT3, training(recompute="selective"), par(context=2))
    assert two == pytest.approx(one / 2)


@pytest.mark.parametrize("precision,expect", [("bf16", (2, 4, 12)), ("fp16", (2, 2, 16)), ("fp32", (4, 4, 8))])
def test_megatron_keeps_its_documented_bytes_per_param(precision, expect):
    """Megatron-Core's distributed-optimizer table (docs/source/api-guide/dist_optimizer.md, core_r0.9.0): bf16
    parameters with fp32 gradients 18 B (6 + 12/d), fp16 with fp16 gradients 20 B (4 + 16/d), fp32 16 B (8 + 8/d);
    ZeRO's 16 B (2, 2, 12) is the state count other stacks keep (test_state_bytes)."""
    p = par(zero_stage=0)
    m = stage_memory(GPT3, training(precision=precision), p, layers_on_stage=12, has_embedding=False,
                     has_logits=False, microbatches_in_flight=1)
    n = 12 * layer_psi(H, p.tensor)
    assert (m.weights, m.gradients, m.optimizer_states) == pytest.approx(tuple(x * n for x in expect))
    d = stage_memory(GPT3, training(precision=precision), par(zero_stage=1, data=8), layers_on_stage=12,
                     has_embedding=False, has_logits=False, microbatches_in_flight=1)
    assert d.weights + d.gradients + d.optimizer_states == pytest.approx(
        (expect[0] + expect[1] + expect[2] / 8) * n)


# (weights, gradients, optimizer states) bytes per parameter. Mixed precision (Micikevicius et al. 2018):
# 16-bit weights and gradients, an fp32 master copy (4) plus the optimizer's fp32 state: Adam's two moments
# (8), so K = 12 as in ZeRO (Rajbhandari et al. 2020 §3.1), SGD's momentum (4). Plain fp32: no master copy.
@pytest.mark.parametrize("precision,optimizer,expect", [
    ("bf16", "adam", (2, 2, 12)), ("fp16", "sgd", (2, 2, 8)), ("fp32", "adam", (4, 4, 8)), ("fp32", "sgd", (4, 4, 4))])
def test_state_bytes(precision, optimizer, expect):
    assert state_bytes_per_param(precision, optimizer) == expect


def test_zero_stages_shard_over_data_parallel():
    kw = dict(layers_on_stage=12, has_embedding=False, has_logits=False, microbatches_in_flight=1)
    z = [stage_memory(GPT3, training(), par(zero_stage=s, data=16), **kw) for s in range(4)]
    assert z[1].optimizer_states == pytest.approx(z[0].optimizer_states / 16)
    assert z[1].gradients == z[0].gradients and z[1].weights == z[0].weights
    assert z[2].gradients == pytest.approx(z[0].gradients / 16)
    assert z[2].weights == z[0].weights
    assert z[3].weights == pytest.approx(z[0].weights / 16)
    assert z[3].buffers > z[2].buffers  # two gathered layers in flight
    assert [x.total for x in z] == sorted((x.total for x in z), reverse=True)
    zero4 = par().model_copy(update={"zero_stage": 4})  # past the spec's validation (0..3)
    with pytest.raises(ValueError, match="zero_stage"):
        stage_memory(GPT3, training(), zero4, **kw)


def test_activations_scale_with_layers_and_microbatches():
    t, p = training(recompute="selective"), par(sequence_parallel=True)
    one = stage_memory(GPT3, t, p, layers_on_stage=12, has_embedding=False, has_logits=False, microbatches_in_flight=1)
    eight = stage_memory(GPT3, t, p, layers_on_stage=12, has_embedding=False, has_logits=False, microbatches_in_flight=8)
    sbh = S * 1 * H
    assert one.activations == pytest.approx(12 * sbh * 34 / 8)  # Korthikanti 2022 Table 2: t + sp + selective
    assert eight.activations == pytest.approx(8 * one.activations)


def test_full_recompute_holds_one_layer_being_recomputed():
    t, p = training(recompute="full"), par(sequence_parallel=True)
    m = stage_memory(GPT3, t, p, layers_on_stage=12, has_embedding=False, has_logits=False, microbatches_in_flight=8)
    sbh, a, t = S * H, 96, 8
    # Korthikanti 2022 Table 2: 2sbh/t per layer kept (full recompute + sp), plus one layer's
    # activations without recompute (34/t + 5as/(ht)) while it is recomputed
    assert m.activations == pytest.approx(8 * 12 * 2 * sbh / t + sbh * (34 / t + 5 * a * S / (H * t)))


def test_first_and_last_stage_extras():
    t, p = training(recompute="selective"), par(sequence_parallel=True)
    kw = dict(layers_on_stage=12, microbatches_in_flight=1)
    mid = stage_memory(GPT3, t, p, has_embedding=False, has_logits=False, **kw)
    first = stage_memory(GPT3, t, p, has_embedding=True, has_logits=False, **kw)
    last = stage_memory(GPT3, t, p, has_embedding=False, has_logits=True, **kw)
    sbh, V = 2048 * 12288, 51200
    assert first.activations - mid.activations == pytest.approx(sbh / 8)
    assert last.activations - mid.activations == pytest.approx(4 * sbh / 8 + 4 * 2048 * V / 8)  # 4sbh/t(1+V/h)
    emb = V * 12288 / 8 + 2048 * 12288
    assert first.weights - mid.weights == pytest.approx(2 * emb)
    assert last.weights - mid.weights == pytest.approx(2 * (V * 12288 / 8 + 2 * 12288))  # own copy of tied embedding


def test_tied_embedding_counted_once_without_pipeline():
    t, p = training(), par(pipeline=1)
    both = stage_memory(GPT3, t, p, layers_on_stage=96, has_embedding=True, has_logits=True, microbatches_in_flight=1)
    # one copy of the vocab-parallel embedding (V h / t), the positions and the final layernorm
    psi = 96 * layer_psi(H, 8) + V * H / 8 + S * H + 2 * H
    assert both.weights == pytest.approx(2 * psi)  # 2 bytes per bf16 weight


def test_breakdown_total_and_dict():
    b = mem.MemoryBreakdown(1, 2, 3, 4, 5)
    assert b.total == 15
    assert b.to_dict() == {"weights": 1, "gradients": 2, "optimizer_states": 3, "activations": 4,
                           "buffers": 5, "total": 15}


def test_gpt3_stage_fits_on_an_80gb_gpu():
    """Narayanan 2021's 175B run (t=8, p=8, b=1, 1F1B, full recompute) must fit in 80 GB."""
    m = stage_memory(GPT3, training(recompute="full"), par(), layers_on_stage=12, has_embedding=True,
                     has_logits=False, microbatches_in_flight=8)
    psi = 12 * layer_psi(H, 8) + V * H / 8 + S * H  # the first stage: 12 layers and the embedding
    assert 16 * psi < m.total < 80e9  # at least its mixed-precision Adam states (ZeRO §5: 16 bytes/param)
