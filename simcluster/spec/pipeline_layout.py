"""Megatron-Core's ``--pipeline-model-parallel-layout`` as ``parallelism.stage_layers``.

The layout string (Megatron-LM ``megatron/core/transformer/pipeline_parallel_layer_layout.py``,
``PipelineParallelLayerLayout.parse_str_to_list`` and ``validate_layer_layout``) lists the model chunks in order,
separated by ``|``: ``E`` the embedding, ``t`` a transformer (decoder) layer, ``m`` a multi-token-prediction layer,
``L`` the loss; ``(…)*n`` and ``x*n`` repeat, commas are cosmetic. Chunk k runs on pipeline rank k mod p as its
virtual stage k div p, so p·v chunks give ``virtual_stages`` v. ``"Et|(tt|)*30mL"`` (DeepSeek-V3 on 1,024 H100:
p 8, v 4) is the embedding and one layer, thirty chunks of two layers, then the MTP layer and the loss:
``stage_layers [1, 2, …, 2, 0]``.

What the simulator places itself is checked against the string rather than carried: the embedding first in the
first chunk, the loss last in the last chunk, the MTP layers after every decoder layer and in the last chunk
(Megatron-Core requires them in a rank's last virtual stage; the simulator runs them on the last chunk).
"""

from __future__ import annotations

import re

#: The longest layout read once unrolled (a guard: ``(t)*10**9`` is refused, not built).
MAX_CHARS = 1_000_000
_GROUP = re.compile(r"\(([^)]+)\)\*(\d+)")
_SINGLE = re.compile(r"(.)\*(\d+)")


def _unroll(pattern: re.Pattern[str], text: str) -> str:
    def expand(m: re.Match[str]) -> str:
        if len(m.group(1)) * int(m.group(2)) > MAX_CHARS:
            raise ValueError(f"unrolls to more than {MAX_CHARS:,} characters")
        return m.group(1) * int(m.group(2))
    out = pattern.sub(expand, text)
    if len(out) > MAX_CHARS:
        raise ValueError(f"unrolls to more than {MAX_CHARS:,} characters")
    return out


def layout_chunks(layout: str) -> list[str]:
    """The model chunks of ``layout``, each a string of E, t, m, L (Megatron-Core's ``parse_str_to_list``)."""
    text = _unroll(_SINGLE, _unroll(_GROUP, layout.replace(",", "").replace(" ", "")))
    chunks = text.split("|")
    bad = sorted({c for c in text if c not in "EtmL|"})
    if bad:
        raise ValueError(f"unknown layer character {bad[0]!r} (known: E, t, m, L, |, (…)*n, x*n)")
    return chunks


def stage_layers_of(layout: str, pipeline: int, layers: int, mtp_layers: int = 0) -> tuple[list[int], int]:
    """(``parallelism.stage_layers``, ``virtual_stages``) of ``layout`` for ``pipeline`` ranks and a model of
    ``layers`` decoder layers and ``mtp_layers`` MTP layers; ValueError says why a layout cannot be carried."""
    chunks = layout_chunks(layout)
    if len(chunks) % pipeline:
        raise ValueError(f"{len(chunks)} model chunks do not divide over pipeline {pipeline}")
    flat = "".join(chunks)
    if flat.count("E") != 1 or not chunks[0].startswith("E"):
        raise ValueError("needs the embedding (E) once, first in the first chunk (where the simulator runs it)")
    if flat.count("L") != 1 or not chunks[-1].endswith("L"):
        raise ValueError("needs the loss (L) once, last in the last chunk (where the simulator runs it)")
    if flat.count("t") != layers:
        raise ValueError(f"holds {flat.count('t')} decoder layers (t); the model has {layers}")
    if flat.count("m") != mtp_layers:
        raise ValueError(f"holds {flat.count('m')} MTP layers (m); the model has {mtp_layers}")
    if mtp_layers and (chunks[-1].count("m") != mtp_layers or "t" in chunks[-1][chunks[-1].index("m"):]):
        raise ValueError("the MTP layers (m) must all follow the decoder layers in the last chunk, where the "
                         "simulator runs them")
    return [c.count("t") for c in chunks], len(chunks) // pipeline
