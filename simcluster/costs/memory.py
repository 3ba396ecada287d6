"""How much memory one GPU of a pipeline stage holds during a training iteration.

Inputs are the workload's spec models (:mod:`simcluster.spec.workload`):
  model (ModelSpec): layers, hidden h, heads a, kv_heads g, ffn_hidden f,
         vocab V, seq_len s, mlp, tied_embeddings (see :mod:`simcluster.costs.params`)
  training (TrainingSpec): micro_batch b, precision ("bf16"|"fp16"|"fp32"),
         optimizer ("adam"|"sgd"), recompute ("none"|"selective"|"full"),
         flash_attention
  parallelism (ParallelismSpec): tensor t, context c, data d (1 if unresolved),
         pipeline, sequence_parallel, zero_stage

Model states per parameter (weights, gradients, optimizer; what each stack keeps and how ZeRO shards them):
:mod:`simcluster.costs.model_states`. ZeRO-3 holds two unsharded layers (computing + prefetching) in ``buffers``.

Activations per layer and microbatch (Korthikanti et al. 2022, Table 2),
in bytes, 16-bit values, s the per-rank sequence s/c:
  no parallelism              s·b·h·(34 + 5·a·s/h)
  tensor parallel             s·b·h·(10 + 24/t + 5·a·s/(h·t))
  tensor + sequence parallel  s·b·h·(34/t + 5·a·s/(h·t))
  selective recompute         the 5·a·s/h term is dropped (so does flash attention); under
                              ``pytorch`` torchtitan's op SAC instead (:func:`op_sac_activation_bytes`)
  eager Llama code, no recompute  + what :func:`eager_saved_bytes` adds (``pytorch``)
  full recompute              2·s·b·h (÷ t with sequence parallel); with ``recompute_num_layers`` N
                              only each chunk's first N layers, the rest as without recompute
Derivation (their §4.1), generalised: 10 = layernorm inputs 4 + QKV and fc1
inputs 2 + 2 + two 1-byte dropout masks 2 (replicated across t); 24 = Q 2 +
K, V 4·g/a + projection input 2 + MLP 4·f/h (gelu: fc1 output and fc2 input;
swiglu 6·f/h: gate, up and product) (split by t); multi-head latent attention replaces the
attention's terms by :func:`simcluster.costs.mla.activation_bytes_per_token`; 5·a·s/h = softmax input 2
+ output 2 + dropout mask 1 per score. fp32 training doubles every value
but not the 1-byte masks. Full recompute also holds one layer's activations
while that layer is recomputed (added once, not per microbatch).

Stage extras per microbatch (Korthikanti §4.3, "4·s·b·h/t·(1 + V/h)"):
first stage, the embedding dropout mask s·b·h (and, with BLOOM's ``model.embed_layernorm``, that norm's
16-bit input 2·s·b·h and fp32 mean and rstd 8·s·b); last stage, the final
layernorm and output-projection inputs 4·s·b·h (÷ t with sequence parallel)
and what the stack's cross entropy saves per logit (Megatron's fp32 softmax, 4·s·b·V/t;
:mod:`simcluster.costs.frameworks`), plus, once, what is alive only inside its backward.
PyTorch autocast (``training.framework: pytorch``) keeps fp32 weights and gradients (4 + 4 B),
Adam's m and v (8 B) and 16-bit copies of the weights (2 B, counted with the weights).

The peak is the larger of two moments of the backward (:func:`stage_memory`): the loss's backward
(last stage) and, with full recompute, the first layer's recompute after it; not their sum.
PyTorch FSDP2 (``pytorch`` with ZeRO-3, torchtitan): fp32 sharded weights and gradients
(``MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32)``, 4 + 4 + Adam's 8 B), gradients
created by the backward (:func:`simcluster.costs.model_states.lazy_gradients`), the root module's weights unsharded from its
forward to the end of the backward. Workspaces (``buffers``): the CUDA context, cuBLAS's
workspace and NCCL's buffers (constants below; docs/model.md gives NCCL's per-channel sizes).
What the caching allocator reserves beyond all this: :mod:`simcluster.costs.reserve`.

The caller gives ``microbatches_in_flight`` (1F1B: stage i of p holds p − i;
GPipe: all m; interleaved schedules: the caller's count) and
``layers_on_stage`` (all model chunks on this GPU).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from simcluster.costs import mla
from simcluster.costs import params as P
from simcluster.costs import autocast_stream, eager_attention
from simcluster.costs.frameworks import Stack, fp32_residual_stream, framework
from simcluster.costs.deepspeed_zero3 import live_gathered_params
from simcluster.costs.deferred_wgrad import held_bytes
from simcluster.costs.model_states import fsdp2, fsdp_fp32, held_bytes_per_param, lazy_gradients, state_stack, zero_shard
from simcluster.spec.parallelism import ParallelismSpec
from simcluster.spec.training import TrainingSpec
from simcluster.spec.workload import ModelSpec
from simcluster.workload.ops import DTYPE_BYTES

MiB = 1024**2
# Named workspace, justified from the libraries' defaults:
CUDA_CONTEXT_BYTES = 512 * MiB  # CUDA context + loaded kernel images of a PyTorch process (~0.5 GiB on H100)
CUBLAS_WORKSPACE_BYTES = 32 * MiB  # PyTorch's default cuBLAS workspace on Hopper (":4096:8" = 8 × 4 MiB)
# NCCL: per channel and connected peer 4 MiB (Simple, DEFAULT_BUFFSIZE) + 4.69 MiB (LL128) + 0.5 MiB (LL), NCCL
# src/init.cc; measured 544-688 MB per communicator on 4 A100 (NVIDIA/nccl issue #964): an estimate below that
NCCL_BUFFER_BYTES = 256 * MiB  # NCCL_BUFFSIZE 4 MiB × channels × peers over the TP/DP/PP communicators
WORKSPACE_BYTES = CUDA_CONTEXT_BYTES + CUBLAS_WORKSPACE_BYTES + NCCL_BUFFER_BYTES
#: What the CUDA caching allocator's statistics leave out (``torch.cuda.max_memory_allocated`` and
#: ``max_memory_reserved``, the figures training logs print: torchtitan's ``GPUMemoryMonitor`` reads
#: ``torch.cuda.memory_stats``): the CUDA context (the driver's) and NCCL's buffers (NCCL allocates them itself,
#: src/init.cc). cuBLAS's workspace is counted: PyTorch takes it from the caching allocator
#: (aten/src/ATen/cuda/CublasHandlePool.cpp, ``getNewWorkspace``).
OUTSIDE_ALLOCATOR_BYTES = CUDA_CONTEXT_BYTES + NCCL_BUFFER_BYTES

@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes held by one GPU, by category."""

    weights: float
    gradients: float
    optimizer_states: float
    activations: float
    buffers: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer_states + self.activations + self.buffers

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "total": self.total}


