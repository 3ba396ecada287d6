"""The software stacks (``training.framework``): each mechanism against its closed form."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.catalogue import FRAMEWORKS as NAMES
from simcluster.costs.frameworks import FRAMEWORKS, HOST_OP_S, framework
from simcluster.costs.torch_step import CLIP_GRAD_BYTES, FOREACH_ADAM_BYTES
from simcluster.costs.memory import stage_memory
from simcluster.plan import build_plan
from simcluster.plan.costing import CAST_FWD_BYTES, block_cost, op_time, optimizer_time
from simcluster.plan.plan import compute_model
from simcluster.run import simulate_workload
from simcluster.workload import model_ops


def test_registry_is_the_catalogue():
    assert FRAMEWORKS.names() == sorted(NAMES)


def _ops(tmp_path, *overrides):
    spec = make_spec(tmp_path, *overrides)
    return spec, model_ops(spec.model, spec.training), compute_model(spec, spec.cluster.device)


def test_loss_passes_are_the_stacks_kernels(tmp_path):
    """Cross entropy over [b·s, V]: bytes per logit of each stack's passes (frameworks docstring)."""
    spec, ops, cm = _ops(tmp_path)
    loss = next(o for o in ops.head if o.kind == "loss")
    n = loss.elements
    torch_fwd = cm.memory_time(6 * n, "copy") + cm.memory_time(8 * n, "normalization")
    assert op_time(loss, cm, 1, 1, False, True, False, framework("pytorch")) == pytest.approx(torch_fwd, rel=1e-12)
    torch_bwd = cm.memory_time(4 * n, "elementwise") + cm.memory_time(12 * n, "normalization") \
        + cm.memory_time(6 * n, "copy")
    assert op_time(loss, cm, 1, 1, False, True, True, framework("pytorch")) == pytest.approx(torch_bwd, rel=1e-12)
    # Megatron's vocab-parallel cross entropy: 38 B forward in six kernels, 14 B backward in two; split by t
    fwd_bytes = sum(b for _, b in framework("megatron").loss_fwd)
    assert fwd_bytes == 38 and sum(b for _, b in framework("megatron").loss_bwd) == 14
    t8 = op_time(loss, cm, 8, 1, False, True, False, framework("megatron"))
    assert t8 < op_time(loss, cm, 1, 1, False, True, False, framework("megatron")) / 4


def test_autocast_adds_the_weight_cast(tmp_path):
    """PyTorch AMP: each GEMM's forward also reads its fp32 weight and writes a bf16 copy (6 B per weight)."""
    spec, ops, cm = _ops(tmp_path)
    qkv = next(o for o in ops.layer if o.name == "qkv")
    _, n, k = qkv.gemm
    extra = op_time(qkv, cm, 2, 1, False, True, False, framework("pytorch")) \
        - op_time(qkv, cm, 2, 1, False, True, False, framework("megatron"))
    assert extra == pytest.approx(cm.memory_time(CAST_FWD_BYTES * n * k / 2, "copy"), rel=1e-9)


def test_host_bound_block_takes_the_dispatch_time(tmp_path):
    """A block too small to keep the GPU busy takes ops × host_op_s; jax (one compiled program) does not."""
    spec, ops, cm = _ops(tmp_path, "model.hidden=64", "model.heads=1", "model.seq_len=8", "model.vocab=64")
    attn = list(ops.block("attn"))
    eager = block_cost(attn, cm, 1, 1, False, True, framework("megatron"))
    host_fwd = len(attn) * HOST_OP_S  # ln, qkv, core, proj, residual: one op each
    assert eager.fwd_s == pytest.approx(host_fwd, rel=1e-12)
    xla = block_cost(attn, cm, 1, 1, False, True, framework("jax"))
    assert xla.fwd_s < host_fwd and xla.fwd_s == pytest.approx(
        sum(op_time(o, cm, 1, 1, False, True, False) for o in attn), rel=1e-12)


def test_large_blocks_are_not_host_bound(tmp_path):
    spec, ops, cm = _ops(tmp_path, "model.hidden=8192", "model.heads=64", "model.seq_len=4096")
    attn = list(ops.block("attn"))
    gpu = sum(op_time(o, cm, 1, 1, False, True, False) for o in attn)
    assert block_cost(attn, cm, 1, 1, False, True, framework("megatron")).fwd_s == gpu


