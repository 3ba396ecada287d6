"""Workload files: the model, how it is trained, how it is split over the cluster.

``load_workload(path, overrides)`` reads the file, applies ``--set`` overrides, resolves
the cluster (preset or file plus overrides), validates every section and the parallel
layout, and returns a :class:`WorkloadSpec` with every default filled in. All problems
found are raised together in one :class:`~simcluster.errors.SpecError`.
"""

from __future__ import annotations

from pathlib import Path
from types import GenericAlias
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, field_validator, model_validator

from simcluster.catalogue import COLLECTIVE_OPS
from simcluster.errors import Problem, SpecError
from simcluster.spec.checks import check_workload
from simcluster.spec.cluster import ClusterSpec, resolve_cluster
from simcluster.spec.fields import (
    MAX_DEVICES,
    STRICT,
    AlgorithmName,
    FileName,
    OpName,
    PositiveInt,
    as_file_name,
)
from simcluster.spec.limits import workload_limits
from simcluster.spec.models import resolve_model
from simcluster.spec.mla import MlaSpec, mla_checks
from simcluster.spec.moe import MoeSpec, moe_checks
from simcluster.spec.overrides import apply_overrides
from simcluster.spec.parallelism import ParallelismSpec
from simcluster.spec.problems import Locator, problems_from_error
from simcluster.spec.training import TrainingSpec
from simcluster.spec.yamlio import YamlDoc, load_yaml


