"""The distributed optimizer's weight all-gather overlapped with the next forward (``overlap_param_gather``).

With ZeRO 1 or 2 each data-parallel rank updates its shard of the weights; the updated 16-bit weights are
then all-gathered. Without overlap that all-gather closes the iteration (:mod:`simcluster.lowering.grad_sync`).
With Megatron-LM's ``--overlap-param-gather`` (megatron/core/distributed/distributed_data_parallel.py at
core_r0.9.0: ``start_param_sync`` dispatches each bucket's all-gather asynchronously; a forward pre-hook on every
module waits for the bucket holding its parameters, ``finish_param_sync``, and dispatches the next one) or
NeMo's ``overlap_param_sync`` (Apex ``DistributedFusedAdam``, the same pre-forward wait; set in every NeMo recipe
of NVIDIA/dgxc-benchmarking 35a9aec) the all-gather runs beside the next iteration's first forward instead.

Simulated in the steady state of one iteration: the first microbatch's forward of each chunk gathers each
layer's weights (and the embedding's before it, the head's before the logits) on the data-parallel stream,
and the layer's first compute waits for them; nothing is gathered after the optimizer step. When each chunk's
gathers are issued:

- 1F1B and no pipeline: one layer ahead of its use (the pre-hook's next-bucket dispatch). A layer gathered
  earlier than its forward costs nothing; the first layer's gather of the iteration, and any gather slower
  than the block before it, is exposed.
- Interleaved: chunk by chunk, aligned across the pipeline stages (:func:`chunk_gather_dispatch`).
  Megatron-Core's ``forward_backward_pipelining_with_interleaving`` (core_r0.9.0, schedules.py) calls
  ``config.param_sync_func`` for chunks 0 and 1 before the first forward, and for chunk c ≥ 2 when stage s
  starts its forward of virtual microbatch j with j + s the first microbatch of chunk c − 1 (the comment:
  "we launch asynchronous communication at the same time across the pipeline-parallel group"); the func is
  each chunk's ``start_param_sync`` (every bucket at once) under ``--overlap-param-gather`` with
  ``--align-param-gather`` (megatron/training/training.py; on by default for the interleaved schedule, off
  for the others: arguments.py), and Apex ``DistributedFusedAdam._try_start_bucket_param_sync`` in NeMo with
  ``distributed_fused_adam`` and ``overlap_param_sync`` (NVIDIA/NeMo 32503fd, 2024-09,
  megatron_gpt_model.py ``fwd_bwd_step``: ``param_sync_func = self.sync_overlap_parameters``). Simulated: the
  chunk's gathers issued together, one after another on the data-parallel stream, after the first task of
  that forward (at most one chunk's forward later than its start, with p + s − 1 forwards of slack before
  the chunk's first use).
"""

from __future__ import annotations

from dataclasses import replace

from simcluster.plan.steps import Step


def gather_weights(steps: list[Step], params: float = 0.0) -> list[Step]:
    """``steps`` (one layer's, the embedding's or the head's forward) preceded by the all-gather of their
    weights (``params`` when not a layer's), their first compute waiting for it."""
    i = next((i for i, s in enumerate(steps) if s.what == "compute"), None)
    if i is None:
        return steps
    out = list(steps)
    out[i] = replace(out[i], waits_params=True)
    return [Step("gather", "zero.all_gather", "forward", op="all_gather", params=params)] + out


def chunk_gather_dispatch(chunk: int, p: int, stage: int) -> int | None:
    """Index (in the stage's order of forward passes) of the forward at whose start the interleaved schedule
    issues ``chunk``'s weight gathers on pipeline stage ``stage`` of ``p``; None: before the first forward.

    Megatron-Core groups the forwards p microbatches per chunk, so chunk c − 1's first microbatch is virtual
    microbatch (c − 1)·p, reached on stage s at its forward (c − 1)·p − s (module docstring)."""
    return None if chunk < 2 else (chunk - 1) * p - stage