def test_foreach_adam_reads_and_writes_80_bytes_after_clipping_12(tmp_path):
    """PyTorch: clip_grad_norm_ (norm read 4, unconditional scale 4 + 4) then foreach AdamW's eight passes,
    on the rank's shard; the other stacks' steps carry no separate clipping pass."""
    spec, ops, cm = _ops(tmp_path)
    secs, nbytes = optimizer_time(cm, "adam", 1e9, 1, framework("pytorch"))
    assert nbytes == (FOREACH_ADAM_BYTES + CLIP_GRAD_BYTES) * 1e9 == 92e9
    sharded_s, sharded_b = optimizer_time(cm, "adam", 1e9, 8, framework("pytorch"))
    assert sharded_b == pytest.approx(92e9 / 8) and sharded_s < secs / 4
    sgd_s, sgd_b = optimizer_time(cm, "sgd", 1e9, 1, framework("pytorch"))  # clipping whatever the optimizer
    assert sgd_b - CLIP_GRAD_BYTES * 1e9 == optimizer_time(cm, "sgd", 1e9, 1, framework("deepspeed"))[1]
    fused_s, fused_b = optimizer_time(cm, "adam", 1e9, 1, framework("deepspeed"))
    assert fused_b == 30e9 and secs > 2 * fused_s
    for name in ("megatron", "deepspeed", "jax"):
        assert framework(name).clip_grad_bytes == 0


def test_pytorch_memory_holds_fp32_states_casts_and_the_loss_spike(tmp_path):
    """Llama-style 128k vocabulary on one GPU: what PyTorch holds beyond Megatron, term by term."""
    kw = dict(layers_on_stage=8, has_embedding=True, has_logits=True, microbatches_in_flight=1)
    spec = make_spec(tmp_path, "model.vocab=128256", "model.seq_len=8192")
    torch_spec = make_spec(tmp_path, "model.vocab=128256", "model.seq_len=8192", "training.framework=pytorch")
    meg = stage_memory(spec.model, spec.training, spec.parallelism, **kw)
    pt = stage_memory(torch_spec.model, torch_spec.training, torch_spec.parallelism, **kw)
    n = meg.weights / 2  # parameters (16-bit weights under Megatron)
    assert pt.weights == pytest.approx(n * (4 + 2))  # fp32 parameters and their bf16 copies
    assert pt.gradients == pytest.approx(n * 4) and pt.optimizer_states == pytest.approx(n * 8)
    b, h = spec.training.micro_batch, spec.model.hidden
    logits = b * 8192 * 128256
    # autocast with fp32 parameters: an fp32 residual stream, 4 B more per element of x and layer (GPT code)
    stream = 4 * b * 8192 * h * 8
    # saved: 6 B (bf16 logits + fp32 log-softmax) vs Megatron's 4; alive inside the backward: 8 B more
    assert pt.activations - meg.activations == pytest.approx((6 - 4) * logits + 8 * logits + stream)
    assert pt.total - meg.total > 8e9  # the 128k-vocabulary spike is gigabytes


def test_deepspeed_zero3_fetches_each_linear_layer(tmp_path):
    """DeepSpeed ZeRO-3: one all-gather per linear layer (4 for a GeLU block) instead of one per layer,
    each paying the collective's latency: never faster than FSDP's per-layer gather."""
    common = ("parallelism.data=8", "parallelism.zero_stage=3", "model.layers=2", "training.global_batch=8")
    fsdp = simulate_workload(make_spec(tmp_path, *common, "training.framework=pytorch"))
    ds = simulate_workload(make_spec(tmp_path, *common, "training.framework=deepspeed"))

    def gathers(out):
        return sum(1 for t in out.tasks.tasks if t.name.startswith("zero.all_gather L0"))
    assert gathers(ds) == 4 * gathers(fsdp)
    assert build_plan(ds.spec).shape.gather_parts == 4


def test_deepspeed_pipeline_sends_block_and_reduce_after_the_flush(tmp_path):
    common = ("parallelism.pipeline=2", "parallelism.data=4", "training.global_batch=32", "model.layers=4")
    meg = simulate_workload(make_spec(tmp_path, *common))
    ds = simulate_workload(make_spec(tmp_path, *common, "training.framework=deepspeed"))
    tasks = ds.tasks.tasks
    start, end = ds.result.start, ds.result.end
    sends = [t for t in tasks if t.kind == "send"]
    assert sends
    for s in sends:  # every later compute task of the sender's rank starts after the send ends
        r = s.ranks[0]
        later = [t for t in tasks if t.kind == "compute" and r in t.ranks and start[t.id] >= start[s.id]]
        assert all(start[t.id] >= end[s.id] - 1e-12 for t in later)
    last_bwd = max(end[t.id] for t in tasks if t.kind == "compute")
    reduce = [t for t in tasks if t.kind == "collective" and t.phase == "dp_comm"]
    assert reduce and min(start[t.id] for t in reduce) >= min(
        end[t.id] for t in tasks if t.kind == "compute" and t.phase == "backward"
        and t.microbatch == ds.tasks.meta["microbatches"] - 1) - 1e-12
    assert ds.summary["iteration_time_s"] > meg.summary["iteration_time_s"]
    assert last_bwd > 0


