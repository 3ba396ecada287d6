"""Autocast with fp32 parameters (simcluster.costs.autocast_stream): the fp32 residual stream's kernels,
bytes and saved tensors against their closed forms, and where the mechanism applies."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.costs import autocast_stream as AS
from simcluster.costs.eager import GPT_EAGER, TORCHTITAN_LLAMA, block_extra, launches
from simcluster.costs.frameworks import fp32_residual_stream, framework
from simcluster.costs.memory import activation_bytes_per_layer
from simcluster.plan.plan import compute_model
from simcluster.run import simulate_workload
from simcluster.workload import model_ops

LLAMA = ("model.mlp=swiglu", "model.kv_heads=2", "model.heads=8", "model.hidden=1024", "model.ffn_hidden=2816",
         "model.seq_len=2048", "training.framework=pytorch")


def _x_bytes(kernels, backward: bool) -> float:
    """Bytes per element of x of ``kernels`` in one direction (launched kernels and widenings)."""
    return sum(per for k in kernels if k.backward == backward for b, per in k.terms if b == "x")


def test_per_layer_bytes_are_the_docstring_table():
    """GPT code: 28 B forward and 52 backward per element of x beyond the 16-bit inventory; Llama code 22 and
    64 (RMSNorm's x.float() and type_as, 12 B each way and norm, become no-ops)."""
    for mlp, base, fwd, bwd in (("gelu", GPT_EAGER, 28, 52), ("swiglu", TORCHTITAN_LLAMA, 22, 64)):
        stream = AS.stream_kernels(mlp)
        assert _x_bytes(stream, False) - _x_bytes(base, False) == fwd, mlp
        assert _x_bytes(stream, True) - _x_bytes(base, True) == bwd, mlp
    no_ops = [k for k in AS.stream_kernels("swiglu") if k.name in AS.NO_OPS_ON_FP32]
    assert len(no_ops) == 2 * 4 and not any(launches(k, True) for k in no_ops)  # four per RMSNorm, two norms


def test_gpt_block_extra_is_the_closed_form(tmp_path):
    """One GPT half, forward: the LayerNorm in fp32 (+4 B, no launch of its own), the fp32 + bf16 residual add
    (+4 B), the cast before the GEMM (6 B, one kernel); backward: the branch gradient's cast and the cast's
    own backward (6 B each, kernels), the fp32 norm backward (+8) and gradient sum (+6), besides GPT_EAGER."""
    spec = make_spec(tmp_path, "training.framework=pytorch")
    ops, cm = model_ops(spec.model, spec.training), compute_model(spec, spec.cluster.device)
    x = spec.training.micro_batch * spec.model.seq_len * spec.model.hidden
    mt = cm.memory_time

    def widened(per: float, kind: str) -> float:
        return per * x / (cm.memory_bandwidth * cm.calibration.bandwidth_fraction(kind))

    stream, plain = AS.stream_kernels("gelu"), GPT_EAGER
    for half in ("attn", "mlp"):
        got, base = block_extra(ops, half, cm, 1, 1, False, stream), block_extra(ops, half, cm, 1, 1, False, plain)
        assert got.fwd_s == pytest.approx(widened(4, "normalization") + widened(4, "elementwise") + mt(6 * x, "copy"),
                                          rel=1e-12)
        assert got.bwd_s - base.bwd_s == pytest.approx(2 * mt(6 * x, "copy") + widened(8, "normalization")
                                                       + widened(6, "elementwise"), rel=1e-9)
        assert (got.host_fwd, got.host_bwd - base.host_bwd) == (1, 2)  # widenings dispatch nothing


def test_applies_to_autocast_with_fp32_parameters_only():
    """pytorch below ZeRO-3 at 16 bits, eager or fused model code, and FSDP with fp32 parameters
    (``training.fsdp_param_dtype: fp32``): fp32 parameters under autocast. Not FSDP with bf16 parameters, not
    fp32 training, not the other stacks."""
    assert fp32_residual_stream(framework("pytorch"), "bf16") and fp32_residual_stream(framework("pytorch", 2), "fp16")
    assert fp32_residual_stream(framework("pytorch", fused_kernels=True), "bf16")
    assert fp32_residual_stream(framework("pytorch", 3, fsdp_param_dtype="fp32"), "bf16")
    assert framework("pytorch", 3, fsdp_param_dtype="fp32").autocast
    assert not fp32_residual_stream(framework("pytorch", 3), "bf16")
    assert not fp32_residual_stream(framework("pytorch"), "fp32")
    for name in ("megatron", "deepspeed", "jax"):
        assert not fp32_residual_stream(framework(name), "bf16")


def test_saved_activations_grow_by_the_streams_bytes(tmp_path):
    """Per layer and element of x: GPT code +4 B (two fp32 norm inputs), Llama code +10 (x̂ twice, three more
    16-bit casts) over the same layout with a 16-bit stream (FSDP, ZeRO-3 over 2 GPUs); full recompute keeps
    the fp32 layer input (+2)."""
    two = ("parallelism.data=2", "training.global_batch=32")
    for extra, more in (((), 4), (LLAMA, 10)):
        one = make_spec(tmp_path, "training.framework=pytorch", *extra, *two)
        fsdp = make_spec(tmp_path, "training.framework=pytorch", *extra, *two, "parallelism.zero_stage=3")
        sbh = one.training.micro_batch * one.model.seq_len * one.model.hidden
        diff = activation_bytes_per_layer(one.model, one.training, one.parallelism) \
            - activation_bytes_per_layer(fsdp.model, fsdp.training, fsdp.parallelism)
        assert diff == pytest.approx(more * sbh), extra
    full = [make_spec(tmp_path, "training.framework=pytorch", "training.recompute=full", *two, *z)
            for z in ((), ("parallelism.zero_stage=3",))]
    a, b = (activation_bytes_per_layer(s.model, s.training, s.parallelism) for s in full)
    assert a - b == pytest.approx(2 * full[0].training.micro_batch * full[0].model.seq_len * full[0].model.hidden)


def test_the_stream_costs_small_models_most(tmp_path):
    """Its bytes scale with b·s·h and the GEMMs with b·s·h²: the share of the step it adds falls as the model
    widens (the issue's "worst for the smallest model"). One GPU, GPT code, 8 layers."""
    shares = []
    for h, a in ((768, 12), (2048, 16), (4096, 32)):
        spec = make_spec(tmp_path, "training.framework=pytorch", f"model.hidden={h}", f"model.heads={a}")
        ops, cm = model_ops(spec.model, spec.training), compute_model(spec, spec.cluster.device)
        added = 0.0
        for half in ("attn", "mlp"):
            got = block_extra(ops, half, cm, 1, 1, False, AS.stream_kernels("gelu"))
            base = block_extra(ops, half, cm, 1, 1, False, GPT_EAGER)
            added += got.fwd_s + got.bwd_s - base.fwd_s - base.bwd_s
        step = simulate_workload(spec).summary["iteration_time_s"]
        shares.append(spec.model.layers * spec.num_microbatches * added / step)
    assert shares[0] > shares[1] > shares[2] > 0, shares


FSDP = ("training.framework=pytorch", "parallelism.data=8", "parallelism.zero_stage=3", "training.global_batch=8")


def test_fsdp_with_fp32_parameters_gathers_fp32_and_reduces_16_bits(tmp_path):
    """``training.fsdp_param_dtype: fp32`` (Lightning's bf16-mixed: param_dtype fp32, reduce_dtype bf16): the
    weight all-gathers move 4 B per parameter and the reduce-scatters 2; the default (bf16 parameters,
    fp32 reduction: torchtitan) 2 and 4. The simulated gather traffic doubles."""
    from simcluster.plan import build_plan
    bf16 = build_plan(make_spec(tmp_path, *FSDP))
    fp32 = build_plan(make_spec(tmp_path, *FSDP, "training.fsdp_param_dtype=fp32"))
    assert (bf16.dtype_bytes, bf16.grad_bytes) == (2, 4) and (fp32.dtype_bytes, fp32.grad_bytes) == (4, 2)
    assert fp32.stack.autocast and fp32.stack.fsdp_fp32_params and not bf16.stack.autocast
    runs = [simulate_workload(make_spec(tmp_path, *FSDP, *x)) for x in ((), ("training.fsdp_param_dtype=fp32",))]
    gathered = [sum(t.nbytes for t in r.tasks.tasks if t.name.startswith("zero.all_gather")) for r in runs]
    assert gathered[1] == pytest.approx(2 * gathered[0])
    assert runs[1].summary["iteration_time_s"] > runs[0].summary["iteration_time_s"]


def test_fsdp_with_fp32_parameters_holds_fp32_shards_and_every_layers_bf16_casts(tmp_path):
    """fp32 shards of weights, gradients and Adam's m, v (16 B / N per parameter) and, at the loss's backward,
    every GEMM's bf16 cast of its gathered weight, kept by autograd (2 B per parameter, not sharded); the two
    gathered layers in flight are fp32 (4 B)."""
    from simcluster.costs.model_states import held_bytes_per_param
    spec = make_spec(tmp_path, *FSDP, "training.fsdp_param_dtype=fp32")
    assert held_bytes_per_param(spec.training, spec.parallelism) == (4, 4, 8, 2, 4)
    plain = make_spec(tmp_path, *FSDP)
    assert held_bytes_per_param(plain.training, plain.parallelism) == (4, 4, 8, 0, 2)


def test_fsdp_param_dtype_fp32_outside_pytorch_fsdp_is_exit_2_naming_the_key(tmp_path):
    from helpers_spec import run_error_line
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    line = run_error_line(tmp_path, root / "workloads/toy-8gpu.yaml", "training.fsdp_param_dtype=fp32")
    assert "training.fsdp_param_dtype" in line and "zero_stage 3" in line


def test_autocast_steals_the_first_microbatchs_fp32_gradient():
    """Autocast's gradient path into the fp32 .grad: every microbatch casts (6 B per weight), the first one's
    cast is stolen into the empty .grad (zero_grad(set_to_none=True)), the later ones are added (12 B):
    6 + 12·(m − 1)/m per microbatch. DeepSpeed's update_hp_grads adds every microbatch (18 B)."""
    from simcluster.costs.frameworks import GRAD_ACCUM_BYTES, autocast_accumulation_bytes
    assert [framework("pytorch", microbatches=m).grad_accum_bytes for m in (1, 4)] == [6.0, 15.0]
    assert autocast_accumulation_bytes(10**9) == pytest.approx(GRAD_ACCUM_BYTES)
    assert framework("pytorch", 3, microbatches=2, fsdp_param_dtype="fp32").grad_accum_bytes == 12.0
    assert framework("deepspeed", 1, microbatches=1).grad_accum_bytes == GRAD_ACCUM_BYTES
