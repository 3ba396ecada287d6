"""Parameter counts of a decoder-only transformer (``model``: a :class:`ModelSpec`).

From ``model``: layers, hidden (h), heads (a), kv_heads (g, default a),
ffn_hidden (f, default 4h), vocab (V), seq_len (s), mlp ("gelu" | "swiglu"),
tied_embeddings. Position embeddings are learned (s·h parameters): the spec
has no other kind.

Per layer, Megatron-LM's GPT layout (Narayanan et al. 2021 §5.1,
Korthikanti et al. 2022 §3): with d = h/a the head dimension,

    QKV   h·(h + 2·g·d) weights + (h + 2·g·d) bias      (g = a: 3h² + 3h)
    proj  h² + h
    MLP   gelu:   fc1 h·f + f, fc2 f·h + h              (f = 4h: 8h² + 5h)
          swiglu: gate and up 2·h·f + 2f, down f·h + h  (biases kept for
                  uniformity; LLaMA-style models omit them, < 0.1 % of a layer)
    norms 2 layernorms × (γ, β) = 4h

which for g = a, f = 4h, gelu is the familiar 12h² + 13h. Embedding: V·h
(word) + s·h (learned positions); the output layer reuses the word embedding
when tied, else adds V·h; the final layernorm adds 2h.

Tensor parallelism (Shoeybi et al. 2019, Megatron-LM): the weight matrices,
the column-parallel biases (QKV, fc1/gate/up) and the word embedding
(vocab-parallel) are split t ways; row-parallel biases (proj, fc2) and the
layernorms (6h per layer) and the position embedding are replicated.
"""

from __future__ import annotations

from simcluster.costs import mla
from simcluster.spec.workload import ModelSpec


def head_dim(model: ModelSpec) -> int:
    """d: ``model.head_dim``, by default h / a."""
    return model.head_dim or model.hidden // model.heads


def q_width(model: ModelSpec) -> int:
    """Width of Q (= of the attention output the projection reads): a·d, h unless head_dim says otherwise."""
    return model.heads * head_dim(model)


def kv_width(model: ModelSpec) -> int:
    """Width of K (= of V): g·d."""
    return (model.kv_heads or model.heads) * head_dim(model)


def kv_heads_per_rank(model: ModelSpec, tensor: int = 1) -> float:
    """K/V heads one tensor-parallel rank holds: g/t, or 1 when g < t.

    With fewer K/V heads than tensor ranks (multi-query attention, PaLM, Chowdhery et al.
    2022 §2; grouped-query attention, Ainslie et al. 2023) each rank keeps the one K/V head
    its query heads use: the heads are replicated t/g times across the tensor group, as
    Megatron-LM does, and their weight gradients are summed over the group.
    """
    g = model.kv_heads or model.heads
    return g / tensor if g >= tensor else 1.0


def kv_params(model: ModelSpec) -> int:
    """K and V projections with their biases: 2·(h + 1)·g·d."""
    return 2 * (model.hidden + 1) * kv_width(model)


def replicated_kv_params(model: ModelSpec, tensor: int = 1) -> float:
    """K/V parameters a rank holds that other tensor ranks hold too (0 unless g < t)."""
    g = model.kv_heads or model.heads
    return kv_params(model) / g if g < tensor and model.attention != "mla" else 0.0


def ffn_width(model: ModelSpec) -> int:
    """f, the MLP's inner size (4h when the spec leaves it out; validation fills it in)."""
    return model.ffn_hidden or 4 * model.hidden


def mlp_matrices(model: ModelSpec) -> int:
    """Number of h×f matrices in the MLP: 2 (gelu) or 3 (swiglu)."""
    if model.mlp not in ("gelu", "swiglu"):
        raise ValueError(f"unknown mlp {model.mlp!r}; known: gelu, swiglu")
    return 3 if model.mlp == "swiglu" else 2


def layer_matrix_params(model: ModelSpec) -> int:
    """Weights of the layer's matrices (no biases): h·(a·d + 2·g·d) + a·d·h + n_mlp·h·f; 12h² for GPT."""
    h, f, q = model.hidden, ffn_width(model), q_width(model)
    if model.attention == "mla":  # multi-head latent attention (simcluster.costs.mla)
        return mla.matrix_params(model) + mlp_matrices(model) * h * f
    return h * (q + 2 * kv_width(model)) + q * h + mlp_matrices(model) * h * f