def test_gradient_accumulation_pass_per_microbatch(tmp_path):
    """DeepSpeed's bf16 optimizer (and autocast's .grad) add each 16-bit weight gradient into fp32
    after every micro-step: 18 B per weight in two kernels; Megatron fuses it into the GEMM."""
    spec, ops, cm = _ops(tmp_path)
    fc1 = next(o for o in ops.layer if o.name == "fc1")
    _, n, k = fc1.gemm
    extra = op_time(fc1, cm, 1, 1, False, True, True, framework("deepspeed")) \
        - op_time(fc1, cm, 1, 1, False, True, True, framework("megatron"))
    w = n * k
    assert extra == pytest.approx(cm.memory_time(6 * w, "copy") + cm.memory_time(12 * w, "elementwise"), rel=1e-9)
    assert op_time(fc1, cm, 1, 1, False, True, True, framework("jax")) == \
        op_time(fc1, cm, 1, 1, False, True, True, framework("megatron"))


@pytest.mark.parametrize("zero, microbatches, per_weight", [
    (0, 1, 0.0), (0, 4, 6.0 * 3 / 4), (1, 32, 6.0 * 31 / 32)])
def test_deepspeed_fp16_accumulates_in_the_16_bit_grad(tmp_path, zero, microbatches, per_weight):
    """DeepSpeed's FP16_Optimizer and old stage-1 ZeRO (DeeperSpeed eb7f5cff, GPT-NeoX-20B's) hook no
    gradient: autograd adds each micro-step's fp16 gradient into .grad in place (2 + 2 read, 2 write)
    from the second micro-step on, one kernel; bf16 keeps the 18 B fp32 pass, ZeRO-3 its own."""
    spec, ops, cm = _ops(tmp_path)
    fc1 = next(o for o in ops.layer if o.name == "fc1")
    _, n, k = fc1.gemm
    fp16 = framework("deepspeed", zero, precision="fp16", microbatches=microbatches)
    assert not fp16.grad_accum_cast
    extra = op_time(fc1, cm, 1, 1, False, True, True, fp16) - op_time(fc1, cm, 1, 1, False, True, True,
                                                                       framework("megatron"))
    expected = cm.memory_time(per_weight * n * k, "elementwise") if per_weight else 0.0
    assert extra == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert framework("deepspeed", zero, precision="bf16", microbatches=microbatches).grad_accum_bytes == 18.0
    assert framework("deepspeed", 3, precision="fp16", microbatches=microbatches).grad_accum_bytes == 12.0


def test_pytorch_with_zero3_is_fsdp_not_autocast(tmp_path):
    """FSDP casts shards before the all-gather (no per-weight cast in the forward) and casts each
    microbatch's bf16 gradient to fp32 for the reduce-scatter (6 B per weight)."""
    from simcluster.costs.frameworks import FSDP_GRAD_CAST_BYTES
    fsdp, amp = framework("pytorch", 3), framework("pytorch", 0)
    assert amp.autocast and not fsdp.autocast and fsdp.grad_accum_bytes == FSDP_GRAD_CAST_BYTES == 6
    spec, ops, cm = _ops(tmp_path)
    fc2 = next(o for o in ops.layer if o.name == "fc2")
    _, n, k = fc2.gemm
    assert op_time(fc2, cm, 1, 1, False, True, False, fsdp) == op_time(fc2, cm, 1, 1, False, True, False)
    extra = op_time(fc2, cm, 1, 1, False, True, True, fsdp) - op_time(fc2, cm, 1, 1, False, True, True)
    assert extra == pytest.approx(cm.memory_time(6 * n * k, "copy"), rel=1e-9)


# --- eager PyTorch's extra kernels (simcluster.costs.eager) and FSDP2's copy-out ---------------------------

LLAMA = ("model.mlp=swiglu", "model.kv_heads=2", "model.heads=8", "model.hidden=1024", "model.ffn_hidden=2816",
         "model.seq_len=2048", "training.framework=pytorch")


def _bytes(kernels, backward, basis):
    return sum(per for k in kernels if k.backward == backward for b, per in k.terms if b == basis)


def test_rmsnorm_and_rope_inventory_is_the_eager_chain():
    """torchtitan RMSNorm: 36 B per element of x in eight kernels forward (a fused norm: 4 B, which the graph
    keeps), so 32 B in seven extra launches; autograd's backward 82 B in fourteen. RoPE on q: cast 6, complex
    multiply 8, cast back 6 each way, three kernels and three views forward."""
    from simcluster.costs.eager import TORCHTITAN_LLAMA, inventory_bytes, launches
    assert (inventory_bytes("rmsnorm", False, "x"), inventory_bytes("rmsnorm", True, "x")) == (32, 82)
    norm = [k for k in TORCHTITAN_LLAMA if k.name.startswith("rmsnorm") and k.block == "attn"]
    assert _bytes(norm, False, "x") == 32 and sum(launches(k, True) for k in norm if not k.backward) == 7
    assert _bytes(norm, True, "x") == 82 and sum(launches(k, True) for k in norm if k.backward) == 14
    rope_q = [k for k in TORCHTITAN_LLAMA if k.name.startswith("rope.q")]
    assert _bytes(rope_q, False, "q") == _bytes(rope_q, True, "q") == 20
    assert sum(launches(k, True) for k in rope_q if not k.backward) == 3
    assert sum(k.kind == "view" for k in rope_q) == 3
    # SwiGLU: silu on its own (read 2, write 2 B per element of b·s·f) and its backward (4 + 2)
    assert _bytes(TORCHTITAN_LLAMA, False, "f") == 4 and _bytes(TORCHTITAN_LLAMA, True, "f") == 6


