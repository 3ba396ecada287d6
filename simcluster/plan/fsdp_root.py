"""FSDP's root unit: the embedding, final norm and output gathered once per forward and reduced once per backward.

PyTorch FSDP shards every module it is applied to as one unit. torchtitan applies ``fully_shard`` to each
transformer block and then to the whole model (``torchtitan/parallelisms/parallelize_llama.py``
``apply_fsdp``, commit 9dec370, 2024-12-26: ``fully_shard(model, **fsdp_config, reshard_after_forward=not
pp_enabled)``; the same ``fully_shard(model, **fsdp_config)`` in pull request #165, commit 83c879f, 2024-03-28):
the *root* unit holds what no block holds, the token embedding, the final norm and the output projection
(2·V·h + h weights untied, V·h tied). The per-layer gathers and reduce-scatters of
:mod:`simcluster.plan.steps` do not move it. What FSDP does with it:

Forward
    The root's pre-forward all-gathers its weights before the embedding can run (nothing precedes it in the
    step to hide it behind: ``FSDPState._root_pre_forward`` makes the all-gather streams wait for the
    optimizer), then FSDP2 copies them out of the flat buffer on the compute stream (``zero.copy_out``,
    :data:`simcluster.costs.frameworks.FSDP_COPY_OUT_BYTES` per weight); the first block's gather follows it
    on the same all-gather stream.
Held
    "For the root, do not reshard after forward since for training, the parameters would be freed and
    all-gathered immediately" (FSDP2, ``torch/distributed/_composable/fsdp/_fsdp_state.py`` ``_lazy_init``,
    pytorch/pytorch commit 325b98f2; FSDP1 alike, ``torch/distributed/fsdp/_runtime_utils.py``
    ``_post_forward_reshard``: "Do not free the root's parameters in the post-forward for FULL_SHARD"): no
    re-gather before the output's backward. Its memory is counted in :mod:`simcluster.costs.memory`.
Backward
    The root's inputs are token ids (no gradient), so its post-backward hook never fires in autograd;
    ``_root_post_backward_final_callback`` runs it after the whole backward ("Run post-backward in case forward
    inputs did not require gradient so the autograd backward did not run", same file): the reduce-scatter
    copy-in of the embedding's bf16 gradient into the fp32 buffer (6 B per weight,
    :data:`simcluster.costs.frameworks.FSDP_GRAD_CAST_BYTES`; the output's is charged with its GEMM's backward),
    then one reduce-scatter of all the root's gradients, after the first layer's, before the optimizer step:
    exposed.

Per microbatch and data-parallel rank (r = root weights on a tensor rank, e the gathered element's bytes,
g the reduced gradient's): one all-gather of r·e bytes and one reduce-scatter of r·g bytes over the shard
group, plus ``FSDP_COPY_OUT_BYTES``·r and ``FSDP_GRAD_CAST_BYTES``·V·h/t bytes of copies. (FSDP reshards
the root after each backward and reduce-scatters each microbatch's gradients unless told not to sync; the
corpus' torchtitan runs have one microbatch a step.) Only for one
pipeline stage (p = 1): with pipeline stages each stage's model part is its own root (left out).
"""

from __future__ import annotations

from dataclasses import dataclass

from simcluster.costs.compute import ComputeModel
from simcluster.costs.frameworks import FSDP_GRAD_CAST_BYTES, Stack


@dataclass(frozen=True)
class RootUnit:
    """FSDP's root unit on one rank: its weights and the copies around its collectives."""

    params: float = 0.0  # weights gathered before the forward and reduced after the backward (0: none)
    copy_out_s: float = 0.0  # FSDP2's copy-out of the gathered weights, compute stream
    grad_cast_s: float = 0.0  # the embedding gradient's cast into the fp32 reduce-scatter buffer, compute stream


def fsdp_root(stack: Stack, cm: ComputeModel, embedding: float, head: float, tied: bool, pipeline: int,
              data: int, zero_stage: int) -> RootUnit:
    """The :class:`RootUnit` of a layout: ``embedding`` and ``head`` weights per tensor rank (``head`` 0 or the
    final norm alone when tied), gathered over ``data`` ranks. None (zeros) unless the stack is FSDP
    (``Stack.fsdp_root``) at ZeRO-3 with data parallelism on one pipeline stage.

        copy_out_s  = memory_time(FSDP_COPY_OUT_BYTES · (embedding + head), copy)
        grad_cast_s = memory_time(6 · embedding, copy)   (untied, bf16 parameters; else 0)
    """
    if not stack.fsdp_root or zero_stage < 3 or data <= 1 or pipeline > 1:
        return RootUnit()
    params = embedding + head
    cast = 0.0 if tied or stack.fsdp_fp32_params else cm.memory_time(FSDP_GRAD_CAST_BYTES * embedding, "copy")
    return RootUnit(params, cm.memory_time(stack.gather_copy_out_bytes * params, "copy"), cast)
