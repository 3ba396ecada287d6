"""Split layers over pipeline stages (and virtual-stage model chunks)."""

from __future__ import annotations

from simcluster.spec.workload import ModelSpec


def partition_layers(layers: int, stages: int, virtual: int = 1,
                     stage_layers: list[int] | None = None) -> list[list[int]]:
    """Layer indices of each model chunk ``k = chunk·stages + stage`` (Megatron's interleaving).

    With ``stage_layers`` given, chunk k holds ``stage_layers[k]`` consecutive
    layers. Otherwise the split is as even as possible: every chunk gets
    ``layers // (stages·virtual)`` layers and the remainder goes one each to
    the middle chunks first, since the first chunk also holds the embedding
    and the last the logits and loss (BLOOM: 70 layers on 12 stages).
    """
    n = stages * virtual
    if stage_layers is not None:
        counts = list(stage_layers)
        if len(counts) != n or sum(counts) != layers or min(counts) < 0:
            raise ValueError(f"stage_layers must give {n} counts summing to {layers}")
    else:
        base, extra = divmod(layers, n)
        counts = [base] * n
        # middle-out order of chunk indices: those farthest from both ends first
        order = sorted(range(n), key=lambda k: (-min(k, n - 1 - k), k))
        for k in order[:extra]:
            counts[k] += 1
    out, first = [], 0
    for c in counts:
        out.append(list(range(first, first + c)))
        first += c
    return out


def model_chunks(model: ModelSpec, stages: int, virtual: int = 1,
                 stage_layers: list[int] | None = None) -> list[list[int]]:
    """:func:`partition_layers` of the model's layers, then each multi-token-prediction module's layer
    (indices ``layers`` … ``layers + mtp_layers − 1``) on the last chunk, after the main layers: the
    modules run on the last stage, beside the output head they share (DeepSeek-V3 §3.2.1 keeps the
    deepest layers and the output head together; Megatron-Core places its MTP block on the last
    pipeline stage)."""
    chunks = partition_layers(model.layers, stages, virtual, stage_layers)
    chunks[-1] = chunks[-1] + list(range(model.layers, model.layers + model.mtp_layers))
    return chunks