def test_llama_attention_block_extra_time_is_the_kernels_closed_form(tmp_path):
    """The attention half's extra forward: RMSNorm's chain over x, RoPE over q and k, repeat_kv's copies of
    k and v (GQA), each kernel one bandwidth-bound launch."""
    from simcluster.costs.eager import block_extra
    spec, ops, cm = _ops(tmp_path, *LLAMA)
    b, s = spec.training.micro_batch, spec.model.seq_len
    x, q, k = b * s * 1024, b * s * 1024, b * s * 2 * 128
    mt = cm.memory_time
    want = (mt(6 * x, "copy") + mt(8 * x) + mt(4 * x, "normalization") + 2 * mt(0) + mt(8 * x) + mt(6 * x, "copy")
            + mt(6 * q, "copy") + mt(8 * q) + mt(6 * q, "copy") + mt(6 * k, "copy") + mt(8 * k) + mt(6 * k, "copy")
            + 2 * mt(2 * k + 2 * q, "copy"))
    extra = block_extra(ops, "attn", cm, 1, 1, False)
    assert extra.fwd_s == pytest.approx(want, rel=1e-12)
    # host ops: 7 norm + 3 views + 2×(3 rope kernels + 3 views) + 2 repeat_kv + 5 views forward
    assert extra.host_fwd == 7 + 3 + 12 + 2 + 5
    mha = block_extra(model_ops(*(lambda s_: (s_.model, s_.training))(make_spec(tmp_path, *LLAMA, "model.kv_heads=8"))),
                      "attn", cm, 1, 1, False)
    assert mha.host_fwd == extra.host_fwd - 2 and mha.host_bwd == extra.host_bwd - 2  # n_rep == 1: no repeat_kv


def test_only_pytorch_runs_the_eager_kernels(tmp_path):
    """The eager kernels belong to the pytorch stack; Llama-style (SwiGLU) model code adds them both ways,
    LayerNorm/GeLU models (MPT's LPLayerNorm, nn.GELU) with a 16-bit residual stream (FSDP's bf16
    parameters, ZeRO-3) launch what the graph lists in the forward and only the backward's QKV-split cat
    and bias gradients beyond it."""
    from simcluster.plan.costing import model_blocks
    spec, ops, cm = _ops(tmp_path, *LLAMA)
    blocks = {n: model_blocks(ops, cm, 1, 1, False, True, framework(n)) for n in ("megatron", "pytorch")}
    assert blocks["pytorch"].attn.fwd_s > blocks["megatron"].attn.fwd_s
    assert blocks["pytorch"].mlp.bwd_s > blocks["megatron"].mlp.bwd_s
    gelu_spec, gelu_ops, _ = _ops(tmp_path, "training.framework=pytorch")
    eager = model_blocks(gelu_ops, cm, 1, 1, False, True, framework("pytorch", 3))
    from dataclasses import replace
    plain = model_blocks(gelu_ops, cm, 1, 1, False, True, replace(framework("pytorch", 3), eager_layer=False))
    assert (eager.attn.fwd_s, eager.mlp.fwd_s) == (plain.attn.fwd_s, plain.mlp.fwd_s)
    assert eager.attn.bwd_s > plain.attn.bwd_s and eager.mlp.bwd_s > plain.mlp.bwd_s
    for name in ("megatron", "deepspeed", "jax"):
        assert not framework(name, 3).eager_layer
    for name in ("megatron", "jax"):
        assert framework(name, 3).gather_copy_out_bytes == 0


#: llm-foundry scripts/train/benchmarking/README.md (commit b2a43a147), table "H100 80GB BF16", row
#: "7b | 2048 | 8": NumParams 6,658,859,008 — the MPT-7B of the benchmark yamls, biases included.
MPT7B_NUM_PARAMS = 6_658_859_008


