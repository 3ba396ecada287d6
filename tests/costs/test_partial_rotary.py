"""Partial rotary embeddings' copies (``model.rotary_pct``; :mod:`simcluster.costs.partial_rotary`)."""

from __future__ import annotations

import pytest

from simcluster.costs.eager import kernel_bytes
from simcluster.costs.partial_rotary import partial_rotary_kernels
from simcluster.plan.costing import model_blocks
from simcluster.plan.plan import compute_model
from simcluster.plan.stack_bytes import spec_stack
from simcluster.spec import load_workload
from simcluster.workload.graph import model_ops

TOY = "workloads/toy-8gpu.yaml"


@pytest.mark.parametrize("pct", [0.25, 0.5, 0.9])
def test_bytes_per_q_element_are_4_forward_and_14_backward_per_tensor(pct: float):
    """cat 2 + 2 forward; two zero-filled slice gradients (2 each), their copies (4·r + 4·(1 − r)) and
    autograd's sum (2 + 2 + 2) backward: on q and on k alike, whatever the share rotated."""
    kernels = partial_rotary_kernels(pct)
    for t in ("q", "k"):
        one = {"q": 1.0 if t == "q" else 0.0, "k": 1.0 if t == "k" else 0.0}
        fwd = sum(kernel_bytes(k, one) for k in kernels if not k.backward)
        bwd = sum(kernel_bytes(k, one) for k in kernels if k.backward)
        assert (fwd, bwd) == (pytest.approx(4.0), pytest.approx(14.0))
    assert partial_rotary_kernels(1.0) == ()


def _attn(*sets: str):
    spec = load_workload(TOY, list(sets))
    cm = compute_model(spec, spec.cluster.device)
    blocks = model_blocks(model_ops(spec.model, spec.training), cm, spec.parallelism.tensor, 1, False,
                          spec.training.flash_attention, spec_stack(spec))
    return blocks.attn, cm, spec


def test_partial_rotary_adds_its_kernels_to_the_attention_block():
    """The attention block's forward grows by the two cats, its backward by the ten slice-gradient kernels,
    each one bandwidth-bound memory pass over the q (k) elements of one rank: b·s·a·d/t."""
    full, cm, spec = _attn()
    part, _, _ = _attn("model.rotary_pct=0.25")
    m, t = spec.model, spec.parallelism.tensor
    q = spec.training.micro_batch * m.seq_len * m.hidden / t
    kernels = partial_rotary_kernels(0.25)
    fwd = sum(cm.memory_time(kernel_bytes(k, {"q": q, "k": q}), k.kind) for k in kernels if not k.backward)
    bwd = sum(cm.memory_time(kernel_bytes(k, {"q": q, "k": q}), k.kind) for k in kernels if k.backward)
    assert part.fwd_s - full.fwd_s == pytest.approx(fwd, rel=1e-9)
    assert part.bwd_s - full.bwd_s == pytest.approx(bwd, rel=1e-9)


def test_xla_fuses_the_copies():
    """jax compiles one program (no per-op host cost): the slices and the concatenation fuse away."""
    full, _, _ = _attn("training.framework=jax")
    part, _, _ = _attn("training.framework=jax", "model.rotary_pct=0.25")
    assert (part.fwd_s, part.bwd_s) == (full.fwd_s, full.bwd_s)