class ModelSpec(BaseModel):
    """A decoder-only transformer. ``ffn_hidden`` and ``kv_heads`` are filled in when omitted."""

    model_config = STRICT
    layers: PositiveInt = Field(le=100_000, description="Transformer layers (decoder blocks).")
    hidden: PositiveInt = Field(le=1_000_000, description="Hidden size h; heads must divide it.")
    heads: PositiveInt = Field(le=100_000, description="Attention heads a; tensor must divide it.")
    seq_len: PositiveInt = Field(le=100_000_000, description="Sequence length s in tokens.")
    vocab: PositiveInt = Field(le=100_000_000, description="Vocabulary size V (embedding and logits).")
    ffn_hidden: PositiveInt | None = Field(default=None, le=10_000_000, description="MLP inner size f; tensor must divide it.",
                                           json_schema_extra={"default_doc": "4 × hidden"})
    kv_heads: PositiveInt | None = Field(
        default=None, le=100_000, description="Key/value heads; fewer than heads is grouped-query attention (must divide heads).",
        json_schema_extra={"default_doc": "heads"})
    head_dim: PositiveInt | None = Field(
        default=None, le=100_000, description="Size of one attention head d; heads × head_dim may differ from "
        "hidden (PaLM 540B: 48 × 256 = 12288 against hidden 18432).",
        json_schema_extra={"default_doc": "hidden / heads"})
    mlp: Literal["gelu", "swiglu"] = Field(default="gelu", description="MLP kind: GeLU (two matrices) or SwiGLU "
                                           "(gate and up projections, then down).")
    tied_embeddings: bool = Field(default=True, description="The logits reuse the word embedding (first and last "
                                  "stage then all-reduce its gradient); false adds V·h parameters.")
    parallel_block: bool = Field(default=False, description="Attention and MLP computed in parallel from one "
                                 "LayerNorm (GPT-J; PaLM §2 'Parallel Layers'): their input GEMMs fused into one and "
                                 "one tensor-parallel reduction per layer and pass instead of two.")
    parallel_block_norms: Literal[1, 2] = Field(
        default=1, description="LayerNorms of a parallel block: 1 (GPT-J, PaLM: one LayerNorm feeds both halves, "
        "their input GEMMs fused) or 2 (GPT-NeoX's gpt_j_residual: input_layernorm and post_attention_layernorm both "
        "of x, separate QKV and MLP-up GEMMs, whose inputs' gradients are all-reduced over the tensor ranks one "
        "by one in the backward: two reductions there, one in the forward; the attention's bias add, the MLP's "
        "bias-dropout-add onto it and the residual add as three kernels).")
    attention_dropout: float = Field(
        default=0.1, ge=0.0, lt=1.0, description="Dropout probability on the attention probabilities (Megatron-LM's "
        "--attention-dropout, 0.1 by default). At 0 PyTorch's dropout returns its input: the unfused attention runs "
        "no dropout kernel and keeps no mask or dropout output (flash attention fuses its dropout either way).")
    alibi: bool = Field(
        default=False, description="Attention with linear biases (BLOOM). The unfused attention adds the bias through "
        "torch.baddbmm(alibi, q, kᵀ, beta=1) (BigScience's Megatron-DeepSpeed), which first copies the broadcast "
        "bias into the scores and then has the batched GEMM read them: two passes over b·a·s² elements in each "
        "forward (and recompute); nothing in the backward (the bias takes no gradient) or under flash attention.")
    embed_layernorm: bool = Field(
        default=False, description="A LayerNorm of the embedding output before the first layer (BLOOM: the "
        "checkpoint's word_embeddings_layernorm; BigScience's Megatron-DeepSpeed --embed-layernorm, a "
        "torch.nn.LayerNorm that VocabParallelEmbedding applies after its tensor-parallel all-reduce, every "
        "tensor rank over the whole tensor). One norm's forward and backward per microbatch on the first stage, "
        "which keeps its 16-bit input and its fp32 mean and rstd per token until the backward.")
    rotary_pct: float = Field(
        default=1.0, gt=0.0, le=1.0, description="Share of each head's query and key dimensions that rotary "
        "embeddings rotate (GPT-NeoX's rotary_pct; GPT-NeoX-20B: 0.25). Below 1 the model code slices q and k "
        "into rotated and pass-through parts and concatenates them back: the concatenation forward and each "
        "slice's zero-filled full-size gradient and their sum backward are costed (docs/model.md); the rotation "
        "itself is not.")
    sliding_window: PositiveInt | None = Field(
        default=None, description="Each query attends to at most this many keys, itself and those before it "
        "(Mistral 7B: 4,096 in a context of 8,192; Jiang et al. 2023 §2). Flash attention skips the blocks outside "
        "the window (FlashAttention-2's window_size): the attention core costs P_w/P of the causal kernel, "
        "P_w = w(w+1)/2 + (s−w)·w query-key pairs against P = s(s+1)/2, and model FLOPs count the same pairs; the "
        "unfused attention computes and masks the whole score matrix (no saving). Not with context parallelism "
        "or latent attention.", json_schema_extra={"default_doc": "none: the whole causal prefix"})
    full_attention_every: Annotated[int, Field(ge=2, le=100_000)] | None = Field(
        default=None, description="With sliding_window: every N-th layer (layers N−1, 2N−1, …, 0-based) attends over "
        "the whole causal prefix and the others over the window, as Hugging Face transformers lays them out "
        "(Gemma 2 and GPT-OSS alternate: 2; Gemma 3: 6, 'sliding_window_pattern'). Each kind of layer is costed "
        "with its own attention core; model FLOPs count each layer's pairs.",
        json_schema_extra={"default_doc": "none: every layer windowed"})
    post_norms: bool = Field(
        default=False, description="Gemma 2/3's sandwich norms: an RMSNorm of the attention's and of the MLP's output "
        "before each residual add (transformers' Gemma2DecoderLayer post_attention_layernorm and "
        "post_feedforward_layernorm), four norms a layer instead of two: two more norm kernels over b·s·h each way, "
        "their inputs kept without recompute. Not with a parallel block, latent attention or experts.")
    qk_norm: bool = Field(
        default=False, description="A norm of each head's queries and keys after the QKV projection, before rotary "
        "and attention (Qwen3, Gemma 3, OLMo 2; Megatron-Core's --qk-layernorm): one fused norm kernel over the "
        "b·s·(a + g)·d elements each way, whose inputs the backward keeps (2 B each without recompute); eager "
        "PyTorch model code runs each as its RMSNorm's eight kernels (docs/model.md). Not with latent attention, "
        "whose own norms are its q_norm and kv_norm.")
    attention: Literal["mha", "mla"] = Field(default="mha", description="Attention kind: multi-head (kv_heads "
                                             "for grouped- or multi-query) or DeepSeek's multi-head latent attention "
                                             "(model.mla, below).")
    mla: MlaSpec | None = Field(default=None, description="Multi-head latent attention's ranks and head sizes "
                                "(with attention: mla).", json_schema_extra={"default_doc": "none"})
    moe: MoeSpec | None = Field(default=None, description="Mixture of experts: the MLP of some layers replaced by "
                                "routed experts (model.moe, below).", json_schema_extra={"default_doc": "dense"})
    mtp_layers: int = Field(
        default=0, ge=0, le=64, description="Multi-token prediction modules (DeepSeek-V3 §2.2, D; config.json's "
        "num_nextn_predict_layers; Megatron-Core --mtp-num-layers), on the last pipeline stage: each predicts one "
        "more future token with its own RMSNorms of the previous depth's output and of the shifted tokens' "
        "embedding, a projection 2h → h, one transformer layer (an MoE layer where the model's layer rule makes "
        "layer index layers + i one) and a pass through the shared output head and cross-entropy.")

    @model_validator(mode="after")
    def _fill(self) -> "ModelSpec":
        if self.ffn_hidden is None:
            self.ffn_hidden = 4 * self.hidden
        if self.kv_heads is None:
            self.kv_heads = self.heads
        return self