def test_gpt_eager_backward_adds_the_qkv_split_cat_and_the_bias_gradients(tmp_path):
    """MPT/GPT eager code (simcluster.costs.eager, GPT_EAGER): the backward's ``cat`` of dq, dk, dv (split's
    derivative, 2 + 2 B per element of q, k and v) and one column sum per linear layer's bias (read its
    output gradient, 2 B per element: QKV 3h, projection h, fc1 f, fc2 h per token); nothing forward."""
    from simcluster.costs.eager import GPT_EAGER, block_extra, stack_kernels
    spec, ops, cm = _ops(tmp_path, "training.framework=pytorch")
    b, s, h = spec.training.micro_batch, spec.model.seq_len, spec.model.hidden
    x = q = k = b * s * h
    f = 4 * x
    mt = cm.memory_time
    assert stack_kernels(ops.mlp, True, True, True) == GPT_EAGER
    attn, mlp = (block_extra(ops, n, cm, 1, 1, False, GPT_EAGER) for n in ("attn", "mlp"))
    assert attn.bwd_s == pytest.approx(mt(4 * q + 8 * k, "copy") + mt(2 * q + 4 * k, "normalization")
                                       + mt(2 * x, "normalization"), rel=1e-12)
    assert mlp.bwd_s == pytest.approx(mt(2 * f, "normalization") + mt(2 * x, "normalization"), rel=1e-12)
    assert attn.fwd_s == mlp.fwd_s == 0.0 and (attn.host_bwd, mlp.host_bwd) == (3, 2)
    # tensor parallel: q, k and f are split by t, x (no sequence parallelism) is not
    t2 = block_extra(ops, "mlp", cm, 2, 1, False, GPT_EAGER)
    assert t2.bwd_s == pytest.approx(mt(f, "normalization") + mt(2 * x, "normalization"), rel=1e-12)


def test_the_benchmarked_mpt_has_biases():
    """The premise of the bias gradients: the table's NumParams of MPT-7B is the count with every bias
    (12·h²·L + 13·h·L + V·h + s·h + 2·h), 1,179,648 more than without the linear layers' 9·h·L."""
    from pathlib import Path
    from simcluster.api import load
    from simcluster.costs.params import total_params
    root = Path(__file__).resolve().parents[2]
    spec = load(root / "simcluster/data/validation/stacks/foundry-mpt-7b-h100.yaml")
    assert total_params(spec.model) == MPT7B_NUM_PARAMS  # with no_bias: true, 9·h·L fewer


def test_fsdp2_copies_out_every_gathered_weight(tmp_path):
    """FSDP2 (``foreach_all_gather_copy_out``): split_with_sizes_copy of the bf16 gather buffer into the
    parameters, 4 B per weight of the layer, after the forward gather and the backward re-gather."""
    from simcluster.plan.costing import gather_copy_time
    common = ("parallelism.data=8", "parallelism.zero_stage=3", "model.layers=2", "training.global_batch=8")
    spec, ops, cm = _ops(tmp_path, *common, "training.framework=pytorch")
    h = spec.model.hidden
    weights = 12 * h * h  # a GeLU layer's GEMM weights (QKV 3h², projection h², MLP 8h²); biases, norms left out
    assert spec.model.ffn_hidden in (None, 4 * h)
    assert gather_copy_time(ops, cm, 1, framework("pytorch", 3)) == pytest.approx(
        cm.memory_time(4 * weights, "copy"), rel=1e-12)
    assert gather_copy_time(ops, cm, 1, framework("pytorch", 0)) == 0.0
    out = simulate_workload(spec)
    copies = [t for t in out.tasks.tasks if t.name.startswith("zero.copy_out L0")]
    gathers = [t for t in out.tasks.tasks if t.name.startswith("zero.all_gather L0")]
    assert copies and len(copies) == len(gathers)
    start, end = out.result.start, out.result.end
    assert min(start[c.id] for c in copies) >= min(end[g.id] for g in gathers) - 1e-12
    meg = simulate_workload(make_spec(tmp_path, *common))
    assert not [t for t in meg.tasks.tasks if t.name.startswith("zero.copy_out")]


def test_op_sac_recomputes_every_second_mm_and_the_memory_bound_kernels(tmp_path):
    """torchtitan's op SAC on a Llama layer: mms wq, wk, wv, wo, w1, w3, w2 — wk, wo, w3 rerun — plus every
    memory-bound kernel; the SDPA output is kept (no attention FLOPs recomputed)."""
    from simcluster.costs.eager import block_extra
    from simcluster.plan.costing import model_blocks
    spec, ops, cm = _ops(tmp_path, *LLAMA, "training.recompute=selective")
    b, s, h, f, kv = spec.training.micro_batch, spec.model.seq_len, 1024, 2816, 2 * 128
    M = b * s
    blocks = model_blocks(ops, cm, 1, 1, False, True, framework("pytorch", 3))
    assert blocks.core_rc_flops == pytest.approx(2.0 * M * (kv * h + h * h + f * h))
    memory_bound = sum(op_time(o, cm, 1, 1, False, True, False, framework("pytorch", 3)) for o in ops.layer
                       if o.kind not in ("gemm", "attention"))
    extra = sum(block_extra(ops, k, cm, 1, 1, False).fwd_s for k in ("attn", "mlp"))
    gemms = cm.gemm_time(M, kv, h) + cm.gemm_time(M, h, h) + cm.gemm_time(M, f, h)
    assert blocks.core_rc_s == pytest.approx(memory_bound + extra + gemms, rel=1e-12)
    # Megatron's selective recompute stays the attention core
    meg = model_blocks(ops, cm, 1, 1, False, True, framework("megatron"))
    core = next(o for o in ops.layer if o.kind == "attention")
    assert meg.core_rc_flops == core.fwd_flops