def mlp_bytes_per_f(model: ModelSpec, precision: str) -> float:
    """Stored MLP activation bytes per element of f (16-bit values): gelu 4 (fc1 output, fc2 input), swiglu 6
    (gate, up, product); fp8 caches fc2's input in FP8, one byte less."""
    return (4.0 if P.mlp_matrices(model) == 2 else 6.0) - (1.0 if precision == "fp8" else 0.0)


def _sp(parallelism: ParallelismSpec) -> bool:
    return bool(parallelism.sequence_parallel) and parallelism.tensor > 1


def activation_bytes_per_layer(model: ModelSpec, training: TrainingSpec, parallelism: ParallelismSpec,
                               recompute: str | None = None) -> float:
    """One layer's stored activations for one microbatch (Korthikanti 2022 Table 2, generalised).

    ``recompute`` overrides ``training.recompute`` when given.
    """
    recompute = training.recompute if recompute is None else recompute
    t = parallelism.tensor
    s = model.seq_len / parallelism.context
    sbh = s * training.micro_batch * model.hidden
    v = DTYPE_BYTES[training.precision] / 2  # 1 for 16-bit values, 2 for fp32
    sp = _sp(parallelism)
    if recompute == "full":  # the layer's input, split over t with sequence parallelism or when distributed
        return (2 * v + stream_input_bytes(training, parallelism)) * sbh / (
            t if sp or training.distribute_saved_activations else 1)
    if recompute not in ("none", "selective"):
        raise ValueError(f"unknown recompute {recompute!r}; known: none, selective, full")
    if recompute == "selective" and training.recompute_saves is not None:
        return saves_activation_bytes(model, training, parallelism)
    if recompute == "selective" and framework(training.framework).selective == "op":
        return op_sac_activation_bytes(model, training, parallelism)
    eager = eager_saved_bytes(model, training, parallelism) if recompute == "none" else 0.0
    g_over_a = (model.kv_heads or model.heads) / model.heads
    # Q and the projection's input, 2 + 2 bytes per element of a·d (= h unless head_dim says otherwise)
    qd = 1.0 if P.q_width(model) == model.hidden else P.q_width(model) / model.hidden
    # Megatron-Core's recompute_modules (selective): mlp checkpoints the MLP module, Transformer Engine's fused
    # norm + fc1 with fc2, which keeps only its input, the pre-MLP norm's input (counted below): the norm's output
    # (fc1's input) and the MLP's tensors are dropped
    mods = training.selective_modules(model.attention) if recompute == "selective" else frozenset()
    mlp = 0.0 if "mlp" in mods else mlp_bytes_per_f(model, training.precision) * P.ffn_width(model) / model.hidden
    fc1_in = 0 if "mlp" in mods else 1
    # layernorm inputs 2 + 2 and the QKV and fc1 inputs 2 + 2 (one of each in a parallel block; GPT-NeoX's two
    # layernorms share their input x and feed two GEMM inputs; Gemma's post norms keep proj's and fc2's outputs too,
    # 2 + 2 more), 2 masks;
    # fp8 caches the GEMM inputs in FP8 (1 byte each; DeepSeek-V3 §3.3.1, Transformer Engine)
    gemm_in = 1.0 if training.precision == "fp8" else 2 * v
    norm_in, gemm_ins = (1, model.parallel_block_norms) if model.parallel_block else (
        4 if model.post_norms else 2, 1 + fc1_in)
    replicated = norm_in * 2 * v + gemm_ins * gemm_in + 2
    qp = 3.0 if training.precision == "fp8" else 4.0  # Q 2 + the projection's input 2 (1 in FP8)
    # selective recompute keeps the attention core's tensors when its modules leave core_attn out (Megatron-Core's
    # recompute_modules, e.g. [layernorm, moe_act]): as without recompute there
    core_rc, up_rc = "core_attn" in mods, "mla_up_proj" in mods
    keep_scores = not core_rc and not training.flash_attention
    # softmax output 2v, and with an attention dropout its output 2v and mask 1 (Korthikanti 2022 §4.1: 5as/h)
    per_score = 4 * v + 1 if model.attention_dropout > 0 else 2 * v
    scores = per_score * model.heads * s / model.hidden if keep_scores else 0.0
    if model.attention == "mla":  # layernorm inputs, fc1 input, 2 masks, the MLP; the attention's own (costs.mla)
        rest = 4 * v + fc1_in * gemm_in + 2
        per = (rest + mlp * v) / t if sp else rest + mlp * v / t
        return sbh * (per + mla.activation_bytes_per_token(model, v, gemm_in, t, sp, up_rc, "layernorm" in mods)
                     / model.hidden + scores / t)
    # model.qk_norm: each head's q and k before its norm, kept for the norm's backward (16-bit, 2 B per element)
    qn, kn = (2.0 * qd, 2.0 * g_over_a * qd) if model.qk_norm else (0.0, 0.0)
    if P.replicated_kv_params(model, t):  # g < t: each rank stores its replicated K/V head whole
        split = (qp * qd + qn + mlp) * v
        kv = (4 + (2.0 if model.qk_norm else 0.0)) * v * P.kv_heads_per_rank(model, t) / model.heads * qd
        per = ((replicated + split) / t if sp else replicated + split / t) + kv
        return sbh * (per + scores / t) + eager
    split = (qp * qd + 4 * g_over_a * qd + qn + kn + mlp) * v
    per = (replicated + split) / t if sp else replicated + split / t
    return sbh * (per + scores / t) + eager


