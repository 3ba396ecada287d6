"""Software stacks (``training.framework``): what each one actually runs, as costs and memory.

The same model and layout cost different time and memory under different stacks, because the
stacks launch different kernels, keep different copies and schedule communication differently.
Each :class:`Stack` is a documented bundle of those mechanisms; the cost model reads them where
they act (block costs in :mod:`simcluster.plan.costing`, memory in :mod:`simcluster.costs.memory`,
ZeRO-3 gathers in :mod:`simcluster.plan.steps`, pipeline sends and gradient reduction in
:mod:`simcluster.lowering`). Nothing here is a scalar correction: every field is a kernel, a copy
or a dependency the stack's source code has.

Host dispatch (all eager stacks)
    Every eager PyTorch op costs the host ~5–25 µs before its kernel is queued (Python, autograd
    node, ATen dispatcher, launch; PyTorch's "Accelerating PyTorch with CUDA Graphs", 2021, and
    its performance-tuning guide). The GPU runs ahead only while kernels are longer than that; a
    block's time is ``max(GPU time, ops · host_op_s)`` with ``host_op_s`` = 10 µs, the middle of
    that range. XLA (jax) launches one compiled program per step: no per-op host cost.

Cross-entropy over the vocabulary, and training metrics over the logits
    Each stack's loss kernels (and Composer's per-microbatch train metrics): bandwidth-bound passes
    over the [tokens, V/t] logits, with their sources, in :mod:`simcluster.costs.loss_kernels`.

Mixed precision (pytorch)
    ``torch.autocast`` keeps fp32 parameters (4 B), fp32 gradients (4 B) and Adam's m, v (8 B);
    every forward casts each weight to bf16 (read 4, write 2 B per parameter, one kernel per
    weight; the copies stay alive until the weight's backward, 2 B per parameter), and every
    backward casts the bf16 weight gradient to fp32 (2 + 4) and accumulates it into ``.grad``
    (4 + 4 read, 4 write). Megatron instead keeps bf16 weights and accumulates the weight
    gradient straight into an fp32 buffer inside the GEMM (``gradient_accumulation_fusion``).

Gradient accumulation (deepspeed)
    DeepSpeed keeps 16-bit weights, and after every micro-step's backward adds each 16-bit
    gradient into its fp32 copy: the pipeline engine's ``_exec_backward_pass`` calls the bf16
    optimizer's ``update_hp_grads`` (``hp_grad.add_(lp.grad.to(fp32))``: the same 18 B per weight
    as autocast's), and the ZeRO optimizers copy gradients into their fp32 partitions per
    micro-step alike. XLA accumulates inside the compiled step (no separate pass).
    fp16 without ZeRO or with ZeRO-1 on DeepSpeed's older optimizers (``FP16_Optimizer``,
    ``deepspeed/runtime/fp16/fused_optimizer.py``; ``FP16_DeepSpeedZeroOptimizer_Stage1``,
    ``deepspeed/runtime/zero/stage1.py``, in DeepSpeed ≤ 0.3.15 and EleutherAI's DeeperSpeed eb7f5cff
    that GPT-NeoX-20B ran): neither registers gradient hooks, the fp16 gradients stay in ``param.grad``
    where autograd's ``AccumulateGrad`` adds every micro-step's in place, and only the step casts them
    to fp32 (``get_flat_sub_partitions``; ``zero_grad(set_grads_to_None=True)`` lets the first
    micro-step's gradient be stolen): :func:`unfused_accumulation_bytes` of fp16, 6 B per weight from
    the second micro-step on (:data:`Stack.fp16_autograd_accum`). Known approximation: upstream
    DeepSpeed ≥ 0.4 runs ZeRO-1 on the stage-2 optimizer, whose hooks copy the gradients into its
    buckets; the spec has no DeepSpeed version.

Attention kernels (Hopper; ``training.attention_kernel``, :mod:`simcluster.costs.attention_kernels`)
    On H100/H200 the flash kernel a stack dispatches sets attention's speed: FlashAttention-2 reaches
    327.9 TFLOP/s forward + backward at (2, 16, 8192, 128) (Azure AI-benchmarking-guide), the Hopper
    kernels (FlashAttention-3, cuDNN's fused attention) about 1.6× that (the H100 calibration; pytorch
    issue #142132: SDPA as dispatched 329 TFLOP/s, cuDNN 631, FA3 632). megatron: Megatron-Core's
    Transformer Engine ``DotProductAttention`` runs cuDNN's fused attention on Hopper (fa3); jax:
    MaxText's ``cudnn_flash_te`` alike (fa3); pytorch: ``F.scaled_dot_product_attention`` picks its
    backend by a fixed priority, flash (FlashAttention-2) before cuDNN (pytorch issue #138907, 2024;
    huggingface/transformers PR #48163, 2026) (fa2); deepspeed: Megatron-DeepSpeed and the DeepSpeed
    examples call the ``flash_attn`` package (fa2). Off Hopper every stack runs the device's curve. Older
    kernels are named by hand: ``triton`` (FlashAttention in Triton, 2022), ``fa1`` (FlashAttention v1,
    Transformer Engine 0.x).

Gradient accumulation (megatron, ``training.gradient_accumulation_fusion``)
    Since Feb 2022 (Megatron-LM commit 83b1e42, "gradient accumulation fusion", on unless
    ``--no-gradient-accumulation-fusion``) the weight-gradient GEMM accumulates into the fp32
    ``main_grad`` itself (``fused_weight_gradient_mlp_cuda``): no pass of its own. Before it
    (Narayanan et al. 2021's runs, ``examples/sc21``), every microbatch's ``.grad`` was added in a
    separate kernel: with contiguous fp32 buffers (bf16; ``--accumulate-allreduce-grads-in-fp32``)
    ``LocalDDP``'s hook ``param.main_grad.add_(param.grad.data)`` after every microbatch (read 2 + 4,
    write 4 B); otherwise (fp16, the sc21 scripts) autograd's ``AccumulateGrad`` adds each microbatch's
    16-bit gradient into ``.grad`` in place (2 + 2 read, 2 write) from the second microbatch on, the
    first being stolen after ``zero_grad(set_to_none=True)`` (megatron/model/distributed.py and
    megatron/optimizer/optimizer.py at de7dc40, 2021-08-10). :func:`unfused_accumulation_bytes`.

Optimizer
    fused (DeepSpeed ``FusedAdam``, ``torch.optim.AdamW(fused=True)``, optax under XLA): one pass,
    :data:`simcluster.plan.costing.OPTIMIZER_BYTES`. megatron (Apex ``FusedAdam`` inside Megatron-LM's
    mixed-precision optimizer): that pass and the gradient buffer's zeroing, scaling, norm and copies,
    :mod:`simcluster.costs.megatron_optimizer`.
    fp16_2019 (Megatron-LM 2019, ``training.fused_kernels: false`` with fp16): the fused step inside
    ``FP16_Optimizer``'s per-tensor loops (overflow check, gradient copies, unscale, clip norm, zero_grad),
    :mod:`simcluster.costs.fp16_optimizer`.
    foreach (``torch.optim.AdamW``'s default on CUDA) after the trainers' ``clip_grad_norm_``:
    :mod:`simcluster.costs.torch_step`.

Eager model code (pytorch)
    Eager PyTorch launches every ``torch`` call of the model's ``forward`` and its autograd derivative
    as kernels of their own: for Llama-style models (torchtitan's code) RMSNorm is a chain of eight
    fp32 kernels, rotary embeddings cast q and k to fp32 and back around a complex multiply, GQA's
    ``repeat_kv`` copies K and V to every head, SwiGLU's ``silu`` and the three separate Q/K/V
    projections' gradient sums add passes; LayerNorm/GeLU models (MPT, GPT) launch one kernel each, and their
    backward adds the ``cat`` of the QKV split's gradients and one bias-gradient sum per linear layer.
    The inventory, bytes and sources: :mod:`simcluster.costs.eager` (``eager_layer``).
    Without flash attention, the separate scale and mask passes over the scores (and autocast's fp32
    softmax) that eager attention adds to Megatron's fused softmax: :mod:`simcluster.costs.eager_attention`.

PyTorch FSDP2 (pytorch with ZeRO-3; ``torch/distributed/_composable/fsdp/_fsdp_collectives.py``,
pytorch/pytorch commit 01d66d21)
    All-gather copy-in: ``torch._foreach_copy_`` of this rank's bf16 shards into the flat all-gather
    input, on the all-gather copy-in stream (P/N elements: left out). Copy-out:
    ``foreach_all_gather_copy_out`` waits for the all-gather on the *compute* stream and runs
    ``torch.split_with_sizes_copy`` from the flat [N, P/N] buffer into each parameter's unsharded
    tensor: read 2, write 2 B per gathered weight (:data:`FSDP_COPY_OUT_BYTES`), one kernel per gather
    (forward and the backward's re-gather) — a compute task after each ZeRO-3 gather
    (``zero.copy_out``, :mod:`simcluster.plan.steps`). Reduce-scatter copy-in:
    ``foreach_reduce_scatter_copy_in``'s ``torch.cat`` of the bf16 gradients into the fp32
    (``reduce_dtype``) input buffer: 6 B per weight (:data:`FSDP_GRAD_CAST_BYTES`), on the
    reduce-scatter stream, modelled on the compute stream (it shares HBM bandwidth with the backward).
    Composer/llm-foundry's FSDP1 gathers straight into the flat parameter the weights are views of
    (no copy-out); the spec cannot say which FSDP a run used, so ``pytorch`` is FSDP2 (about 1–2 %
    slow for FSDP1 runs). The root unit (embedding, final norm, output: ``fully_shard(model)``) is
    gathered once before the forward and reduce-scattered after the whole backward, both exposed
    (:mod:`simcluster.plan.fsdp_root`, ``Stack.fsdp_root``).

Selective recompute (pytorch: torchtitan's per-op selective activation checkpointing)
    Megatron's selective recompute reruns the attention core (Korthikanti et al. 2022 §4.2). PyTorch
    has no such module; torchtitan's ``selective_ac_option = "op"`` (the default of its train
    configs; ``torchtitan/parallelisms/parallelize_llama.py`` ``_save_list`` and ``_custom_policy``,
    commit 9dec370) saves the outputs of ``aten.mm`` — except every second mm of the layer, counted in
    forward order — and of the flash/efficient SDPA kernels, and recomputes everything else at the
    start of the layer's backward: with Llama's wq, wk, wv, wo, w1, w3, w2 that is wk, wo and w3 and
    every memory-bound kernel (norms, RoPE, silu, products, residual adds). Memory: the layer's input
    and the saved outputs (``simcluster.costs.memory``).

torch.compile
    The spec has no key for it; ``pytorch`` is eager. Compiled runs (Inductor fuses the norm, RoPE and
    SwiGLU chains into a few Triton kernels) are predicted too slow by the eager kernels' share.

ZeRO-3 parameter fetches
    PyTorch FSDP and Megatron gather one flat parameter per wrapped layer. DeepSpeed ZeRO-3
    fetches per submodule (``PartitionedParameterCoordinator.fetch_sub_module``): one
    all-gather per linear layer of the block (LayerNorm weights fall under
    ``stage3_param_persistence_threshold`` = 1e5 and stay resident), each paying the
    collective's full latency — at hundreds of ranks the ring's (N − 1) steps dominate. It
    prefetches the next modules only up to ``stage3_prefetch_bucket_size`` parameters (default
    5e7): a module larger than that is fetched when its forward (or backward) reaches it, so
    its gather is exposed, not overlapped. FSDP prefetches the next unit whatever its size
    (``forward_prefetch``/``BACKWARD_PRE``). Known approximation: DeepSpeed v0.3.13's
    ``get_params_to_prefetch`` appends a parameter before comparing the running total with the
    bucket, so the next module is prefetched alone even past 5e7, after ``fetch_sub_module``'s
    ``torch.cuda.synchronize()`` has drained the GPU: the next module's gather overlaps the
    current module's compute. The plan exposes those gathers instead, overstating each one's
    exposure by up to the preceding module's compute.

XLA's matmul fusions on TPU (jax)
    "A dot or fusion op is a set of operations containing at most 1 matrix multiplication and possibly a bunch
    of related pointwise VPU-ops" (J. Austin et al., "How to Scale Your Model", jax-ml/scaling-book 0819a7d,
    profiling.md): on a device with a matrix unit (``Calibration.mxu_tile``) the graph's ``elementwise``
    operators (activation, residual adds, biases, their gradients) run inside the matmuls' fusions and cost
    nothing under ``jax`` (:func:`simcluster.plan.costing.op_time`); norms, unfused softmax and the loss keep
    their HBM passes; GPUs keep them all (docs/validation.md, "Session 11").

DeepSpeed ZeRO-3 of 2021 (v0.3.13–v0.4.x)
    Per-rank host work of its list-based collectives, the re-fetch after recompute, the memory
    passes around each collective and its persistent tensors: :mod:`simcluster.costs.deepspeed_zero3`.

DeepSpeed's pipeline engine (``deepspeed.runtime.pipe.engine.PipelineEngine``)
    Blocking sends, partitioned over the tensor ranks; the data-parallel reduction after the last backward,
    an all-reduce under ZeRO-1 (:data:`Stack.pipe_zero1_all_reduce`): :mod:`simcluster.costs.pipeline_sends`.

Backward tensor-parallel reductions (``tp_grad_overlap``)
    Megatron-LM (since Aug 2021) and Transformer Engine reduce a column-parallel layer's input gradient
    beside its weight-gradient GEMM; the other stacks after the block: :mod:`simcluster.plan.tp_grad_overlap`.

Pipeline sends
    How each stack's pipeline sends run (blocking, split over the tensor ranks, gathered on receipt):
    :mod:`simcluster.costs.pipeline_sends`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from simcluster.catalogue import FRAMEWORKS as NAMES
from simcluster.costs.deepspeed_zero3 import (DEEPSPEED_HOST_OPS_PER_RANK, DEEPSPEED_MAX_REUSE_DISTANCE,
                                             DEEPSPEED_PERSISTENCE_THRESHOLD, DEEPSPEED_PREFETCH_BUCKET,
                                             DEEPSPEED_ZERO3_GATHER_BYTES, DEEPSPEED_ZERO3_GRAD_BYTES)
from simcluster.costs.torch_step import CLIP_GRAD_BYTES
from simcluster.costs.loss_kernels import (FUSED_LOSS_BWD, FUSED_LOSS_FWD, FUSED_LOSS_SAVED_BYTES,  # noqa: F401
                                           FUSED_LOSS_TRANSIENT_BYTES, MEGATRON_FUSED_LOSS_BWD,
                                           MEGATRON_FUSED_LOSS_FWD, MEGATRON_LOSS_BWD, MEGATRON_LOSS_FWD,
                                           TORCH_LOSS_BWD, TORCH_LOSS_FWD, TRAIN_METRIC_PASSES, XLA_LOSS_BWD,
                                           XLA_LOSS_FWD, Passes)
from simcluster.registry import Registry

NO_LIMIT = float("inf")

#: Host time to dispatch one eager PyTorch op (middle of the 5–25 µs range, see the module docstring).
HOST_OP_S = 10e-6

#: Per weight and microbatch: a 16-bit gradient cast to fp32 (read 2, write 4) and added into the
#: fp32 accumulator (read 4 + 4, write 4) — autocast's ``.grad``, DeepSpeed's ``update_hp_grads``.
GRAD_ACCUM_BYTES = 18.0


@dataclass(frozen=True)
class Stack:
    """One software stack's mechanisms (see the module docstring for each field's source)."""

    name: str
    host_op_s: float  # host time per eager op; 0 for a compiled program
    loss_fwd: Passes
    loss_bwd: Passes
    loss_saved_bytes: float  # per logit element, per microbatch in flight
    loss_transient_bytes: float  # per logit element, once, inside the loss backward
    autocast: bool  # fp32 parameters cast to 16-bit every forward (and 16-bit copies held)
    grad_accum_bytes: float  # per weight and microbatch: the 16-bit gradient cast and added into fp32
    optimizer: str  # fused | megatron (costs.megatron_optimizer) | foreach | fp16_2019 (costs.fp16_optimizer)
    zero3_fetch: str  # layer (one gather per layer) | module (one per linear layer)
    zero3_prefetch_params: float  # a ZeRO-3 gather is prefetched only when its weights fit this many
    p2p_overlap: str  # pipeline sends beside the next unit: always | interleaved (that schedule only) | never
    p2p_scatter_gather: bool  # tensor ranks send 1/t of the activation, the receiver all-gathers it
    overlap_grad_reduce: bool  # data-parallel reduction may overlap the backward
    p2p_sharded: bool = False  # the activation moves as sharded over the tensor ranks (XLA): 1/t, no gather
    fused_kernels: bool = True  # Megatron's fused kernels; False: Megatron-LM 2019's separate ops (costs.eager)
    eager_layer: bool = False  # eager model code: the extra kernels of simcluster.costs.eager per layer
    fused_model: bool = False  # eager PyTorch with fused model kernels (fused_kernels: true): costs.eager FUSED_LLAMA
    gather_copy_out_bytes: float = 0.0  # per gathered weight: FSDP2's copy-out after each ZeRO-3 all-gather
    selective: str = "core"  # what recompute: selective recomputes: core (attention core) | op (torchtitan's op SAC) | saves
    zero3_reuse_distance: float = NO_LIMIT  # ZeRO-3: weights kept for reuse only if fewer params are fetched between
    zero3_host_ops_per_rank: float = 0.0  # ZeRO-3: host ops per rank of every gather / reduce-scatter (list-based)
    zero3_persistence_threshold: float = 0.0  # ZeRO-3: smaller tensors persist, reduced one by one, re-gathered per step
    zero3_fetch_sync: bool = False  # ZeRO-3: a fetch syncs the device; reduce-scatters in flight end (deepspeed_zero3)
    attention: str = "fa3"  # flash kernel on Hopper: fa3 (FA3 / cuDNN fused attention) | fa2 (FlashAttention-2)
    grad_accum_cast: bool = True  # grad_accum_bytes starts with a separate fp32 cast kernel (6 B); False: one add
    pipe_zero1_all_reduce: bool = False  # pipelined ZeRO-1: gradients all-reduced (not reduce-scattered) before the step
    fp16_autograd_accum: bool = False  # fp16 at ZeRO <= 1: autograd accumulates the 16-bit .grad (no fp32 pass)
    fsdp_fp32_params: bool = False  # FSDP gathers fp32 parameters and autocast casts them (training.fsdp_param_dtype)
    fsdp_root: bool = False  # FSDP's root unit (embedding, final norm, output) gathered and reduced once (plan.fsdp_root)
    selective_saves: tuple[str, ...] = ()  # selective == "saves": the layer outputs kept (training.recompute_saves)
    optimizer_states: str = "fp32"  # bf16: bf16 Adam states, no master copy, bf16 reduction (costs.optimizer_states)
    fp8_weight_share: float = 1.0  # FP8: share of microbatches that quantize each weight (1/m: TE's is_first_microbatch)
    pointwise_in_matmul: bool = False  # XLA on a TPU: pointwise ops run inside their matmul's fusion (module docstring)
    tp_grad_overlap: bool = False  # backward TP reductions beside the weight-gradient GEMMs (plan.tp_grad_overlap)
    grad_reduce_bf16: bool = False  # bf16 gradient buffer and data-parallel reduction (training.grad_reduce_in_bf16)
    fp8_param_gather: bool = False  # FP8 weights, all-gathered at 1 B per parameter (training.fp8_param_gather)
    clip_grad_bytes: float = 0.0  # per parameter of the rank's shard: the trainer's clip_grad_norm_ before the step


FRAMEWORKS: Registry[Stack] = Registry("framework")
FRAMEWORKS.add("megatron", Stack(
    "megatron", HOST_OP_S, MEGATRON_LOSS_FWD, MEGATRON_LOSS_BWD, loss_saved_bytes=4.0, loss_transient_bytes=0.0,
    autocast=False, grad_accum_bytes=0.0, optimizer="megatron", zero3_fetch="layer", zero3_prefetch_params=NO_LIMIT,
    p2p_overlap="interleaved", p2p_scatter_gather=False, overlap_grad_reduce=True, tp_grad_overlap=True))
FRAMEWORKS.add("deepspeed", Stack(
    "deepspeed", HOST_OP_S, MEGATRON_LOSS_FWD, MEGATRON_LOSS_BWD, loss_saved_bytes=4.0, loss_transient_bytes=0.0,
    autocast=False, grad_accum_bytes=GRAD_ACCUM_BYTES, optimizer="fused", zero3_fetch="module",
    zero3_prefetch_params=DEEPSPEED_PREFETCH_BUCKET, p2p_overlap="never", p2p_scatter_gather=True,
    overlap_grad_reduce=False, zero3_reuse_distance=DEEPSPEED_MAX_REUSE_DISTANCE,
    zero3_host_ops_per_rank=DEEPSPEED_HOST_OPS_PER_RANK, zero3_persistence_threshold=DEEPSPEED_PERSISTENCE_THRESHOLD,
    zero3_fetch_sync=True,
    attention="fa2", pipe_zero1_all_reduce=True, fp16_autograd_accum=True))
FRAMEWORKS.add("pytorch", Stack(
    "pytorch", HOST_OP_S, TORCH_LOSS_FWD, TORCH_LOSS_BWD, loss_saved_bytes=6.0, loss_transient_bytes=8.0,
    autocast=True, grad_accum_bytes=GRAD_ACCUM_BYTES, optimizer="foreach", zero3_fetch="layer",
    zero3_prefetch_params=NO_LIMIT, p2p_overlap="always", p2p_scatter_gather=False, overlap_grad_reduce=True,
    eager_layer=True, selective="op", attention="fa2", clip_grad_bytes=CLIP_GRAD_BYTES))
FRAMEWORKS.add("jax", Stack(
    "jax", 0.0, XLA_LOSS_FWD, XLA_LOSS_BWD, loss_saved_bytes=4.0, loss_transient_bytes=0.0,
    autocast=False, grad_accum_bytes=0.0, optimizer="fused", zero3_fetch="layer", zero3_prefetch_params=NO_LIMIT,
    p2p_overlap="always", p2p_scatter_gather=False, p2p_sharded=True, overlap_grad_reduce=True,
    pointwise_in_matmul=True))
assert tuple(sorted(NAMES)) == tuple(FRAMEWORKS.names()), "catalogue.FRAMEWORKS and the registry differ"


#: FSDP2's all-gather copy-out (``foreach_all_gather_copy_out``: ``torch.split_with_sizes_copy`` of the
#: gathered flat bf16 buffer into each parameter's unsharded tensor, on the compute stream after the wait):
#: read 2, write 2 B per gathered weight, one kernel per gather (module docstring).
FSDP_COPY_OUT_BYTES = 4.0

#: Bytes per parameter FSDP gathers and reduce-scatters with fp32 parameters (``training.fsdp_param_dtype: fp32``,
#: Lightning's bf16-mixed: param_dtype fp32, reduce_dtype bf16): 4 and 2.
FSDP_FP32_GATHER_BYTES = 4
FSDP_FP32_REDUCE_BYTES = 2

#: FSDP's mixed precision (``param_dtype`` bf16, ``reduce_dtype`` fp32): the reduce-scatter copy-in
#: concatenates the bf16 gradients into the fp32 input buffer (read 2, write 4 B per weight and microbatch).
FSDP_GRAD_CAST_BYTES = 6.0


#: Megatron-LM before gradient-accumulation fusion: bytes per weight element of the separate accumulation
#: after each microbatch's weight-gradient GEMM (module docstring, "Gradient accumulation (megatron)"):
#: the main_grad hook's fp32 add of a 16-bit gradient (read 2 + 4, write 4) with fp32 buffers (bf16, and
#: fp16 under --accumulate-allreduce-grads-in-fp32); autograd's in-place add into a 16-bit .grad otherwise.
MEGATRON_HOOK_ACCUM_BYTES = 10.0
AUTOGRAD_ACCUM_BYTES_PER_ELEMENT = 3  # read .grad, read the new gradient, write .grad


def unfused_accumulation_bytes(precision: str, microbatches: int) -> float:
    """Per weight and microbatch, averaged over the step, of Megatron-LM's gradient accumulation before
    its fusion (Feb 2022):

        bf16:        10 B every microbatch (the main_grad hook: ``param.main_grad.add_(param.grad.data)``)
        fp16 / fp32: 3·e B after every microbatch but the first (autograd's ``AccumulateGrad`` adds into
                     ``.grad``; the first microbatch's gradient is stolen, ``zero_grad(set_to_none=True)``),
                     i.e. 3·e·(m − 1)/m on average (e = 2 or 4 bytes)
    """
    if precision == "bf16":
        return MEGATRON_HOOK_ACCUM_BYTES
    e = 4 if precision == "fp32" else 2
    m = max(int(microbatches), 1)
    return AUTOGRAD_ACCUM_BYTES_PER_ELEMENT * e * (m - 1) / m


def autocast_accumulation_bytes(microbatches: int) -> float:
    """Per weight and microbatch, averaged over the step, of autocast's gradient path into the fp32 ``.grad``:
    each microbatch casts the 16-bit weight gradient to fp32 (``ToCopyBackward``: read 2, write 4 B); the first
    one's fp32 gradient is stolen into the empty ``.grad`` (``optimizer.zero_grad()`` sets it to None, PyTorch
    ≥ 2.0's default; ``torch/csrc/autograd/functions/accumulate_grad.h``: an undefined ``.grad`` takes the new
    gradient without a copy), every later one is added in fp32 (read 4 + 4, write 4):

        6 + 12 · (m − 1) / m     (m microbatches a step; 18, :data:`GRAD_ACCUM_BYTES`, as m grows)
    """
    m = max(int(microbatches), 1)
    return 6.0 + (GRAD_ACCUM_BYTES - 6.0) * (m - 1) / m


def framework(name: str, zero_stage: int = 0, fused_kernels: bool | None = None, accumulation_fusion: bool = True,
              precision: str = "bf16", microbatches: int = 1, cross_entropy: str = "auto",
              train_metrics: int = 0, fsdp_param_dtype: str = "bf16",
              recompute_saves: Sequence[str] | None = None, optimizer_dtype: str = "fp32",
              fp8_weight_cache: bool = False, grad_reduce_bf16: bool = False,
              fp8_param_gather: bool = False) -> Stack:
    """The :class:`Stack` of ``training.framework`` ``name`` at ZeRO stage ``zero_stage``.

    ``fused_kernels`` (``training.fused_kernels``; None: the stack's own) False: Megatron-LM's layer before its
    fused kernels; True with PyTorch: fused model kernels instead of the eager chains (``Stack.fused_model``).
    ``accumulation_fusion`` False: Megatron-LM's gradient accumulation before its fusion
    (``training.gradient_accumulation_fusion``, :func:`unfused_accumulation_bytes` of ``precision`` and the
    step's ``microbatches``). ``cross_entropy`` "fused": flash-attn's one-kernel cross-entropy over the 16-bit
    logits instead of the stack's own (``training.cross_entropy``, :data:`FUSED_LOSS_FWD`); "megatron_fused":
    Megatron-Core's fused vocab-parallel one (:data:`MEGATRON_FUSED_LOSS_FWD`). ``train_metrics``:
    cross-entropy train metrics computed over the logits after every microbatch (``training.train_metrics``,
    Composer's), each :data:`TRAIN_METRIC_PASSES` more in the loss's forward (module docstring).
    PyTorch with ZeRO-3 is FSDP, whose mixed precision is not autocast: it keeps fp32 shards,
    casts a shard to bf16 before its all-gather (so the gathered weights are bf16 and no
    per-weight cast runs in the forward), and casts each microbatch's bf16 gradient to fp32
    for the reduce-scatter (:data:`FSDP_GRAD_CAST_BYTES`; PyTorch FSDP2 ``MixedPrecisionPolicy``,
    torchtitan's default). DeepSpeed with ZeRO-3 moves ``DEEPSPEED_ZERO3_GATHER_BYTES`` per gathered
    weight and ``DEEPSPEED_ZERO3_GRAD_BYTES`` per weight before the reduce-scatter
    (:mod:`simcluster.costs.deepspeed_zero3`). ``fsdp_param_dtype`` "fp32" (``training.fsdp_param_dtype``):
    FSDP with fp32 parameters under autocast (Lightning's ``bf16-mixed``: ``FSDPPrecision.mixed_precision_config``
    param_dtype fp32, reduce_dtype bf16, and ``forward_context`` ``torch.autocast``): the autocast stack's weight
    casts and 18 B gradient accumulation stay, the gathered weights are fp32 (:data:`FSDP_FP32_GATHER_BYTES`).
    ``optimizer_dtype`` "bf16" (``training.optimizer_dtype``): bf16 optimizer states without a master copy and a
    bf16 gradient reduction (:mod:`simcluster.costs.optimizer_states`); ``grad_reduce_bf16`` only the latter
    (``training.grad_reduce_in_bf16``: the gradient buffer and its reduction in bf16, fp32 master and states).
    """
    stack = FRAMEWORKS.get(name)
    if grad_reduce_bf16:
        stack = replace(stack, grad_reduce_bf16=True)
    if fp8_param_gather:  # training.fp8_param_gather: FP8 weights, gathered in FP8 (stack_bytes.weight_bytes)
        stack = replace(stack, fp8_param_gather=True)
    if fp8_weight_cache and microbatches > 1:  # training.fp8_weight_cache: one weight cast per step (TE)
        stack = replace(stack, fp8_weight_share=1.0 / microbatches)
    if optimizer_dtype == "bf16":  # training.optimizer_dtype: NeMo's bf16 distributed Adam (costs.optimizer_states)
        stack = replace(stack, optimizer_states="bf16")
    if recompute_saves is not None:  # training.recompute_saves: a name-based checkpoint policy
        stack = replace(stack, selective="saves", selective_saves=tuple(recompute_saves))
    if fused_kernels is False and not stack.eager_layer:  # Megatron-LM 2019's layer (costs.eager, MEGATRON_2019)
        stack = replace(stack, fused_kernels=False)
        if name == "megatron" and precision == "fp16":  # and its FP16_Optimizer (costs.fp16_optimizer)
            stack = replace(stack, optimizer="fp16_2019")
    if fused_kernels is True and stack.eager_layer:  # eager PyTorch with fused model kernels (costs.eager, FUSED_LLAMA)
        stack = replace(stack, eager_layer=False, fused_model=True)
    if cross_entropy == "fused":  # training.cross_entropy: fused (flash-attn's kernel, FUSED_LOSS_*)
        stack = replace(stack, loss_fwd=FUSED_LOSS_FWD, loss_bwd=FUSED_LOSS_BWD, loss_saved_bytes=FUSED_LOSS_SAVED_BYTES,
                        loss_transient_bytes=FUSED_LOSS_TRANSIENT_BYTES)
    if cross_entropy == "megatron_fused":  # Megatron-Core's cross_entropy_loss_fusion (MEGATRON_FUSED_LOSS_*)
        stack = replace(stack, loss_fwd=MEGATRON_FUSED_LOSS_FWD, loss_bwd=MEGATRON_FUSED_LOSS_BWD)
    if train_metrics:  # training.train_metrics: Composer's per-microbatch metric cross-entropies (TRAIN_METRIC_PASSES)
        stack = replace(stack, loss_fwd=stack.loss_fwd + train_metrics * TRAIN_METRIC_PASSES)
    # a separate accumulation per weight and microbatch: training.gradient_accumulation_fusion false (Megatron-LM
    # before Feb 2022), or autograd's into DeepSpeed's 16-bit .grad (FP16_Optimizer / stage1.py at ZeRO <= 1)
    if not accumulation_fusion or (stack.fp16_autograd_accum and precision == "fp16" and zero_stage <= 1):
        stack = replace(stack, grad_accum_bytes=unfused_accumulation_bytes(precision, microbatches),
                        grad_accum_cast=False)
    if stack.autocast:  # autocast's fp32 .grad: the first microbatch's gradient stolen, the later ones added
        stack = replace(stack, grad_accum_bytes=autocast_accumulation_bytes(microbatches))
    if stack.autocast and zero_stage >= 3 and fsdp_param_dtype == "fp32":  # FSDP keeps fp32 parameters: autocast
        return replace(stack, gather_copy_out_bytes=FSDP_COPY_OUT_BYTES, fsdp_fp32_params=True, fsdp_root=True)
    if stack.autocast and zero_stage >= 3:
        return replace(stack, autocast=False, grad_accum_bytes=FSDP_GRAD_CAST_BYTES,
                       gather_copy_out_bytes=FSDP_COPY_OUT_BYTES, fsdp_root=True)
    if stack.zero3_host_ops_per_rank and zero_stage >= 3:  # DeepSpeed ZeRO-3 of 2021 (module docstring)
        return replace(stack, grad_accum_bytes=DEEPSPEED_ZERO3_GRAD_BYTES,
                       gather_copy_out_bytes=DEEPSPEED_ZERO3_GATHER_BYTES)
    return stack


def fp32_residual_stream(stack: Stack, precision: str) -> bool:
    """Whether ``stack`` runs PyTorch model code (eager or fused) under autocast with fp32 parameters at a 16-bit
    ``precision``, so that its residual stream is fp32 (:mod:`simcluster.costs.autocast_stream`): ``pytorch``
    below ZeRO-3, or with FSDP's fp32 parameters (``training.fsdp_param_dtype: fp32``; its bf16 parameters give
    a 16-bit stream)."""
    return stack.autocast and (stack.eager_layer or stack.fused_model) and precision in ("bf16", "fp16")


MEGATRON = framework("megatron")