def test_op_sac_memory_is_the_saved_outputs(tmp_path):
    """Per token and layer (16-bit): input h, wq a·d, wv g·d, w1 f, w2 h, SDPA output a·d; fp32 LSE per head.
    On one GPU (autocast with fp32 parameters) the layer's input is the fp32 residual stream: 2 B more per h."""
    from simcluster.costs.memory import activation_bytes_per_layer
    spec = make_spec(tmp_path, *LLAMA, "training.recompute=selective")
    sb = spec.model.seq_len * spec.training.micro_batch
    want = sb * (2 * (1024 + 1024 + 256 + 2816 + 1024 + 1024) + 4 * 8)
    assert activation_bytes_per_layer(spec.model, spec.training, spec.parallelism) == pytest.approx(want + sb * 2 * 1024)
    meg = make_spec(tmp_path, *LLAMA[:-1], "training.recompute=selective")
    assert activation_bytes_per_layer(meg.model, meg.training, meg.parallelism) > want  # Korthikanti's 34·sbh-like


def test_eager_llama_saves_fp32_norm_inputs_and_repeated_kv(tmp_path):
    """Without recompute, eager Llama code keeps x.float() for each RMSNorm (+2 B per element of x, twice)
    and the a-head K and V repeat_kv hands SDPA (+2·2·(a − g)·d B per token) over what Megatron keeps; on
    one GPU (autocast with fp32 parameters) also the fp32 stream's +10 B per element of x
    (costs.autocast_stream.saved_bytes: x̂ twice, three more 16-bit casts)."""
    from simcluster.costs.memory import activation_bytes_per_layer
    torch_spec, meg = make_spec(tmp_path, *LLAMA), make_spec(tmp_path, *LLAMA[:-1])
    sb = torch_spec.model.seq_len * torch_spec.training.micro_batch
    extra = activation_bytes_per_layer(torch_spec.model, torch_spec.training, torch_spec.parallelism) \
        - activation_bytes_per_layer(meg.model, meg.training, meg.parallelism)
    assert extra == pytest.approx(sb * (4 * 1024 + 4 * (8 - 2) * 128 + 10 * 1024))


def test_megatron_2019_layer_adds_the_unfused_kernels_closed_form(tmp_path):
    """training.fused_kernels: false — Megatron-LM 2019's separate ops (simcluster.costs.eager, MEGATRON_2019):
    the attention half's extra forward over the scores p = b·a·s² (mask multiply and subtract), q and k
    (scalings, QKV bias, context permute) and x (bias, dropout)."""
    from simcluster.costs.eager import MEGATRON_2019, block_extra, stack_kernels
    spec, ops, cm = _ops(tmp_path, "training.flash_attention=false", "training.fused_kernels=false")
    b, s, h, a = spec.training.micro_batch, spec.model.seq_len, spec.model.hidden, spec.model.heads
    x = q = k = b * s * h
    p = b * a * s * s
    mt = cm.memory_time
    want = (mt(4 * q + 8 * k) + mt(4 * q) + mt(4 * k) + mt(4 * p) + 2 * mt(0) + mt(4 * p) + mt(4 * q, "copy")
            + mt(4 * x) + mt(5 * x))
    kernels = stack_kernels(ops.mlp, False, False, False)
    assert kernels == MEGATRON_2019
    assert block_extra(ops, "attn", cm, 1, 1, False, kernels).fwd_s == pytest.approx(want, rel=1e-12)
    flash = stack_kernels(ops.mlp, False, False, True)  # no score tensor under flash attention
    assert len(flash) == len(MEGATRON_2019) - 3 and not any(b_ == "p" for k_ in flash for b_, _ in k_.terms)
    assert stack_kernels(ops.mlp, False, True, False) == ()
    fused = build_plan(make_spec(tmp_path, "training.flash_attention=false")).blocks.attn
    legacy = build_plan(spec).blocks.attn
    from simcluster.costs.rng_state import fork_s  # and the RNG-state swaps around its dropout
    assert legacy.fwd_s - fused.fwd_s == pytest.approx(want + fork_s(HOST_OP_S), rel=1e-9)


def test_fused_kernels_false_outside_megatron_is_an_error(tmp_path):
    from simcluster.errors import SpecError
    with pytest.raises(SpecError) as err:
        make_spec(tmp_path, "training.framework=jax", "training.fused_kernels=false")
    assert "training.fused_kernels" in str(err.value)
    eager = make_spec(tmp_path, "training.framework=pytorch", "training.fused_kernels=false")  # pytorch's own
    assert build_plan(eager).stack == build_plan(make_spec(tmp_path, "training.framework=pytorch")).stack


