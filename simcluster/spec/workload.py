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

from simcluster.catalogue import COLLECTIVE_OPS, Framework, Optimizer, Precision, Recompute
from simcluster.errors import Problem, SpecError
from simcluster.spec.checks import check_workload
from simcluster.spec.cluster import ClusterSpec, resolve_cluster
from simcluster.spec.fields import (
    MAX_DEVICES,
    STRICT,
    AlgorithmName,
    BucketBytes,
    FileName,
    OpName,
    PositiveInt,
    ScheduleName,
    as_file_name,
)
from simcluster.spec.limits import workload_limits
from simcluster.spec.models import resolve_model
from simcluster.spec.mla import MlaSpec, mla_checks
from simcluster.spec.moe import MoeSpec, moe_checks
from simcluster.spec.overrides import apply_overrides
from simcluster.spec.problems import Locator, problems_from_error
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
    rotary_pct: float = Field(
        default=1.0, gt=0.0, le=1.0, description="Share of each head's query and key dimensions that rotary "
        "embeddings rotate (GPT-NeoX's rotary_pct; GPT-NeoX-20B: 0.25). Below 1 the model code slices q and k "
        "into rotated and pass-through parts and concatenates them back: the concatenation forward and each "
        "slice's zero-filled full-size gradient and their sum backward are costed (docs/model.md); the rotation "
        "itself is not.")
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