def layer_split_params(model: ModelSpec) -> int:
    """Parameters split by tensor parallelism: matrices + column-parallel biases."""
    h, f = model.hidden, ffn_width(model)
    if model.attention == "mla":  # the up- and out-projections (no biases), the MLP's matrices and column biases
        return mla.split_params(model) + mlp_matrices(model) * h * f + (mlp_matrices(model) - 1) * f
    column_bias = (q_width(model) + 2 * kv_width(model)) + (mlp_matrices(model) - 1) * f
    return layer_matrix_params(model) + column_bias


def layer_replicated_params(model: ModelSpec) -> int:
    """Parameters every tensor-parallel rank holds in full: proj and fc2 biases, two layernorms = 6h
    (a parallel block has one layernorm: 4h, unless ``parallel_block_norms`` 2, GPT-NeoX's); with MLA also its
    down-projections and latent norms; with ``qk_norm`` the q and k norms' scales, d each (shared by the heads);
    with ``post_norms`` two norms more (4h)."""
    own = mla.replicated_params(model) if model.attention == "mla" else 0  # MLA's down-projections, latent norms
    one_norm = model.parallel_block and model.parallel_block_norms == 1
    return ((4 if one_norm else 6) + (4 if model.post_norms else 0)) * model.hidden + own + (
        2 * head_dim(model) if model.qk_norm else 0)


def layer_params(model: ModelSpec, tensor: int = 1) -> float:
    """Parameters of one transformer layer on one tensor-parallel rank (12h² + 13h at t = 1).

    With g < t the K/V projections are not split but replicated (:func:`kv_heads_per_rank`).
    """
    if replicated_kv_params(model, tensor):
        return ((layer_split_params(model) - kv_params(model)) / tensor + replicated_kv_params(model, tensor)
                + layer_replicated_params(model))
    return layer_split_params(model) / tensor + layer_replicated_params(model)


def position_params(model: ModelSpec) -> int:
    """s·h: learned position embeddings (the only kind :class:`ModelSpec` describes)."""
    return model.seq_len * model.hidden


def embedding_params(model: ModelSpec, tensor: int = 1) -> float:
    """Input embedding on one rank: V·h/t (vocab-parallel) + position embedding."""
    return model.vocab * model.hidden / tensor + position_params(model)


def output_params(model: ModelSpec, tensor: int = 1, *, shares_embedding_stage: bool = False) -> float:
    """Final layernorm 2h + output projection V·h/t, unless tied to an embedding on the same stage.

    With tied embeddings and pipeline parallelism the last stage keeps its own
    copy of the word embedding (Megatron-LM synchronises the two copies'
    gradients), so only a tied model whose first and last stage coincide
    saves the V·h/t.
    """
    proj = 0.0 if (model.tied_embeddings and shares_embedding_stage) else model.vocab * model.hidden / tensor
    return 2 * model.hidden + proj


def mtp_params(model: ModelSpec, tensor: int = 1, *, shares_embedding_stage: bool = False) -> float:
    """Parameters of the multi-token-prediction modules outside their layers, on the last stage.

    Each module (DeepSeek-V3 §2.2, eq. 21) has its projection M_k of 2h·h (column-parallel: /t) and
    three norms (of the previous depth's output, of the embedding, and its own final norm before the
    shared head: 4h, counted as the final LayerNorm's 2h each but one). The modules embed the shifted
    tokens with the shared word embedding: an untied model whose first stage is another keeps a copy
    of it, V·h/t, on the last stage (Megatron-Core's ``GPTModel`` builds the embedding where
    ``mtp_process``), as tied models already do for their output projection.
    """
    d = model.mtp_layers
    if not d:
        return 0.0
    h = model.hidden
    copy = 0.0 if (shares_embedding_stage or model.tied_embeddings) else model.vocab * h / tensor
    return d * (2 * h * h / tensor + 4 * h) + copy


def total_params(model: ModelSpec) -> float:
    """Unsharded parameter count: l·layer + embedding + output (tied counted once), and each
    multi-token-prediction module's layer and :func:`mtp_params`; a mixture of experts counts every
    expert (:func:`simcluster.costs.moe.total_params`)."""
    if model.moe is not None:
        from simcluster.costs import moe

        return moe.total_params(model)
    return (model.layers + model.mtp_layers) * layer_params(model) + embedding_params(model) + output_params(
        model, shares_embedding_stage=True) + mtp_params(model, shares_embedding_stage=True)
