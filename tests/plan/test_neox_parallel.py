"""GPT-NeoX's parallel block (``model.parallel_block_norms: 2``; EleutherAI/gpt-neox
``megatron/model/transformer.py`` at c560814b, ``gpt_j_residual``): two LayerNorms of the layer
input, the QKV and MLP-up GEMMs apart, two backward tensor reductions, three elementwise kernels."""

from __future__ import annotations

from collections import Counter

import pytest

from simcluster.costs import params as P
from simcluster.costs.memory import activation_bytes_per_layer
from simcluster.plan import build_plan
from simcluster.spec import load_workload
from simcluster.errors import SpecError
from simcluster.workload.graph import model_ops

TOY = "workloads/toy-8gpu.yaml"
NEOX = ["model.parallel_block=true", "model.parallel_block_norms=2"]


def _spec(*sets: str):
    return load_workload(TOY, list(sets))


def _ops(steps, what: str) -> list[str]:
    return [s.op for _, s in steps if s.what == what]


def test_two_norms_add_one_backward_reduction_per_layer():
    """Each ColumnParallelLinear's input gradient is all-reduced on its own: two per layer backward,
    one forward (the summed outputs' ``reduce_from_model_parallel_region``)."""
    spec = _spec("parallelism.tensor=2", "parallelism.pipeline=1", "parallelism.data=4", *NEOX)
    plan = build_plan(spec, embedding_and_head=False)
    layers = len(plan.chunks[0])
    assert Counter(_ops(plan.unit_steps("F", 0), "tp")) == {"all_reduce": layers}
    assert Counter(_ops(plan.unit_steps("B", 0), "tp")) == {"all_reduce": 2 * layers}


def test_two_norms_keep_the_flops_and_add_the_second_norm_and_the_bias_kernels():
    """Same matmul FLOPs as the fused parallel block (the QKV and MLP-up GEMMs apart), one more
    LayerNorm (2 + 2 B per element of x) and residual kernels of 2 + 3 + 3 against 4 B-elements."""
    one = model_ops(_spec("model.parallel_block=true").model, _spec().training)
    two = model_ops(_spec(*NEOX).model, _spec().training)
    flops = lambda ops: sum(o.fwd_flops for o in ops.block("attn") if o.kind in ("gemm", "attention"))  # noqa: E731
    assert flops(two) == pytest.approx(flops(one), rel=1e-12)
    by_kind = lambda ops, kind: sum(o.fwd_bytes for o in ops.block("attn") if o.kind == kind)  # noqa: E731
    m, tr = _spec().model, _spec().training
    sbh_bytes = tr.micro_batch * m.seq_len * m.hidden * 2
    assert by_kind(two, "norm") - by_kind(one, "norm") == pytest.approx(2 * sbh_bytes)
    act = next(o.fwd_bytes for o in two.block("attn") if o.name == "act")
    assert by_kind(two, "elementwise") - act == pytest.approx(8 * sbh_bytes)
    assert by_kind(one, "elementwise") - act == pytest.approx(4 * sbh_bytes)


def test_two_norms_hold_two_layernorms_and_store_two_gemm_inputs():
    """Parameters: 12h² + 13h a layer (two LayerNorms, as a serial layer). Activations: x once (the two
    LayerNorms' shared input), the QKV and fc1 inputs apart: s·b·h·(8 + 24/t)."""
    h = _spec().model.hidden
    t1 = build_plan(_spec("parallelism.tensor=1", "parallelism.pipeline=1", "parallelism.data=8", *NEOX))
    assert t1.params.layer == 12 * h * h + 13 * h
    spec = _spec("parallelism.tensor=2", "parallelism.data=2", *NEOX)
    s, b, t = spec.model.seq_len, spec.training.micro_batch, 2
    got = activation_bytes_per_layer(spec.model, spec.training, spec.parallelism)
    assert got == pytest.approx(s * b * h * (8 + 24 / t), rel=1e-12)
    assert P.layer_replicated_params(spec.model) == 6 * h


def test_two_norms_need_a_parallel_block():
    with pytest.raises(SpecError, match="parallel_block_norms"):
        _spec("model.parallel_block_norms=2")
