"""Pipeline sends (``parallelism.overlap_p2p_comm``, ``parallelism.p2p_scatter_gather``): how a stack's sends
between pipeline stages run.

Megatron-LM's ``_communicate`` issues ``batch_isend_irecv``, waits on every request and then
calls ``torch.cuda.synchronize()`` ("to protect against race condition"): a send holds its
stage until delivered. So did every Megatron-LM up to May 2023 (``p2p_communication.py`` of
the SC'21 scripts' commit de7dc40, Aug 2021); since Oct 2023 (commit 4eeff55, "Make
overlap_p2p_comm the default") the interleaved schedule overlaps its sends with the next
chunk's compute, and ``arguments.py`` turns the overlap off for every other schedule. Until
Megatron-Core (Jan 2023, commit 39b83c7) the sends were also scatter-gathered
(``--scatter-gather-tensors-in-pipeline``, on by default; Narayanan et al. 2021 §4.1): each
tensor rank sends 1/t of the activation and the receiver all-gathers it over NVLink;
Megatron-Core sends the whole activation from every tensor rank (1/t of it only under
sequence parallelism, where the activation is already split). JAX/XLA pipelines move the
sharded activation (collective-permute), PyTorch's ``torch.distributed.pipelining`` posts
its sends asynchronously.

DeepSpeed's pipeline engine (``deepspeed.runtime.pipe.engine.PipelineEngine``)
    Its 1F1B ``TrainSchedule`` runs sends as blocking instructions of the same instruction
    stream (``_exec_send_activations`` / ``_exec_send_grads`` wait for the transfer), and reduces
    the data-parallel gradients in a ``ReduceGrads`` instruction after the last backward
    (no overlap with backward). It has no interleaved schedule. With model parallelism it
    partitions what it sends (``is_pipe_partitioned = is_model_parallel``: each tensor rank
    sends 1/t of the activation, the receiver rebuilds it with ``PartitionedTensor.full()``, an
    all-gather over the tensor group).
    Under ZeRO-1 its ``ReduceGrads`` all-reduces the gradients over the data-parallel group
    (``buffered_allreduce_fallback``: flattened buckets of ``MEMORY_OPT_ALLREDUCE_SIZE`` = 5e8
    elements, ``dist.all_reduce`` each), not a reduce-scatter: the ZeRO-1 optimizer then updates
    its 1/d and all-gathers the 16-bit weights, so the step moves an all-reduce plus an all-gather
    (:data:`simcluster.costs.frameworks.Stack.pipe_zero1_all_reduce`). bf16: ``PipelineEngine._bf16_reduce_grads`` →
    ``buffered_allreduce_fallback`` over the ``BF16_Optimizer``'s fp32 gradients (DeepSpeed PR #1801,
    commit 56c5223, 2022-04-19, "bf16+pipeline parallelism", BLOOM's; still so in later releases).
    fp16: ``_exec_reduce_grads`` called ``buffered_allreduce_fallback`` whatever the ZeRO stage until
    DeepSpeed's "ZeRO stage 1 refresh" (cfa63f5d, 2021-05-19), and EleutherAI's DeeperSpeed fork that
    GPT-NeoX pinned for its 20B run (eb7f5cff, 2021-09-20, version 0.3.15, requirements/requirements.txt
    up to GPT-NeoX v1.0) kept that path, with the old ``FP16_DeepSpeedZeroOptimizer_Stage1`` that
    all-gathers the updated partitions in its ``step``. Known approximation: fp16 ZeRO-1 under upstream
    DeepSpeed ≥ 0.4 reduces through the ZeRO optimizer (``allreduce_gradients`` →
    ``optimizer.reduce_gradients``); the spec has no DeepSpeed version, and the corpus's fp16 ZeRO-1
    pipeline run (GPT-NeoX-20B) is on the old path.
"""

from __future__ import annotations

from dataclasses import dataclass

from simcluster.costs.frameworks import Stack

#: Schedules that hide their pipeline sends by design, whatever the stack: DualPipe ("both all-to-all
#: and PP communication can be fully hidden during execution", DeepSeek-AI 2024, DeepSeek-V3 §3.2.1).
OVERLAPPED_SCHEDULES: frozenset[str] = frozenset({"dualpipe"})


@dataclass(frozen=True)
class PipelineSends:
    """How a pipeline send between two stages runs (module docstring)."""

    blocking: bool  # the sending stage's next unit waits for the delivery
    split: bool  # each tensor rank sends 1/t of the activation (else all of it)
    gather: bool  # the receiving tensor group all-gathers the pieces before its unit


def pipeline_sends(stack: Stack, schedule: str, sequence_parallel: bool, overlap: bool | None = None,
                   scatter_gather: bool | None = None) -> PipelineSends:
    """The sends of ``stack`` under ``schedule``; ``overlap`` / ``scatter_gather`` override its defaults
    (``parallelism.overlap_p2p_comm`` / ``p2p_scatter_gather``; checked in :mod:`simcluster.spec.checks`)."""
    if overlap is None:
        overlap = (stack.p2p_overlap == "always" or schedule in OVERLAPPED_SCHEDULES
                   or (stack.p2p_overlap == "interleaved" and schedule == "interleaved"))
    sg = stack.p2p_scatter_gather if scatter_gather is None else scatter_gather
    return PipelineSends(blocking=not overlap, split=sequence_parallel or stack.p2p_sharded or sg,
                         gather=sg and not sequence_parallel)
