"""Context-parallel attention kernels (simcluster.costs.cp_attention): Transformer Engine's ring steps.

Source: NVIDIA/TransformerEngine transformer_engine/pytorch/attention.py at 40dda924
(``AttnFuncWithCPAndKVP2P``): the forward's steps alternate two streams, the backward runs the c
steps' kernels one after another: a causal kernel over s/c tokens, c − 1 non-causal halves.
"""

from __future__ import annotations

import pytest

from simcluster.costs.attention_kernels import attention_kernel
from simcluster.costs.compute import ComputeModel
from simcluster.costs.cp_attention import cp_attention_time
from simcluster.costs.frameworks import framework
from simcluster.plan.costing import TRAINING_LOOP_KERNEL_GAP_S
from simcluster.topology.devices import DEVICES


@pytest.fixture(scope="module")
def cm() -> ComputeModel:
    dev = DEVICES.get("h100")
    return ComputeModel(dev, "bf16", kernel_overhead_s=TRAINING_LOOP_KERNEL_GAP_S,
                        attention_kernel=attention_kernel("auto", framework("megatron"), dev.name))


@pytest.mark.parametrize("backward", [False, True])
def test_one_rank_is_the_plain_causal_kernel(cm: ComputeModel, backward: bool) -> None:
    assert cp_attention_time(cm, 1, 32, 8192, 128, 1, backward=backward) == \
        cm.attention_time(1, 32, 8192, 128, causal=True, backward=backward)


def test_forward_is_one_kernel_of_the_ranks_work(cm: ComputeModel) -> None:
    """Two streams fill each other's waves: the forward stays t_causal(s) / c."""
    for c in (2, 4):
        assert cp_attention_time(cm, 1, 32, 8192, 128, c) == pytest.approx(cm.attention_time(1, 32, 8192, 128) / c)


@pytest.mark.parametrize("c", [2, 4, 8])
def test_backward_is_the_sum_of_the_ring_steps(cm: ComputeModel, c: int) -> None:
    """t_bwd = t_causal(s/c) + (c − 1) · t_noncausal(s/c) / 2 (closed form)."""
    local = 8192 // c
    want = (cm.attention_time(1, 32, local, 128, causal=True, backward=True)
            + (c - 1) * cm.attention_time(1, 32, local, 128, causal=False, backward=True) / 2)
    assert cp_attention_time(cm, 1, 32, 8192, 128, c, backward=True) == pytest.approx(want)


def test_ring_steps_do_the_same_flops() -> None:
    """c steps of (s/c)·(s/2c) pairs each = the causal s²/2 pairs over c ranks."""
    s = 8192
    for c in (2, 4, 8):
        assert c * (s // c) * (s // (2 * c)) == s * s // 2 // c


@pytest.mark.parametrize("c", [2, 4])
def test_shorter_kernels_are_not_faster(cm: ComputeModel, c: int) -> None:
    """The same FLOPs in kernels c times shorter run at the flash curve's lower efficiency."""
    split = cp_attention_time(cm, 1, 32, 8192, 128, c, backward=True)
    assert split >= cm.attention_time(1, 32, 8192, 128, backward=True) / c


def test_unfused_attention_keeps_the_full_kernel(cm: ComputeModel) -> None:
    assert cp_attention_time(cm, 1, 32, 4096, 128, 2, flash=False, backward=True) == \
        pytest.approx(cm.attention_time(1, 32, 4096, 128, flash=False, backward=True) / 2)