#: Keys ``python -m simcluster search`` varies; ``search.space`` limits the values of each.
SEARCH_KEYS = ("parallelism.tensor", "parallelism.pipeline", "parallelism.data", "parallelism.context",
               "training.micro_batch", "parallelism.virtual_stages", "parallelism.schedule",
               "parallelism.sequence_parallel", "training.recompute", "parallelism.zero_stage",
               "parallelism.expert", "parallelism.expert_tensor")


class SearchSpec(BaseModel):
    """Limits for ``python -m simcluster search`` (``run`` ignores this section); flags win over it."""

    model_config = STRICT
    gpus: PositiveInt | None = Field(default=None, le=MAX_DEVICES, description="Use at most this many GPUs (more than the cluster "
                                     "has grows it).", json_schema_extra={"default_doc": "the cluster's GPUs"})
    min_gpus: PositiveInt | None = Field(default=None, le=MAX_DEVICES, description="Use at least this many GPUs.",
                                         json_schema_extra={"default_doc": "more than half of gpus"})
    objective: Literal["throughput", "cost"] = Field(default="throughput", description="Rank by tokens/s, or by "
                                                     "tokens per dollar (needs cluster price_per_gpu_hour).")
    top: PositiveInt = Field(default=10, le=10_000, description="Layouts to show, and the fewest to simulate.")
    max_simulations: PositiveInt | None = Field(default=None, le=100_000, description="Simulate at most this many layouts from "
                                                "the analytical ranking.", json_schema_extra={"default_doc": "64"})
    space: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(
        default_factory=dict, description="The values to try per searched key (keys listed below).")

    @field_validator("space")
    @classmethod
    def _space(cls, space: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in space.items():
            if key not in SEARCH_KEYS:
                raise ValueError(f"unknown key {key!r}; known: {', '.join(SEARCH_KEYS)}")
            section, name = key.split(".")
            owner = TrainingSpec if section == "training" else ParallelismSpec
            try:
                item = owner.model_fields[name].rebuild_annotation()
                # list[item], built at runtime: no static type form that TypeAdapter's TypeForm[T]
                # parameter could check (mypy limitation); pydantic checks it when the adapter is built
                TypeAdapter(GenericAlias(list, (item,))).validate_python(values, strict=True)  # type: ignore[arg-type]
            except ValidationError as err:
                msg = err.errors()[0]["msg"].removeprefix("Value error, ")
                raise ValueError(f"{key}: {msg[:1].lower() + msg[1:]}, got {values!r}") from None
        return space


class WorkloadSpec(BaseModel):
    """A validated workload with its resolved cluster; every default filled in."""

    model_config = STRICT
    hidden_keys: ClassVar[tuple[str, ...]] = ("source",)

    name: FileName = Field(description="The run's name (reports/<name>/).",
                      json_schema_extra={"default_doc": "the file's stem"})
    source: str = "<inline>"
    model: ModelSpec = Field(description="The model (below).")
    training: TrainingSpec = Field(description="How it is trained (below).")
    parallelism: ParallelismSpec = Field(default_factory=ParallelismSpec,
                                         description="How it is split over the GPUs (below).")
    collectives: dict[OpName, AlgorithmName] = Field(
        default_factory=dict, description="Algorithm per collective; auto picks per message size, as "
        "NCCL's tuner does.", json_schema_extra={"default_doc": "`auto` for every collective"})
    fidelity: Literal["auto", "symmetric", "partial", "full"] = Field(
        default="auto", description="symmetric simulates one GPU per pipeline stage, full every GPU; partial "
        "simulates the data-parallel replicas that stragglers, mixed-device nodes or degraded links touch GPU by "
        "GPU and one GPU per stage for the others (full where it cannot: failed links, explicit graphs, spine "
        "or torus links, hybrid sharding, every replica touched); auto picks symmetric for a homogeneous "
        "cluster, partial otherwise, and full on nodes whose GPU pairs are linked unevenly (the 8-GPU nvlink-mesh, "
        "DGX-1's hybrid cube-mesh: 1 or 2 NVLinks a pair), where symmetric and partial are refused.")
    search: SearchSpec | None = Field(default=None, description="Limits for `search`; `run` ignores them.")
    cluster: ClusterSpec = Field(description="The cluster (below).")

    @model_validator(mode="after")
    def _resolve(self) -> "WorkloadSpec":
        for op in COLLECTIVE_OPS:
            self.collectives.setdefault(op, "auto")
        p = self.parallelism
        if p.data is None:
            rest = p.tensor * p.pipeline * p.context
            if self.cluster.num_gpus % rest == 0 and self.cluster.num_gpus >= rest:
                p.data = self.cluster.num_gpus // rest
        return self

    @property
    def num_gpus(self) -> int:
        """GPUs used: tensor * pipeline * data * context."""
        p = self.parallelism
        return p.tensor * p.pipeline * (p.data or 0) * p.context

    @property
    def num_microbatches(self) -> int:
        """Microbatches per pipeline per iteration: global_batch // (micro_batch * data)."""
        return self.training.global_batch // (self.training.micro_batch * (self.parallelism.data or 1))

    def resolved_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of everything, defaults filled, cluster resolved (for config.json)."""
        out = self.model_dump(mode="json", exclude={"cluster", "search"})
        out["cluster"] = self.cluster.resolved_dict()
        out["num_gpus"] = self.num_gpus
        out["num_microbatches"] = self.num_microbatches
        return out


def _written(where: Locator, keys: tuple[str, ...]) -> str:
    """The key to take file and line from: one set with ``--set`` if any, else the first written."""
    for key in keys:
        if where.from_set(key):
            return key
    for key in keys:
        if where.doc is not None and key in where.doc.lines:
            return key
    return keys[0]


def workload_from_data(
    data: dict[str, Any],
    source: str = "<inline>",
    overrides: list[str] | tuple[str, ...] = (),
    doc: YamlDoc | None = None,
    base_dir: Path | None = None,
) -> WorkloadSpec:
    """Validate a workload mapping (as read from YAML) after applying ``overrides``; raises SpecError.

    ``doc`` (a :class:`~simcluster.spec.yamlio.YamlDoc`) supplies line numbers;
    ``base_dir`` is where a relative ``cluster.path`` is looked up (default: cwd).
    """
    data = dict(data)
    if isinstance(data.get("cluster"), str):
        data["cluster"] = {"preset": data["cluster"]}
    set_keys, problems = apply_overrides(data, list(overrides))
    model_problems = resolve_model(data, base_dir or Path.cwd(), source)  # model.from / model.preset
    if model_problems:  # the model could not be read: its keys' problems would only repeat this
        raise SpecError(problems + model_problems)
    where = Locator(doc, set_keys=set_keys, file=source)
    data.setdefault("name", as_file_name(Path(source).stem))
    data["source"] = source
    cluster: ClusterSpec | None = None
    try:
        cluster = resolve_cluster(
            data.get("cluster"), Locator(doc, prefix="cluster", set_keys=set_keys, file=source), base_dir or Path.cwd()
        )
    except SpecError as exc:
        problems.extend(exc.problems)
    payload = {k: v for k, v in data.items() if k != "cluster"}
    if cluster is not None:
        payload["cluster"] = cluster
    spec: WorkloadSpec | None = None
    try:
        spec = WorkloadSpec.model_validate(payload)
    except ValidationError as err:
        problems.extend(problems_from_error(err, WorkloadSpec, where, skip=lambda key: key == "cluster" or key.startswith("cluster.")))
    if spec is not None:
        for finding in check_workload(spec) + moe_checks(spec) + mla_checks(spec) + workload_limits(spec):
            file, line, _ = where(_written(where, (finding.key, *finding.near)))
            problems.append(Problem(file, line, finding.key, finding.reason))
    if problems or spec is None:
        raise SpecError(problems)
    return spec


def load_workload(path: str | Path, overrides: list[str] | tuple[str, ...] | None = None) -> WorkloadSpec:
    """Read, override (``--set`` strings ``"key=value"``), validate and resolve a workload file.

    Raises :class:`~simcluster.errors.SpecError` carrying every problem found.
    """
    doc = load_yaml(path)
    return workload_from_data(doc.data, source=str(path), overrides=overrides or (), doc=doc, base_dir=Path(path).parent)