def test_pytorch_with_fused_kernels_launches_only_the_rotary_kernels(tmp_path):
    """training.fused_kernels: true with pytorch (lit-gpt/TinyLlama: flash-attn RMSNorm and rotary, xformers
    SwiGLU): no eager chains, no repeat_kv; flash-attn's in-place rotary on q and on k, 4 B per element each way."""
    from simcluster.costs.eager import FUSED_LLAMA, basis_sizes, block_extra
    spec, ops, cm = _ops(tmp_path, *LLAMA, "training.fused_kernels=true")
    stack = build_plan(spec).stack
    assert stack.fused_model and not stack.eager_layer
    sizes, _ = basis_sizes(ops, 1, 1, False)
    extra = block_extra(ops, "attn", cm, 1, 1, False, FUSED_LLAMA)
    assert extra.fwd_s == pytest.approx(cm.memory_time(4 * sizes["q"], "elementwise")
                                        + cm.memory_time(4 * sizes["k"], "elementwise"))
    assert block_extra(ops, "mlp", cm, 1, 1, False, FUSED_LLAMA).fwd_s == 0.0
    eager = build_plan(make_spec(tmp_path, *LLAMA, "training.framework=pytorch")).blocks
    fused = build_plan(spec).blocks
    assert fused.attn.fwd_s < eager.attn.fwd_s and fused.mlp.bwd_s < eager.mlp.bwd_s


@pytest.mark.parametrize("precision, microbatches, per_weight", [
    ("bf16", 1, 10.0), ("bf16", 8, 10.0),          # the main_grad hook after every microbatch: 2 + 4 + 4
    ("fp16", 1, 0.0), ("fp16", 4, 6.0 * 3 / 4),    # autograd's in-place add from the second microbatch on
    ("fp32", 2, 12.0 / 2)])
def test_megatron_without_accumulation_fusion_adds_one_pass_per_weight(tmp_path, precision, microbatches, per_weight):
    """Megatron-LM before Feb 2022 (commit 83b1e42): a separate accumulation add after each weight-gradient
    GEMM, one kernel (megatron/model/distributed.py at de7dc40); fused since, no pass."""
    spec, ops, cm = _ops(tmp_path)
    fc1 = next(o for o in ops.layer if o.name == "fc1")
    _, n, k = fc1.gemm
    unfused = framework("megatron", accumulation_fusion=False, precision=precision, microbatches=microbatches)
    extra = op_time(fc1, cm, 1, 1, False, True, True, unfused) - op_time(fc1, cm, 1, 1, False, True, True,
                                                                          framework("megatron"))
    expected = cm.memory_time(per_weight * n * k, "elementwise") if per_weight else 0.0
    assert extra == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_accumulation_fusion_false_is_megatron_only(tmp_path):
    from simcluster.errors import SpecError
    with pytest.raises(SpecError, match="training.gradient_accumulation_fusion"):
        make_spec(tmp_path, "training.gradient_accumulation_fusion=false", "training.framework=pytorch")
    spec = make_spec(tmp_path, "training.gradient_accumulation_fusion=false", "training.precision=fp16")
    assert build_plan(spec).stack.grad_accum_bytes == pytest.approx(6.0 * (spec.num_microbatches - 1)
                                                                    / spec.num_microbatches)


def test_fused_cross_entropy_is_one_kernel_each_way_over_the_16_bit_logits(tmp_path):
    """flash-attn's cross-entropy (flash_attn/ops/triton/cross_entropy.py): forward one online-softmax read
    (2 B per logit), backward read 2 + write 2; it keeps only the logits (2 B) and adds the gradient (2 B)."""
    spec, ops, cm = _ops(tmp_path)
    loss = next(o for o in ops.head if o.kind == "loss")
    n = loss.elements
    fused = framework("pytorch", cross_entropy="fused")
    assert op_time(loss, cm, 1, 1, False, True, False, fused) == pytest.approx(cm.memory_time(2 * n, "normalization"))
    assert op_time(loss, cm, 1, 1, False, True, True, fused) == pytest.approx(cm.memory_time(4 * n, "elementwise"))
    from simcluster.costs.memory import loss_transient_bytes, stage_extra_activation_bytes
    big = make_spec(tmp_path, "model.vocab=128000", "training.framework=pytorch")
    fspec = make_spec(tmp_path, "model.vocab=128000", "training.framework=pytorch", "training.cross_entropy=fused")
    sbv = big.model.seq_len * big.training.micro_batch * big.model.vocab

    def logits(s):
        return stage_extra_activation_bytes(s.model, s.training, s.parallelism, has_embedding=False, has_logits=True)
    assert logits(big) - logits(fspec) == pytest.approx((6.0 - 2.0) * sbv)
    assert loss_transient_bytes(fspec.model, fspec.training, fspec.parallelism) == pytest.approx(2.0 * sbv)


