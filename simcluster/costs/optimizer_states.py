"""Model states per parameter: what the weights, gradients and optimizer keep (:func:`state_bytes_per_param`), and
16-bit optimizer states (``training.optimizer_dtype: bf16``): NeMo's distributed Adam in bf16.

NeMo's ``distributed_fused_adam`` (``MegatronDistributedFusedAdam``, nemo/core/optim/distributed_adam.py, a
subclass of Apex's ``DistributedFusedAdam``) takes the optimizer-state dtype from the recipe's ``optim.dtype``
and the gradient-reduction dtype from ``grad_sync_dtype``. ``MegatronBaseModel.setup_optimization``
(nemo/collections/nlp/models/language_modeling/megatron_base_model.py at 24.09-alpha.rc0) then decides the
master weights: with ``dtype`` equal to the model's (bf16 under ``megatron_amp_O2``) ``store_params`` is
False, no fp32 master copy: the bf16 parameters are updated in place. The Nemotron-4 340B recipe
(NVIDIA/dgxc-benchmarking 35a9aec, nemotron/nemotron4-340b-synth.yaml) sets ``dtype: bf16`` and
``grad_sync_dtype: bf16``, with ``contiguous_grad_buffer: True`` (the gradients in one bf16 buffer).

Per parameter, before the distributed optimizer shards the states over the data-parallel (× context) ranks:

    weights 2 B (bf16), gradients 2 B (the bf16 buffer the reduction reads), optimizer states:
    Adam m and v in bf16, 2 + 2 = 4 B; SGD's momentum 2 B (no master copy)

against mixed precision's 2 + 2 + 12 (the fp32 master copy, m and v). The gradient reduction moves 2 B per
parameter instead of Megatron's fp32 ``main_grad`` 4. The step is one memory-bound pass over the shard:
Adam reads the gradient (2), the parameter, m and v (2 each) and writes the three back (2 each): 14 B
(SGD: 10 B), against 30 (22) with the fp32 master.
"""

from __future__ import annotations

from simcluster.workload.ops import DTYPE_BYTES

#: (weights, gradients, optimizer states) bytes per parameter with bf16 optimizer states and no master copy.
BF16_STATE_BYTES: dict[str, tuple[int, int, int]] = {"adam": (2, 2, 4), "sgd": (2, 2, 2)}
#: Bytes per parameter the data-parallel gradient reduction moves (``grad_sync_dtype: bf16``).
BF16_GRAD_REDUCE_BYTES = 2
#: Bytes per parameter of the optimizer step: Adam reads gradient, parameter, m, v and writes the last three.
BF16_STEP_BYTES: dict[str, float] = {"adam": 14.0, "sgd": 10.0}

# (weights, gradients, optimizer) bytes per parameter
STATE_BYTES: dict[tuple[str, str], tuple[int, int, int]] = {
    ("mixed", "adam"): (2, 2, 12),
    ("mixed", "sgd"): (2, 2, 8),
    ("fp32", "adam"): (4, 4, 8),
    ("fp32", "sgd"): (4, 4, 4),
    # fp8 (DeepSeek-V3 §3.3.4, "Low-Precision Optimizer States"): fp32 master weights, Adam's first and
    # second moments in BF16 (4 + 2 + 2); SGD's momentum alike (4 + 2)
    ("fp8", "adam"): (2, 2, 8),
    ("fp8", "sgd"): (2, 2, 6),
}


def megatron_state_bytes(precision: str, fp8_recipe: str, state: tuple[int, int, int]) -> tuple[int, int, int]:
    """``state`` (weights, gradients, optimizer bytes per parameter of mixed precision) as Megatron-LM keeps them:
    bf16 and Transformer Engine's FP8 accumulate and reduce fp32 main gradients (``accumulate_allreduce_grads_in_fp32``,
    forced on for bf16), a 4-byte contiguous gradient buffer the distributed optimizer does not shard; fp16 keeps
    16-bit gradients and an fp32 copy of its shard in the optimizer (+4 B of sharded state). Source: Megatron-Core
    ``docs/source/api-guide/dist_optimizer.md`` (core_r0.9.0), bytes per parameter, non-distributed | distributed:
    "bf16 parameters, fp32 gradients 18 | 6 + 12/d", "fp16 parameters, fp16 gradients 20 | 4 + 16/d", "fp32 16 |
    8 + 8/d". Other precisions (fp32; FP8 with DeepSeek-V3's blockwise scheme) are returned as given."""
    w_b, g_b, o_b = state
    if precision == "bf16" or (precision == "fp8" and fp8_recipe != "blockwise"):
        return w_b, 4, o_b
    if precision == "fp16":
        return w_b, g_b, o_b + 4
    return state


def state_bytes_per_param(precision: str, optimizer: str, fp8_recipe: str = "delayed") -> tuple[int, int, int]:
    """(weights, gradients, optimizer states) bytes per parameter before ZeRO sharding. FP8 keeps DeepSeek-V3's
    BF16 moments only with its own scheme (``fp8_recipe: blockwise``); under Transformer Engine's per-tensor
    recipes only the GEMMs change and the optimizer keeps mixed precision's fp32 master, m and v."""
    kind = precision if precision == "fp32" or (precision == "fp8" and fp8_recipe == "blockwise") else "mixed"
    if precision not in DTYPE_BYTES or (kind, optimizer) not in STATE_BYTES:
        raise ValueError(f"unsupported precision/optimizer {precision!r}/{optimizer!r}")
    return STATE_BYTES[(kind, optimizer)]
