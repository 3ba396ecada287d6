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
one a block ahead of its use, and the layer's first compute waits for them; nothing is gathered after the
optimizer step. A layer gathered earlier than its forward costs nothing; the first layer's gather of the
iteration, and any gather slower than the block before it, is exposed.
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
