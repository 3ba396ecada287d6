"""Partial full recompute (``training.recompute_num_layers``): which layers of a model chunk run again.

Megatron-Core's ``TransformerBlock._checkpointed_forward`` with ``recompute_method == "block"`` checkpoints
"the input activations of only a set number of individual Transformer layers and skip[s] the rest": in
each model chunk (a pipeline stage's share, or one virtual stage's), layer ``l`` (0-based, in the chunk) is
run under ``tensor_parallel.checkpoint`` when ``l < recompute_num_layers`` and plainly otherwise
(megatron/core/transformer/transformer_block.py, core_r0.9.0; the same rule in Megatron-LM's
``ParallelTransformer._checkpointed_forward`` since commit c1e0689d, 2021-08-10, "Checkpoint a set number of
individual Transformer layers"). So a chunk of ``n`` layers recomputes ``min(N, n)`` of them, its first,
and stores the full activations of the rest. NeMo's ``activations_checkpoint_method: block`` with
``activations_checkpoint_num_layers`` passes through to the same code; torchtitan's layer SAC
(``selective_ac_option`` k: every k-th block checkpointed) recomputes as many layers of a stage as
``N = layers / k`` does.

Unset, full recompute recomputes every layer (``uniform`` with groups of one, the default); the other
recompute settings recompute no layer whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from simcluster.spec.training import TrainingSpec


def recomputed_in_chunk(chunk_layers: int, training: TrainingSpec) -> int:
    """Layers of a chunk of ``chunk_layers`` that full recompute runs again: min(N, n), all when N is unset,
    none unless ``training.recompute`` is full."""
    if training.recompute != "full":
        return 0
    n = training.recompute_num_layers
    return chunk_layers if n is None else min(n, chunk_layers)


def recomputed_layers(chunks: Iterable[Sequence[int]], training: TrainingSpec) -> frozenset[int]:
    """The layer indices (of ``chunks``, each a chunk's layers in order) that full recompute runs again:
    each chunk's first :func:`recomputed_in_chunk`."""
    out: set[int] = set()
    for chunk in chunks:
        out.update(list(chunk)[:recomputed_in_chunk(len(chunk), training)])
    return frozenset(out)


def partial(training: TrainingSpec) -> bool:
    """Whether some layers under full recompute keep their activations (``recompute_num_layers`` set)."""
    return training.recompute == "full" and training.recompute_num_layers is not None