class TrainingSpec(BaseModel):
    """One training iteration: batch sizes, numeric precision, optimizer, recomputation."""

    model_config = STRICT
    global_batch: PositiveInt = Field(le=100_000_000, description="Sequences per iteration; a multiple of micro_batch × data.")
    micro_batch: PositiveInt = Field(default=1, le=1_000_000, description="Sequences per microbatch on one pipeline.")
    precision: Precision = Field(default="bf16", description="Numeric precision; bf16 and fp16 are mixed precision "
                                 "(fp32 master weights and optimizer states); fp8 (H100, H200, H800) runs the GEMMs "
                                 "in FP8 with fine-grained scaling and everything else in bf16, caches the GEMM "
                                 "inputs in FP8 and keeps Adam's moments in bf16 (DeepSeek-V3 §3.3).")
    optimizer: Optimizer = Field(default="adam", description="Adam (two fp32 states per parameter) or SGD with "
                                 "momentum (one).")
    recompute: Recompute = Field(default="none", description="Activation recomputation: selective recomputes the "
                                 "attention core, full the whole layer, before its backward.")
    recompute_saves: list[Literal["qkv", "proj", "fc1", "fc2", "attention"]] | None = Field(
        default=None, description="With recompute: selective, the layer outputs the checkpoint keeps; the rest of the "
        "layer's forward (the other GEMMs, the attention core unless listed, every memory-bound kernel) runs again "
        "before its backward, as a name-based policy does (MaxText's remat_policy save_dot_except_mlpwi or custom "
        "with query/key/value/out_proj and mlpwo on device: [qkv, proj, fc2]; JAX's save_only_these_names). "
        "Unset: the framework's selective recompute (Megatron's attention core; pytorch: torchtitan's op SAC).",
        json_schema_extra={"default_doc": "the framework's"})
    distribute_saved_activations: bool = Field(
        default=False, description="Full recompute: each layer's saved input split over the tensor-parallel ranks "
        "and all-gathered before it is recomputed (Megatron-LM --distribute-saved-activations; PaLM §4 saves one "
        "fully sharded activation a layer). Sequence parallelism already splits it.")
    flash_attention: bool = Field(default=True, description="Fused attention kernel: the s² attention scores are "
                                  "never stored.")
    framework: Framework = Field(default="megatron", description="The software stack whose kernels, optimizer, "
                                 "ZeRO and pipeline behaviour are simulated (docs/model.md, 'Software stacks').")
    attention_kernel: Literal["auto", "fa2", "fa3", "triton"] = Field(
        default="auto", description="The flash-attention kernel: fa2 is FlashAttention-2 (the flash_attn package, "
        "PyTorch SDPA's flash backend), fa3 FlashAttention-3 or cuDNN's fused attention (Transformer Engine, SDPA's "
        "cuDNN backend; Hopper only), about 1.6x faster than fa2 on H100/H200; triton the 2022 FlashAttention in "
        "Triton (llm-foundry's attn_impl: triton), 1.4x slower than fa2 forward and 2x backward; auto is the "
        "framework's on Hopper (megatron, jax: fa3; pytorch, deepspeed: fa2) and the device's own curve elsewhere.")
    cross_entropy: Literal["auto", "fused", "megatron_fused"] = Field(
        default="auto", description="The loss kernel: auto is the framework's (Megatron's vocab-parallel fp32 "
        "softmax, PyTorch's F.cross_entropy under autocast in fp32, XLA's fused one); fused is flash-attn's "
        "one-kernel cross-entropy over the 16-bit logits (llm-foundry's default loss_fn, TinyLlama): 2 B per "
        "logit read forward, 4 B backward, only the logits saved; megatron_fused is Megatron-Core's "
        "--cross-entropy-loss-fusion (NeMo's cross_entropy_loss_fusion; framework megatron): the same fp32 "
        "softmax in torch.compile'd kernels, 22 B per logit forward and 6 B backward instead of 38 and 14.")
    train_metrics: int = Field(
        default=0, ge=0, le=64, description="Cross-entropy train metrics the trainer computes over the logits after "
        "every microbatch (Composer: torch CrossEntropyLoss under autocast, an fp32 cast and log-softmax per "
        "metric); llm-foundry's MPT trains with 2 (LanguageCrossEntropy, LanguagePerplexity; use_train_metrics "
        "defaults to true). 0: none.")
    fp8_weight_cache: bool = Field(
        default=False, description="With precision fp8, each weight is quantized once per step and its FP8 copy "
        "reused by the later microbatches (Transformer Engine's is_first_microbatch, which Megatron-Core's TE "
        "layers pass); false: every FP8 GEMM quantizes its weight (DeepSeek-V3's 128x128 blocks as the "
        "simulator counts them).")
    fp8_recipe: Literal["delayed", "current", "blockwise"] = Field(
        default="delayed", description="With precision fp8, how operands are scaled: delayed is Transformer "
        "Engine's default DelayedScaling (one scale per tensor from past steps' amax, one cast kernel); current "
        "its Float8CurrentScaling (NeMo's FP8-CS: an amax pass, then the cast); both run cuBLASLt's FP8 GEMMs. "
        "blockwise is DeepSeek-V3's fine-grained scaling (1x128 activation tiles, 128x128 weight blocks) with "
        "its own FP8 GEMM kernels.")
    optimizer_dtype: Literal["fp32", "bf16"] = Field(
        default="fp32", description="The optimizer states' dtype: bf16 keeps Adam's m and v (SGD's momentum) in bf16 "
        "with no fp32 master copy, the bf16 weights updated in place, and reduces gradients in bf16 (NeMo's "
        "distributed_fused_adam with dtype: bf16 and grad_sync_dtype: bf16): 2 + 2 + 4 B per parameter for Adam "
        "instead of 2 + 2 + 12, states sharded over data parallelism; needs framework megatron, precision bf16 "
        "or fp8 and zero_stage >= 1.")
    fsdp_param_dtype: Literal["bf16", "fp32"] = Field(
        default="bf16", description="pytorch with ZeRO-3 (FSDP): the dtype FSDP gathers and computes the parameters "
        "in. bf16: param_dtype bf16 (torchtitan's FSDP2 MixedPrecisionPolicy; Composer's DEFAULT and PURE since "
        "March 2023): 16-bit all-gathers, no autocast casts, a 16-bit residual stream, fp32 gradient reduction. "
        "fp32: param_dtype fp32 under autocast (Lightning Fabric's and Trainer's bf16-mixed and 16-mixed since "
        "2.0.3; Composer's DEFAULT before March 2023): fp32 all-gathers, every GEMM casts its gathered weight each "
        "microbatch and keeps the cast for its backward, an fp32 residual stream (docs/model.md), gradients "
        "reduce-scattered in 16 bits.")
    gradient_accumulation_fusion: bool = Field(
        default=True, description="Megatron's weight-gradient GEMM accumulates into the fp32 main gradient "
        "(Megatron-LM Feb 2022 on); false: Megatron-LM before it, a separate add per weight and microbatch "
        "(bf16: the main_grad hook, 10 B per weight; fp16: autograd's in-place add, 6 B after the first "
        "microbatch). megatron only: the other stacks' accumulation is their own.")
    fused_kernels: bool | None = Field(
        default=None, description="Whether the model code runs fused kernels; unset is the framework's: megatron and "
        "deepspeed run Megatron's fused kernels (scale-mask-softmax, bias-GeLU, bias-dropout-add; Megatron-LM 2020 "
        "on), pytorch torchtitan-style eager code, jax XLA's fusions. false with megatron or deepspeed: Megatron-LM "
        "2019's layer of separate PyTorch ops and its synchronous CUDA RNG-state swaps around the dropout and activation "
        "checkpoints (with megatron in fp16 also its FP16_Optimizer's per-tensor loops: overflow check, gradient copies, "
        "unscale, clip norm); true with pytorch: fused model kernels as lit-gpt/TinyLlama run them "
        "(flash-attn's RMSNorm and rotary, xformers' SwiGLU; no repeat_kv).",
        json_schema_extra={"default_doc": "the framework's"})