def largest_rerun_bytes(modules: list[str], layer_bytes: Callable[[list[str]], float]) -> float:
    """What a layer's largest recomputed module holds again during the backward: of ``modules``, the most bytes one
    adds back to ``layer_bytes`` (a layer's stored activations under a module list) when it is left out (each
    module reruns just before its own backward and frees its tensors after it, so one at a time). The attention
    core's rerun is left out, as before ``recompute_modules``."""
    base = layer_bytes(modules)
    return max((layer_bytes([x for x in modules if x != m]) - base for m in modules if m != "core_attn"), default=0.0)


def rerun_transient_bytes(model: ModelSpec, training: TrainingSpec, parallelism: ParallelismSpec) -> float:
    """:func:`largest_rerun_bytes` of a dense layer under selective recompute's modules
    (:meth:`TrainingSpec.selective_modules`); 0 without selective recompute."""
    if training.recompute != "selective":
        return 0.0
    return largest_rerun_bytes(sorted(training.selective_modules(model.attention)), lambda mods: (
        activation_bytes_per_layer(model, training.model_copy(update={"recompute_modules": mods}), parallelism)))


def eager_saved_bytes(model: ModelSpec, training: TrainingSpec, parallelism: ParallelismSpec) -> float:
    """What PyTorch model code (``pytorch``; :mod:`simcluster.costs.eager`) saves beyond the count above, per layer
    and microbatch without recompute. Llama code (SwiGLU): each RMSNorm keeps ``x.float()`` (4 B, for ``pow``
    and ``x * r``) where a fused norm keeps its 16-bit input (2 B): +2 B per element of x, twice; and SDPA
    keeps K and V after ``repeat_kv``, a heads instead of g: +2·2·(a − g)·d B per token. Under autocast
    with fp32 parameters (:func:`simcluster.costs.frameworks.fp32_residual_stream`) also the fp32 stream's
    saved tensors, :func:`simcluster.costs.autocast_stream.saved_bytes` per element of x."""
    stack = state_stack(training, parallelism)
    autocast = fp32_residual_stream(stack, training.precision)
    stream = autocast_stream.saved_bytes(model.mlp, model.parallel_block, stack.fused_model) if autocast else 0.0
    t = parallelism.tensor
    s = model.seq_len / parallelism.context
    sb = s * training.micro_batch
    x = model.hidden / (t if _sp(parallelism) else 1)
    # eager attention's fp32 softmax output under autocast (costs.eager_attention), per score a·s per token
    scores = (eager_attention.saved_bytes_per_score(autocast) * model.heads * s / t
              if stack.eager_layer and not training.flash_attention else 0.0)
    if not stack.eager_layer or model.mlp != "swiglu":
        return sb * (stream * x + scores)
    g = model.kv_heads or model.heads
    rep = 4 * max(0, model.heads - g) * P.head_dim(model) / t
    # Llama-style q/k RMSNorms (Qwen3's) keep q.float() and k.float() too: +2 B per element of q and k; Gemma's
    # post norms are two more RMSNorms of x
    qk = 2 * (model.heads + g) * P.head_dim(model) / t if model.qk_norm else 0.0
    norms = 4 if model.post_norms else 2
    return sb * ((2 * norms + stream) * x + rep + qk + scores)


