"""DeepSpeed ZeRO-3 as it ran in 2021: what its collectives cost besides their bytes on the wire.

Sources: ``deepspeed/runtime/zero/stage3.py`` and ``partition_parameters.py`` at tags v0.3.13
(2021-03-16) to v0.4.5, the version Narayanan et al. 2021 compared PTD-P with. The stack that uses
these constants is ``deepspeed`` in :mod:`simcluster.costs.frameworks`; the per-layer counts are
:mod:`simcluster.plan.zero3`'s.

Per-rank host work of every collective. ``Init._allgather_param`` builds the all-gather's
output as a Python list of N views (``for i in range(world_size): partitions.append(
flat_tensor.narrow(...))``, after a ``torch.cuda.synchronize()``) and calls
``torch.distributed.all_gather(partitions, ...)``; ``_reduce_scatter_gradient`` likewise
builds N input views of each weight's gradient (``param.grad.view(-1).narrow(...)``) for
``torch.distributed.reduce_scatter``, one call per weight. PyTorch's NCCL process group
(``torch/lib/c10d/ProcessGroupNCCL.cpp``, ``allgather``/``reduce_scatter`` with tensor lists)
flattens the list into a new buffer and issues one ``copy_`` per rank (after the all-gather,
before the reduce-scatter). So each collective costs the host N view ops (Python) and N copy
launches (C++): about one eager op's host path per rank, 4–7 µs for the Python view and 2–5 µs
for the copy's dispatch and launch (the per-layer costs of the 5–25 µs eager-op path), i.e.
:data:`DEEPSPEED_HOST_OPS_PER_RANK` × :data:`simcluster.costs.frameworks.HOST_OP_S` per rank. The GPU waits through it:
the fetch has just synchronised the device, and the backward's gradient hooks hold the host
that launches the next kernels (an upper bound for the reduce-scatter's: its hook may run while
the module's backward kernels are still queued). Simulated as a compute-stream task ``zero.prep`` of
N × ops × ``HOST_OP_S`` before each all-gather and before each weight's reduce-scatter: a
latency growing linearly with the ranks, per gather and per reduce-scatter. Its phase is ``host``
(:data:`simcluster.plan.steps.HOST_PHASE`): the summary counts it as ``host_wait``, not as compute.

Device syncs. ``_allgather_param`` calls ``torch.cuda.synchronize()`` after allocating the gathered
weight and before building its N views, and ``_synchronize_communication`` ends each fetch with
another; ``reduce_ipg_grads`` starts with ``self.reduction_stream.synchronize()`` (stage3.py). The
gradient reduce-scatters run on the reduction stream, but the next module's fetch waits for every
stream: in the backward a weight's reduce-scatter ends before the next module's gather is prepared
and before its compute starts, so the reduction never runs beside the compute. Simulated by making
each ``zero.prep`` wait for the rank's last reduce-scatter (``Stack.zero3_fetch_sync``; the search
screen adds the reduce-scatters to the backward likewise).

Re-fetch after recompute. A module's weights gathered for the recompute are kept for its
backward only when the parameters fetched between the two uses (``_keep_for_later``:
``get_reuse_distance_in_numel`` < ``stage3_max_reuse_distance``, default 1e9) are fewer than
the limit. With full recompute the trace runs rc(m1..mk), bwd(mk..m1): module i is released and
gathered again for its backward when 2·Σ_{j>i} |m_j| ≥ 1e9 (:data:`DEEPSPEED_MAX_REUSE_DISTANCE`)
— for h = 12,288 every linear layer but the last (fc1, dense, qkv: 2/3 of the layer), a third
all-gather of those weights per step (``zero3_refetch`` in :mod:`simcluster.plan.zero3`).

Memory passes around each collective. ``_allgather_param`` allocates the gathered weight with
``torch.zeros`` (write 2 B per element) and c10d copies the flat NCCL output into the N views
(read 2, write 2): :data:`DEEPSPEED_ZERO3_GATHER_BYTES` per gathered weight after each
all-gather (``zero.copy_out``). Gradients: stage 3 reduce-scatters the 16-bit gradient before
any fp32 accumulation (the fp32 partition is touched on 1/N of it), after copying it into the
contiguous bucket (``reduce_independent_p_g_buckets_and_remove_grads``: read 2, write 2), dividing
the bucket by N in place (``average_tensor``'s ``div_``: 2 + 2) and c10d's flattening copy of the N
input views (2 + 2): :data:`DEEPSPEED_ZERO3_GRAD_BYTES` per weight instead of the 18 B of
ZeRO-1/2's fp32 accumulation.

Live gathered weights. A module's weights are released after its use unless kept for reuse (``release_sub_module``:
``not param.ds_active_sub_modules and not self._keep_for_later(submodule)``) and, past the prefetch bucket, nothing
is fetched ahead; under full recompute only the last module of a layer is kept from its recompute to its backward
(above), so at most one module's 16-bit weights are whole at a time, beside that module's whole 16-bit gradient
until its reduce-scatter: :func:`live_gathered_params` (the memory model's ZeRO-3 buffer under ``deepspeed``,
where FSDP holds the current and the prefetched layer).

Persistent parameters. Tensors under ``stage3_param_persistence_threshold``
(:data:`DEEPSPEED_PERSISTENCE_THRESHOLD`, 1e5 elements: every bias and layernorm γ, β of a GPT
layer up to h ≈ 25,000) are not fetched per module but they are partitioned like the rest, and
two per-rank loops run over each of them every step. (1) Gradients: ``create_reduce_and_remove_grad_hooks``
hooks every parameter of ``fp16_groups``, and ``average_tensor`` → ``reduce_gradients_at_owner`` →
``_reduce_scatter_gradients`` issues one list-based ``reduce_scatter`` per parameter, persistent or
not: a GPT layer's 12 tensors (4 weights, 4 biases, 2 × (γ, β)) are 12 reduce-scatters over all
N ranks, each with its N views, c10d's N copies and the ring's latency (``zero.prep`` and ``parts``
of the layer's ``zero.reduce_scatter``). (2) Re-gather at the step: ``backward`` ends with
``_partition_all_parameters`` (the persistent tensors too), and ``step``'s ``_post_step`` calls
``persistent_parameters[0].all_gather(persistent_parameters)`` → ``Init._allgather_params``: one
flat all-gather, then for each persistent tensor ``for i in range(world_size)``: two ``narrow``,
a ``view`` and a ``copy_`` of that rank's piece into the full tensor (every rank whose piece holds
elements: ⌈n / ⌈n/N⌉⌉ of them for a tensor of n elements), counted as
:data:`DEEPSPEED_HOST_OPS_PER_RANK` host ops each, the list collectives' count (a lower bound:
three views and a Python ``copy_``). Simulated as a compute-stream task ``zero.persist_gather`` (phase
``host``) after the optimizer step (the flat all-gather's ring latency, milliseconds, runs under that loop). Same code
from v0.3.13 through v0.4.5 (``partition_parameters.py``, ``stage3.py``). Left out: the final
layernorm's two tensors, and the per-module gather of a bias over the threshold (h > 25,000).
Assumed: ``contiguous_gradients: true``, as the ZeRO-3 example of v0.3.13's tutorial
(``docs/_tutorials/zero.md``) sets it; v0.3.13–v0.4.0's own default is false, under which
``reduce_ipg_grads`` all-reduces each flattened bucket (``buffered_reduce_fallback``) instead.
"""

