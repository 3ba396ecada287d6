"""Megatron-LM 2019's FP16_Optimizer (simcluster.costs.fp16_optimizer): which stacks run it, its closed form,
and its tensor inventory against the layer's parameter count."""

from __future__ import annotations

import pytest

from simcluster.catalogue import DEVICES
from simcluster.costs import fp16_optimizer as fp16opt
from simcluster.costs.compute import ComputeModel
from simcluster.costs.frameworks import HOST_OP_S, framework
from simcluster.plan.costing import optimizer_time


def _cm() -> ComputeModel:
    return ComputeModel(DEVICES.get("v100"), "fp16")


def test_only_megatron_2019_in_fp16_runs_it():
    assert framework("megatron", fused_kernels=False, precision="fp16").optimizer == "fp16_2019"
    assert framework("megatron", fused_kernels=False, precision="bf16").optimizer == "megatron"
    assert framework("megatron", precision="fp16").optimizer == "megatron"
    assert framework("deepspeed", fused_kernels=False, precision="fp16").optimizer == "fused"


def test_tensor_inventory_matches_the_layer_parameter_count():
    """The 12 tensors of the 2019 GPT-2 layer (2 LayerNorms, QKV, dense, h->4h, 4h->h, each weight and bias) hold
    12·h² + 13·h parameters; the model adds word and position embeddings and the final LayerNorm (4)."""
    h = 1536
    sizes = [h, h, 3 * h * h, 3 * h, h * h, h, h, h, 4 * h * h, 4 * h, 4 * h * h, h]
    assert len(sizes) == fp16opt.TENSORS_PER_LAYER and sum(sizes) == 12 * h * h + 13 * h
    assert fp16opt.tensors(40) == 40 * 12 + 4 == 484  # Megatron-LM's 1.2B of Table 1


def test_closed_form_and_its_two_regimes():
    cm = _cm()
    P, T = 1.2e9, 484
    secs, nbytes = fp16opt.extra_time(cm, P, T, HOST_OP_S)
    assert nbytes == pytest.approx(38 * P)
    assert secs == pytest.approx(cm.memory_time(14 * P) + 5 * T * HOST_OP_S
                                 + max(cm.memory_time(24 * P), 5 * T * HOST_OP_S), rel=1e-12)
    # big tensors: bandwidth-bound, at least the 38 B per parameter at the device's bandwidth
    assert secs > 38 * P / cm.memory_bandwidth
    # tiny tensors: the host's 10 ops per tensor, whatever the bytes
    tiny_s, _ = fp16opt.extra_time(cm, 1e3, T, HOST_OP_S)
    assert tiny_s >= 10 * T * HOST_OP_S and tiny_s < 10 * T * HOST_OP_S + 1e-3


def test_optimizer_step_adds_the_loops_to_the_fused_pass():
    cm = _cm()
    fused_s, fused_b = optimizer_time(cm, "adam", 1.2e9, 1, framework("deepspeed", precision="fp16"), 40)  # one pass
    stack = framework("megatron", fused_kernels=False, precision="fp16")
    secs, nbytes = optimizer_time(cm, "adam", 1.2e9, 1, stack, 40)
    more_s, more_b = fp16opt.extra_time(cm, 1.2e9, 484, stack.host_op_s)
    assert secs == pytest.approx(fused_s + more_s, rel=1e-12) and nbytes == pytest.approx(fused_b + more_b)
    assert secs > 2 * fused_s  # 30 B fused vs 68 B and ~5k host ops: more than twice the fused step
