"""The backward's tensor-parallel reduction beside the weight-gradient GEMM (``parallelism.tp_grad_overlap``).

Without sequence parallelism a column-parallel linear layer's input gradient dX = dY·W is a partial sum
over the tensor ranks and is all-reduced; with it, reduce-scattered, and the layer's saved input (kept
sharded along the sequence) is all-gathered again for the weight gradient dW = dYᵀ·X. Megatron-LM issues
these collectives asynchronously, each beside the GEMM that does not need it (Megatron-LM commit
cf7efd4 "allreduce overlap with wgrad gemm", 2021-08-30, ``--async-tensor-model-parallel-allreduce``, on
by default; ``LinearWithGradAccumulationAndAsyncCommunication.backward`` in ``megatron/mpu/layers.py`` at
739cb43, 2022-05-24, the code Korthikanti et al. 2022 measured; ``megatron/core/tensor_parallel/layers.py``
since; Transformer Engine's ``Linear`` / ``LayerNormLinear`` backward likewise):

- no sequence parallelism: dgrad GEMM, then ``all_reduce(dX, async_op=True)`` beside the wgrad GEMM,
  waited for before the layer's backward returns;
- sequence parallelism: ``_all_gather_base(X, async_op=True)`` beside the dgrad GEMM, then
  ``_reduce_scatter_base(dX, async_op=True)`` beside the wgrad GEMM (which reads the gathered X).

Korthikanti et al. 2022 (arXiv:2205.05198) §6.2 name it as the reason their full-recompute overhead is
39 % rather than the expected 33 %: the recompute's forward all-reduces cannot hide, the backward's do
("an optimization in the backward pass where we overlap all-reduce communication with the linear
weight's gradient computation"). Their Table 4 (one layer of the 22B model, TP 8, micro batch 4) is the
held-out check of this module (``tests/plan/test_tp_grad_overlap.py``).

Simulated per block (attention half, MLP half), backward only, in the engine's terms: the block's backward
compute minus its column-parallel GEMMs' (:attr:`simcluster.plan.costing.BlockCost.col_dgrad_s`,
``col_wgrad_s``), then (sequence parallel) the all-gather beside the data-gradient part, then the
all-reduce (or reduce-scatter) beside the weight-gradient part; the next block waits for both. Compute
beside a collective runs at the contention rate of :mod:`simcluster.costs.contention`. The exposed
all-gather of the output gradient that opens a sequence-parallel block's backward (the backward of the
forward's reduce-scatter) stays blocking, as in Megatron-LM. Not applied to parallel (GPT-J) blocks, to
zero-bubble schedules (their weight gradients run in separate W passes) or under userbuffers
(:mod:`simcluster.plan.tp_overlap`, which overlaps these collectives its own way).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simcluster.plan.costing import BlockCost
    from simcluster.plan.steps import Step


def backward_steps(name: str, secs: float, flops: float, cost: BlockCost, compute: Step, gather: Step | None,
                   reduce: Step) -> list[Step]:
    """A block's backward compute with its input-gradient reduction beside the weight-gradient GEMM (and,
    with ``gather`` — sequence parallelism — the saved input's all-gather beside the data-gradient GEMM).

    ``compute`` is the block's backward compute step (``secs``, ``flops``), ``reduce`` its reduction."""
    d, w, f = cost.col_dgrad_s, cost.col_wgrad_s, cost.col_flops
    head_s = max(secs - d - w, 0.0)
    out = [replace(compute, seconds=head_s, flops=max(flops - 2 * f, 0.0), grads=False)]
    if gather is not None:
        out += [replace(gather, overlap=True, tag=f"{gather.tag}.input"),
                replace(compute, name=f"{name}.dgrad", seconds=d, flops=f, block=False, waits_params=False,
                        grads=False)]
    else:
        out[0] = replace(out[0], seconds=head_s + d, flops=max(flops - f, 0.0))
    out += [replace(reduce, overlap=True),
            replace(compute, name=f"{name}.wgrad", seconds=w, flops=f, block=False, waits_params=False,
                    grads=False)]
    return out