def stream_input_bytes(training: TrainingSpec, parallelism: ParallelismSpec) -> float:
    """Bytes per element of a layer's input beyond 16 bits when the residual stream is fp32 (autocast with
    fp32 parameters, :mod:`simcluster.costs.autocast_stream`): 2, else 0. What full recompute and op SAC
    keep of each layer is that input."""
    stack = state_stack(training, parallelism)
    return 2.0 if fp32_residual_stream(stack, training.precision) else 0.0


def _rank_widths(model: ModelSpec, training: TrainingSpec,
                 parallelism: ParallelismSpec) -> tuple[float, int, float, float, float, float]:
    """(tokens per rank and microbatch, element bytes, q, f, K/V widths on a tensor rank, x on a rank)."""
    t = parallelism.tensor
    sb = model.seq_len / parallelism.context * training.micro_batch
    kv = P.kv_heads_per_rank(model, t) * P.head_dim(model)
    x = model.hidden / (t if _sp(parallelism) else 1)
    return sb, DTYPE_BYTES[training.precision], P.q_width(model) / t, P.ffn_width(model) / t, kv, x


def op_sac_activation_bytes(model: ModelSpec, training: TrainingSpec, parallelism: ParallelismSpec) -> float:
    """One layer's saved tensors under torchtitan's per-op selective checkpointing (``pytorch``'s selective,
    :mod:`simcluster.costs.frameworks`): the layer's input (h), the outputs of the mms it keeps — every
    odd one in forward order: Llama code wq (a·d), wv (g·d), w1 (f), w2 (h, whole before a row-parallel
    reduction); fused-Wqkv code Wqkv ((a + 2g)·d) and the MLP up projection (f) — and SDPA's output (a·d,
    16-bit) and log-sum-exp (fp32, one per head and token)."""
    sb, v, q, f, kv, x = _rank_widths(model, training, parallelism)
    t = parallelism.tensor
    if model.mlp == "swiglu":
        saved = q + kv + f + model.hidden
    else:
        saved = q + 2 * kv + f
    return sb * (v * (x + saved + q) + stream_input_bytes(training, parallelism) * x + 4 * model.heads / t)