class ParallelismSpec(BaseModel):
    """The parallel layout. ``data`` is filled from the cluster when omitted.

    ``virtual_stages > 1`` with no ``schedule`` given selects the interleaved schedule.
    """

    model_config = STRICT
    tensor: PositiveInt = Field(default=1, le=MAX_DEVICES, description="Tensor-parallel degree t (Megatron column/row split).")
    pipeline: PositiveInt = Field(default=1, le=MAX_DEVICES, description="Pipeline stages p; layers need not divide evenly.")
    data: PositiveInt | None = Field(default=None, le=MAX_DEVICES, description="Data-parallel degree d.",
                                     json_schema_extra={"default_doc": "GPUs / (tensor × pipeline × context)"})
    context: PositiveInt = Field(default=1, le=MAX_DEVICES, description="Context-parallel degree c: the sequence split over c GPUs; "
                                 "must divide seq_len.")
    sequence_parallel: bool = Field(default=False, description="Megatron sequence parallelism inside the tensor group: "
                                    "all-gather and reduce-scatter instead of all-reduce.")
    virtual_stages: PositiveInt = Field(default=1, le=100_000, description="Model chunks per pipeline rank v; more than 1 selects "
                                        "the interleaved schedule when none is given.")
    stage_layers: list[Annotated[int, Field(ge=0, le=100_000)]] | None = Field(
        default=None, description="Layers per chunk, one entry per pipeline × virtual_stages, summing to model.layers; "
        "the first and last chunk may hold none (they hold the embedding and the output; Llama 3 405B §3.3.2).",
        json_schema_extra={"default_doc": "as even as possible"})
    schedule: ScheduleName = Field(default="1f1b", description="Pipeline schedule; interleaved needs virtual_stages "
                                   "≥ 2 and microbatches a multiple of pipeline.")
    zero_stage: Annotated[int, Field(ge=0, le=3)] = Field(default=0, description="ZeRO sharding over data × context: "
                                                          "1 optimizer states, 2 also gradients, 3 also weights.")
    zero_shard: PositiveInt | None = Field(
        default=None, le=1_000_000, description="Hybrid sharding: ZeRO shards over groups of this many data-parallel "
        "ranks (consecutive, e.g. one TPU pod or node group) and replicates across the groups, whose gradient "
        "shards are then all-reduced (PaLM: 256-way within a pod, 2-way across; PyTorch HSDP). Must divide data.",
        json_schema_extra={"default_doc": "data (the whole group)"})
    expert: PositiveInt = Field(default=1, le=MAX_DEVICES, description="Expert-parallel degree: the routed experts "
                                "split over this many ranks of a pipeline stage (must divide model.moe.experts).")
    expert_tensor: PositiveInt | None = Field(
        default=None, le=MAX_DEVICES, description="Tensor parallelism inside an expert; expert_tensor × expert must "
        "divide tensor × context × data, the rest is expert-data parallelism (Megatron-Core).",
        json_schema_extra={"default_doc": "tensor"})
    overlap_grad_reduce: bool = Field(default=True, description="Reduce each gradient bucket as soon as the last "
                                      "microbatch's backward fills it; false: after the whole backward.")
    grad_bucket_bytes: BucketBytes = Field(default=25e6, description="Data-parallel gradient "
                                                             "bucket size.")
    overlap_p2p_comm: bool | None = Field(
        default=None, description="Pipeline sends run beside the next unit's compute (Megatron-LM's "
        "--overlap-p2p-communication, interleaved schedule only); false: a send holds its stage until delivered "
        "(Megatron-LM before Oct 2023, DeepSpeed's pipeline engine).",
        json_schema_extra={"default_doc": "the framework's: megatron on for interleaved, off otherwise; deepspeed "
                           "off; pytorch and jax on"})
    overlap_param_gather: bool = Field(
        default=False, description="With zero_stage 1 or 2, the updated weights' all-gather runs beside the next "
        "forward, each layer waiting for its own (Megatron-LM's --overlap-param-gather, NeMo's overlap_param_sync), "
        "not after the optimizer step.")
    tp_comm_overlap: bool = Field(
        default=False, description="Tensor-parallel collectives overlapped with the GEMMs beside them (Transformer "
        "Engine's userbuffers, Megatron-LM's --tp-comm-overlap, NeMo's ub_tp_comm_overlap): the forward all-gather "
        "runs under the block's compute, the forward reduce-scatter under it in num_splits chunks with the last "
        "exposed, the backward's all-gather and reduce-scatter under the backward's GEMMs; needs framework megatron, "
        "tensor > 1 and sequence_parallel.")
    p2p_scatter_gather: bool | None = Field(
        default=None, description="Each tensor rank sends 1/tensor of the activation and the receiving stage "
        "all-gathers it over the tensor group (Megatron-LM before Megatron-Core, Jan 2023; DeepSpeed's pipeline "
        "engine); false: every tensor rank sends all of it. Sequence parallelism sends 1/tensor either way.",
        json_schema_extra={"default_doc": "the framework's: deepspeed on, others off"})

    @model_validator(mode="after")
    def _interleave(self) -> "ParallelismSpec":
        if self.virtual_stages > 1 and "schedule" not in self.model_fields_set:
            self.schedule = "interleaved"
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
        "cluster, partial otherwise.")
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