from __future__ import annotations

from simcluster.spec.training import TrainingSpec
from simcluster.spec.workload import ModelSpec
from simcluster.workload import ModelOps, model_ops

#: DeepSpeed ZeRO-3's ``stage3_prefetch_bucket_size`` default (parameters fetched ahead).
DEEPSPEED_PREFETCH_BUCKET = 5e7
#: DeepSpeed ZeRO-3's ``stage3_max_reuse_distance`` default (``ZERO_OPTIMIZATION_MAX_REUSE_DISTANCE_DEFAULT``,
#: deepspeed/runtime/zero/constants.py, v0.3.13–v0.4.x): parameters fetched before a module's reuse above
#: which its weights are released and gathered again.
DEEPSPEED_MAX_REUSE_DISTANCE = 1e9
#: DeepSpeed ZeRO-3's ``stage3_param_persistence_threshold`` default (``ZERO_OPTIMIZATION_PARAM_PERSISTENCE_THRESHOLD_
#: DEFAULT``, deepspeed/runtime/zero/constants.py, v0.3.13–v0.4.x): tensors with fewer elements stay gathered
#: between uses, are reduce-scattered one by one and re-gathered after every optimizer step (module docstring).
DEEPSPEED_PERSISTENCE_THRESHOLD = 1e5
#: Host ops per rank of DeepSpeed ≤ 0.4's list-based all-gather / reduce-scatter: one view (``narrow``, from
#: Python) and one ``copy_`` (c10d, from C++) per rank, together about one eager op's host path (docstring).
DEEPSPEED_HOST_OPS_PER_RANK = 1.0
#: DeepSpeed ZeRO-3 bytes per gathered weight element: ``torch.zeros`` of the full weight (2) and c10d's copy
#: of the flat all-gather output into the N views (2 + 2).
DEEPSPEED_ZERO3_GATHER_BYTES = 6.0
#: DeepSpeed ZeRO-3 bytes per weight and microbatch before the reduce-scatter: bucket copy, ``div_`` by N and
#: c10d's flattening copy, 4 B each (module docstring).
DEEPSPEED_ZERO3_GRAD_BYTES = 12.0


def module_weights(ops: ModelOps, tensor: int) -> list[float]:
    """Weights of each linear module of a layer on one tensor rank (its GEMM's n·k/t), in forward order: the units
    DeepSpeed fetches, re-fetches and holds (:mod:`simcluster.plan.zero3`, :func:`live_gathered_params`)."""
    return [n * k / tensor for op in ops.layer if op.kind == "gemm" and op.gemm for _, n, k in [op.gemm]]


def live_gathered_params(model: ModelSpec, training: TrainingSpec, tensor: int) -> float:
    """Weights of the largest module of a layer on one tensor rank: what DeepSpeed's ZeRO-3 holds gathered at a
    time, twice over with its whole gradient (module docstring)."""
    return max(module_weights(model_ops(model, training), tensor), default=0.0)