def saves_activation_bytes(model: ModelSpec, training: TrainingSpec, parallelism: ParallelismSpec) -> float:
    """One layer's saved tensors under a name-based checkpoint policy (``training.recompute_saves``): the layer's
    input (h) and each kept output — qkv ((a + 2g)·d / t), proj (h, whole before the row-parallel reduction),
    fc1 (f / t, 2f / t for SwiGLU's gate and up), fc2 (h, whole), attention (the core's output a·d / t and its
    fp32 log-sum-exp, one per head and token); everything else is recomputed from them."""
    sb, v, q, f, kv, x = _rank_widths(model, training, parallelism)
    t = parallelism.tensor
    width = {"qkv": q + 2 * kv, "proj": model.hidden, "fc1": (2 if model.mlp == "swiglu" else 1) * f,
             "fc2": model.hidden, "attention": q}
    saves = set(training.recompute_saves or ())
    lse = 4 * model.heads / t if "attention" in saves else 0.0
    return sb * (v * (x + sum(width[n] for n in saves)) + stream_input_bytes(training, parallelism) * x + lse)


def stage_extra_activation_bytes(model: ModelSpec, training: TrainingSpec, parallelism: ParallelismSpec, *,
                                 has_embedding: bool, has_logits: bool) -> float:
    """Per-microbatch activations outside the layers: embedding dropout mask, output layer, fp32 logits
    (and those of each multi-token-prediction module's head, with its norms' and projection's inputs)."""
    t = parallelism.tensor
    sb = model.seq_len / parallelism.context * training.micro_batch
    v = DTYPE_BYTES[training.precision] / 2
    h_split = t if _sp(parallelism) else 1
    out = 0.0
    if has_embedding:
        out += sb * model.hidden / h_split
        if model.embed_layernorm:  # BLOOM's LayerNorm of the embedding: its 16-bit input, fp32 mean and rstd
            out += 2 * v * sb * model.hidden / h_split + 8 * sb
    if has_logits:  # the head's, and each multi-token-prediction module's (its two norms' and projection's
        # inputs, 2 + 2 + 4 bytes per element of h at 16 bits, then its own pass through the head)
        head = 4 * v * sb * model.hidden / h_split + loss_stack(training).loss_saved_bytes * sb * model.vocab / t
        out += head + model.mtp_layers * (head + 4 * v * sb * model.hidden / h_split)
    return out


def loss_transient_bytes(model: ModelSpec, training: TrainingSpec, parallelism: ParallelismSpec) -> float:
    """Bytes alive only inside the cross-entropy's backward, on top of what it saved (once, last stage)."""
    sb = model.seq_len / parallelism.context * training.micro_batch
    return loss_stack(training).loss_transient_bytes * sb * model.vocab / parallelism.tensor


def loss_stack(training: TrainingSpec) -> Stack:
    """The stack whose cross-entropy the run uses (``training.cross_entropy``)."""
    return framework(training.framework, cross_entropy=training.cross_entropy)


def stage_params(model: ModelSpec, parallelism: ParallelismSpec, *, layers_on_stage: int, has_embedding: bool,
                 has_logits: bool) -> float:
    """Parameters one GPU of the stage holds (tensor-parallel shard, before ZeRO)."""
    t = parallelism.tensor
    n = layers_on_stage * P.layer_params(model, t)
    if has_embedding:
        n += P.embedding_params(model, t)
    if has_logits:
        n += P.output_params(model, t, shares_embedding_stage=has_embedding) \
            + P.mtp_params(model, t, shares_embedding_stage=has_embedding)
    return n