def test_train_metrics_add_one_fp32_cross_entropy_forward_each_over_the_logits(tmp_path):
    """Composer's train metrics (LanguageCrossEntropy, LanguagePerplexity: torch CrossEntropyLoss under
    autocast, composer/metrics/nlp.py) after every microbatch: per metric the cast (2 + 4 B) and log-softmax
    (4 + 4 B) over every logit, in the forward only, and nothing saved."""
    spec, ops, cm = _ops(tmp_path, "training.framework=pytorch", "training.cross_entropy=fused")
    loss = next(o for o in ops.head if o.kind == "loss")
    n = loss.elements
    plain = framework("pytorch", cross_entropy="fused")
    metered = framework("pytorch", cross_entropy="fused", train_metrics=2)
    one = cm.memory_time(6 * n, "copy") + cm.memory_time(8 * n, "normalization")
    assert op_time(loss, cm, 1, 1, False, True, False, metered) == pytest.approx(
        op_time(loss, cm, 1, 1, False, True, False, plain) + 2 * one)
    assert op_time(loss, cm, 1, 1, False, True, True, metered) == op_time(loss, cm, 1, 1, False, True, True, plain)
    mspec = make_spec(tmp_path, "training.framework=pytorch", "training.cross_entropy=fused", "training.train_metrics=2")
    base, more = build_plan(spec), build_plan(mspec)
    assert more.blocks.head.fwd_s - base.blocks.head.fwd_s == pytest.approx(2 * one)
    assert more.blocks.head.bwd_s == base.blocks.head.bwd_s and more.blocks.layer == base.blocks.layer
    kw = dict(layers_on_stage=spec.model.layers, has_embedding=True, has_logits=True, microbatches_in_flight=1)
    assert (stage_memory(mspec.model, mspec.training, mspec.parallelism, **kw)
            == stage_memory(spec.model, spec.training, spec.parallelism, **kw))


def test_megatron_fused_cross_entropy_is_four_compiled_kernels(tmp_path):
    """Megatron-Core's fused vocab-parallel cross-entropy (fusions/fused_cross_entropy.py at core_r0.9.0, its
    jit_fuser functions torch.compile'd): forward cast + max (2 + 4 B per logit), subtract + exp + sum (4 + 4),
    divide (4 + 4); backward scale + bf16 cast (4 + 2). 22 and 6 B instead of 38 and 14; same saved softmax;
    megatron only (exit 2 elsewhere)."""
    spec, ops, cm = _ops(tmp_path)
    loss = next(o for o in ops.head if o.kind == "loss")
    n = loss.elements
    fused = framework("megatron", cross_entropy="megatron_fused")
    fwd = cm.memory_time(6 * n, "copy") + cm.memory_time(8 * n, "normalization") + cm.memory_time(8 * n, "elementwise")
    assert op_time(loss, cm, 1, 1, False, True, False, fused) == pytest.approx(fwd)
    assert op_time(loss, cm, 1, 1, False, True, True, fused) == pytest.approx(cm.memory_time(6 * n, "elementwise"))
    unfused = framework("megatron")
    assert sum(b for _, b in fused.loss_fwd) == 22.0 and sum(b for _, b in unfused.loss_fwd) == 38.0
    assert sum(b for _, b in fused.loss_bwd) == 6.0 and sum(b for _, b in unfused.loss_bwd) == 14.0
    assert fused.loss_saved_bytes == unfused.loss_saved_bytes == 4.0
    big = make_spec(tmp_path, "training.cross_entropy=megatron_fused")
    assert build_plan(big).blocks.head.fwd_s < build_plan(spec).blocks.head.fwd_s
    from simcluster.errors import SpecError
    with pytest.raises(SpecError, match="training.cross_entropy: megatron_fused"):
        make_spec(tmp_path, "training.cross_entropy=megatron_fused", "training.framework=pytorch")


@pytest.mark.parametrize("preset, framework_name, fused", [("tpu-v4-pod", "jax", True), ("dgx-h100", "jax", False),
                                                           ("tpu-v4-pod", "megatron", False)])
def test_xla_on_a_tpu_runs_pointwise_ops_inside_the_matmul_fusions(tmp_path, preset, framework_name, fused):
    """jax on a TPU (a matrix unit: Calibration.mxu_tile): the activation and the residual adds cost nothing, norms
    keep their pass (scaling-book profiling.md: a fusion holds at most one matmul and its pointwise VPU ops); on a
    GPU, or under another stack, they keep theirs."""
    spec = make_spec(tmp_path, f"cluster.preset={preset}", f"training.framework={framework_name}",
                     "cluster.nodes=1" if preset == "dgx-h100" else "cluster.devices=8", "parallelism.data=8")
    plan = build_plan(spec)
    ops = model_ops(spec.model, spec.training).layer
    pointwise = [o for o in ops if o.kind == "elementwise"]
    norms = [o for o in ops if o.kind == "norm"]
    assert pointwise and norms and plan.stack.pointwise_in_matmul == (framework_name == "jax")
    for backward in (False, True):
        t = [op_time(o, plan.cm, 1, 1, False, True, backward, plan.stack) for o in pointwise]
        assert (sum(t) == 0.0) == fused and all(x > 0 for x in t) != fused
        assert all(op_time(o, plan.cm, 1, 1, False, True, backward, plan.stack) > 0 for o in norms)