def stage_memory(model: ModelSpec, training: TrainingSpec, parallelism: ParallelismSpec, *, layers_on_stage: int,
                 has_embedding: bool, has_logits: bool, microbatches_in_flight: int,
                 recomputed_on_stage: int | None = None, rerun_bytes: float | None = None) -> MemoryBreakdown:
    """Peak bytes on one GPU of a pipeline stage, by category (see the module docstring).

    The peak is the larger of two moments of the backward (each breakdown is that moment's):
    the loss's backward (last stage: every microbatch's saved activations and logits, plus what is
    alive only inside it, :func:`loss_transient_bytes`) and, with full recompute, the recompute of
    the first layer the backward reaches (the loss's tensors of that microbatch freed, one layer's
    activations recomputed). Without the loss (other stages) the two are one. ``recomputed_on_stage``: of the
    stage's layers, how many full recompute runs again when only some are (``training.recompute_num_layers``,
    :mod:`simcluster.costs.partial_recompute`; the others keep their activations); None: all of them.
    Selective recompute's modules hold their tensors again from their rerun to their backward
    (:func:`rerun_transient_bytes`), a moment like full recompute's; ``rerun_bytes`` overrides that layer's bytes
    (an MoE model's stage, :mod:`simcluster.plan.moe_memory`).
    """
    n = stage_params(model, parallelism, layers_on_stage=layers_on_stage,
                     has_embedding=has_embedding, has_logits=has_logits)
    w_b, g_b, o_b, cast, gathered = held_bytes_per_param(training, parallelism)
    zero = parallelism.zero_stage
    shard = zero_shard(parallelism)
    weights = n * w_b / (shard if zero >= 3 else 1) + n * cast / (shard if zero >= 3 and not fsdp_fp32(
        training, parallelism) else 1)
    grads = n * g_b / (shard if zero >= 2 else 1)
    optim = n * o_b / (shard if zero >= 1 else 1)

    per_layer = activation_bytes_per_layer(model, training, parallelism)
    extra = stage_extra_activation_bytes(model, training, parallelism,
                                         has_embedding=has_embedding, has_logits=has_logits)
    rc = layers_on_stage if recomputed_on_stage is None else min(recomputed_on_stage, layers_on_stage)
    kept = activation_bytes_per_layer(model, training, parallelism, recompute="none") \
        if rc < layers_on_stage and training.recompute == "full" else per_layer
    acts = (rc * per_layer + (layers_on_stage - rc) * kept + extra) * microbatches_in_flight
    recompute = 0.0
    if training.recompute == "full" and rc > 0:
        recompute = activation_bytes_per_layer(model, training, parallelism, recompute="none")
    elif rerun_bytes is not None or layers_on_stage > 0:  # a recomputed module's tensors, from rerun to backward
        recompute = rerun_transient_bytes(model, training, parallelism) if rerun_bytes is None else rerun_bytes
    loss, after_loss = 0.0, recompute
    if has_logits:  # the loss's backward, then (full recompute) the last layer's recompute without the logits
        loss = loss_transient_bytes(model, training, parallelism)
        logits = extra - stage_extra_activation_bytes(model, training, parallelism, has_embedding=has_embedding,
                                                      has_logits=False)
        after_loss = recompute - logits if microbatches_in_flight > 0 else recompute
    acts += max(loss, after_loss)
    if lazy_gradients(training, parallelism):  # the activations peak before the first reduce-scatter, the
        # gradients after the last (lazy_gradients): the larger of the two moments
        grads, acts = (0.0, acts) if acts >= grads else (grads, 0.0)

    buffers = float(WORKSPACE_BYTES)
    if parallelism.pipeline > 1:  # one send and one receive buffer of the stage boundary tensor
        buffers += 2 * DTYPE_BYTES[training.precision] * model.seq_len / parallelism.context \
            * training.micro_batch * model.hidden / (parallelism.tensor if _sp(parallelism) else 1)
    if has_logits:  # the output layer's deferred weight gradients: their inputs and output gradients (deferred_wgrad)
        buffers += held_bytes(model.seq_len, model.hidden, model.vocab, training, parallelism)
    if zero >= 3 and layers_on_stage > 0:  # FSDP: the current and the prefetched layer; DeepSpeed: one module's
        # weights and gradient (costs.deepspeed_zero3)
        module_wise = framework(training.framework).zero3_fetch == "module"
        buffers += 2 * gathered * (live_gathered_params(model, training, parallelism.tensor) if module_wise
                                   else P.layer_params(model, parallelism.tensor))
    if fsdp2(training, parallelism):  # FSDP2 keeps the root module's (embedding, final norm, output) unsharded
        # from its forward to the end of the backward (_fsdp_state.py, _lazy_init: "For the root, do not reshard
        # after forward"); the layers are the buffers above
        buffers += (n - layers_on_stage * P.layer_params(model, parallelism.tensor)) * gathered
    return MemoryBreakdown(float(weights), float(grads), float(optim), float(acts), float(buffers))


memory_per_stage = stage_memory  # the name docs/architecture.md uses
