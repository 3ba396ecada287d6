"""Per-rank cost of the operator blocks a layer is lowered into.

A block (the attention half or the MLP half of a layer, the embedding, the
head) runs as one compute task per pass. Its time is the sum of its
operators' kernel times on one rank after tensor (t), sequence and context (c)
parallel sharding:

- GEMMs: forward Y[M,N] = X[M,K]·W, backward dgrad (M,K,N) plus wgrad (N,K,M)
  (the same three products the calibration measured), with N/t for column- and
  K/t for row-parallel layers and M = b·s/c;
- attention: the flash-attention model for b, a/t heads, sequence s, divided
  by c (each context rank holds s/c queries); the backward under context
  parallelism runs Transformer Engine's ring steps one after another (a causal
  kernel over s/c tokens and c − 1 non-causal halves,
  :mod:`simcluster.costs.cp_attention`);
- memory-bound ops: bytes / achievable bandwidth, sharded by t only under
  sequence parallelism (Korthikanti et al. 2022 §4.2.2);
- every kernel pays the compute model's launch floor (inside its kernel times).

The compute model's default floor (31 µs) is what an isolated, individually
timed kernel costs; in a training loop the host runs ahead of the GPU and the
gap between kernels is a few µs, so lowering builds the model with
:data:`TRAINING_LOOP_KERNEL_GAP_S`.

The software stack (:mod:`simcluster.costs.frameworks`) adds what it runs besides the
operators: the cross-entropy's passes over the logits, autocast's weight casts and fp32
gradient accumulation, and the host's dispatch time — a block takes
``max(GPU time, host ops · host_op_s)`` (the GPU idles when the host cannot keep up).

FLOPs are the matrix-multiply FLOPs only (GEMMs and attention), the
convention behind model FLOPs utilisation (Narayanan et al. 2021 eq. 3;
Korthikanti et al. 2022 eq. 7).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from simcluster.costs import fp16_optimizer, megatron_optimizer, rng_state
from simcluster.costs.curve_shares import TallyingModel
from simcluster.costs.compute import ComputeModel
from simcluster.costs.optimizer_states import BF16_STEP_BYTES
from simcluster.costs.cp_attention import cp_attention_time
from simcluster.costs.autocast_stream import stream_kernels
from simcluster.costs.eager_attention import score_kernels
from simcluster.costs.eager import POST_RMSNORM, QK_RMSNORM, EagerCost, block_extra, stack_kernels
from simcluster.costs.torch_step import CLIP_GRAD_KERNELS, FOREACH_ADAM_BYTES, FOREACH_ADAM_KERNELS
from simcluster.costs.partial_rotary import partial_rotary_kernels
from simcluster.costs.frameworks import MEGATRON, Stack, fp32_residual_stream
from simcluster.workload.graph import ModelOps
from simcluster.workload.ops import Op
from simcluster.workload.mla import SELECTIVE_RECOMPUTE

# GPU-side gap between back-to-back kernels of a training loop (host ahead of the GPU).
TRAINING_LOOP_KERNEL_GAP_S = 5e-6
#: Optimizer step bytes per parameter: Adam reads fp32 master, gradient, m and v (16 B) and writes
#: master, m, v and the 16-bit copy (14 B); SGD with momentum reads 12 B and writes 10 B.
OPTIMIZER_BYTES = {"adam": 30.0, "sgd": 22.0}
OPTIMIZER_KERNELS = 8  # multi-tensor kernels of one step, each paying the launch gap
MEMORY_KIND = {"norm": "normalization", "elementwise": "elementwise", "embedding": "copy",
               "loss": "elementwise"}


@dataclass(frozen=True)
class BlockCost:
    """Seconds and matmul FLOPs of one block on one rank for one microbatch."""

    fwd_s: float
    bwd_s: float
    fwd_flops: float
    bwd_flops: float
    wgrad_s: float = 0.0  # the weight-gradient GEMMs inside bwd_s (zero-bubble splits them off)
    wgrad_flops: float = 0.0
    col_dgrad_s: float = 0.0  # inside bwd_s: the column-parallel GEMMs' data gradients (their input's, reduced over t)
    col_wgrad_s: float = 0.0  # inside bwd_s: the same GEMMs' weight gradients (simcluster.plan.tp_grad_overlap)
    col_flops: float = 0.0  # FLOPs of each of those two parts


def _shard(op: Op, t: int, sp: bool) -> int:
    if op.tp == "replicated":
        return t if sp else 1
    return t


def rank_gemm(op: Op, t: int, c: int) -> tuple[int, int, int]:
    """(M, N, K) of a GEMM on one rank: N/t column-parallel, K/t row-parallel, M/c context."""
    assert op.gemm is not None
    M, N, K = op.gemm
    M = max(1, M // c)
    kv_cols, g = op.kv
    if kv_cols and g < t:  # K/V heads replicated: each rank computes its query share and one K/V head
        N = max(1, (N - kv_cols) // t + kv_cols // g)
    elif op.tp in ("column", "vocab"):
        N = max(1, N // t)
    elif op.tp == "row":
        K = max(1, K // t)
    return M, N, K


def op_time(op: Op, cm: ComputeModel, t: int, c: int, sp: bool, flash: bool, backward: bool,
            stack: Stack = MEGATRON) -> float:
    """Seconds one rank spends on ``op`` (forward, or backward when ``backward``) under ``stack``."""
    if op.kind == "gemm" and op.gemm is not None:
        M, N, K = rank_gemm(op, t, c)
        w = stack.fp8_weight_share  # FP8: the weight's quantize, once per step under TE's cache
        cast = cm.memory_time(CAST_FWD_BYTES * N * K, "copy") if stack.autocast and not backward else 0.0
        if cm.fp8_per_tensor:  # TE: X (forward), dY (backward) and W cast once, row- and column-wise
            if not backward:
                return (cm.gemm_time(M, N, K, quantize=False) + cm.quantize_time(M * K, layouts=2)
                        + w * cm.quantize_time(N * K, layouts=2) + cast)
            return (cm.gemm_time(M, K, N, quantize=False) + cm.gemm_time(N, K, M, quantize=False)
                    + cm.quantize_time(M * N, layouts=2) + _accumulate_time(cm, N * K, stack))
        if not backward:
            return cm.gemm_time(M, N, K, weight_share=w) + cast
        return cm.gemm_time(M, K, N, weight_share=w) + cm.gemm_time(N, K, M) + _accumulate_time(cm, N * K, stack)
    if op.kind == "attention" and op.attn is not None:
        b, a, s, d = op.attn
        heads = max(1, a // t)
        return cp_attention_time(cm, b, heads, s, d, c, flash=flash, backward=backward, dropout=op.dropout,
                                 alibi=op.alibi, window=op.window)
    if op.kind == "loss":  # the stack's cross-entropy passes over the vocabulary-parallel logits
        elements = op.elements / (t * c)
        return sum(cm.memory_time(per * elements, kind) for kind, per in (stack.loss_bwd if backward else stack.loss_fwd))
    if op.kind == "elementwise" and stack.pointwise_in_matmul and cm.calibration.mxu_tile:
        return 0.0  # XLA on a TPU: inside the neighbouring matmul's fusion (costs.frameworks)
    nbytes = op.fwd_bytes / (_shard(op, t, sp) * c)
    if op.kind == "embedding":
        nbytes = op.fwd_bytes / c
    kind = MEMORY_KIND.get(op.kind, "elementwise")
    if backward:  # the gradient kernel reads the output gradient and saved input, writes one
        return 2 * cm.memory_time(nbytes, kind)
    return cm.memory_time(nbytes, kind)


#: Autocast (PyTorch AMP): bytes per weight element of the forward's cast (read fp32, write 16-bit).
CAST_FWD_BYTES = 6.0


def _accumulate_time(cm: ComputeModel, weights: int, stack: Stack) -> float:
    """The stack's per-microbatch gradient accumulation for one weight matrix: cast the 16-bit gradient
    to fp32 (6 B) and add it into the fp32 accumulator (the rest of ``grad_accum_bytes``); two kernels
    (one add of ``grad_accum_bytes`` when the stack has no separate cast, ``Stack.grad_accum_cast``)."""
    if not stack.grad_accum_bytes:
        return 0.0
    if not stack.grad_accum_cast:  # one add kernel (Megatron-LM before gradient-accumulation fusion)
        return cm.memory_time(stack.grad_accum_bytes * weights, "elementwise")
    cast = cm.memory_time(6.0 * weights, "copy")
    rest = stack.grad_accum_bytes - 6.0
    return cast + cm.memory_time(rest * weights, "elementwise") if rest > 0 else cast


def host_ops(op: Op, stack: Stack, backward: bool) -> int:
    """Eager ops the host dispatches for ``op`` in one pass (casts and loss passes included)."""
    if op.kind == "loss":
        return len(stack.loss_bwd if backward else stack.loss_fwd)
    if op.kind == "gemm":
        if backward:
            accum = (0 if not stack.grad_accum_bytes else 1 if stack.grad_accum_bytes <= 6.0
                     or not stack.grad_accum_cast else 2)
            return 2 + accum
        return 1 + (1 if stack.autocast else 0)
    return 1


def wgrad_time(op: Op, cm: ComputeModel, t: int, c: int) -> float:
    """Seconds of the weight-gradient GEMM dWᵀ = dYᵀ·X inside ``op``'s backward (0 if none)."""
    if op.kind != "gemm" or op.gemm is None:
        return 0.0
    M, N, K = rank_gemm(op, t, c)
    return cm.gemm_time(N, K, M, quantize=not cm.fp8_per_tensor)  # per-tensor FP8: X and dY arrive quantized


def op_flops(op: Op, t: int, c: int) -> tuple[float, float]:
    """(forward, backward) matmul FLOPs of ``op`` on one rank."""
    if op.kind not in ("gemm", "attention"):
        return 0.0, 0.0
    return op.fwd_flops / (t * c), op.bwd_flops / (t * c)


def block_cost(ops: list[Op], cm: ComputeModel, t: int, c: int, sp: bool, flash: bool,
               stack: Stack = MEGATRON, extra: EagerCost = EagerCost()) -> BlockCost:
    """Sum of :func:`op_time` and :func:`op_flops` over a block's operators, plus the stack's ``extra``
    eager kernels (:mod:`simcluster.costs.eager`); each pass at least the host's dispatch time of its
    ops (``max(GPU, host)``, :mod:`simcluster.costs.frameworks`)."""
    fs, bs, ff, bf, ws, wf = extra.fwd_s, extra.bwd_s, 0.0, 0.0, 0.0, 0.0
    cd, cw, cf = 0.0, 0.0, 0.0
    host_f, host_b = extra.host_fwd, extra.host_bwd
    for op in ops:
        fs += op_time(op, cm, t, c, sp, flash, False, stack)
        back = op_time(op, cm, t, c, sp, flash, True, stack)
        bs += back
        host_f += host_ops(op, stack, False)
        host_b += host_ops(op, stack, True)
        f, b = op_flops(op, t, c)
        ff += f
        bf += b
        if op.kind == "gemm":
            w = wgrad_time(op, cm, t, c)
            ws += w
            wf += b / 2  # dgrad and wgrad cost 2MNK each
            if op.tp == "column":
                cd, cw, cf = cd + back - w, cw + w, cf + b / 2
    fs, bs = max(fs, host_f * stack.host_op_s), max(bs, host_b * stack.host_op_s)
    return BlockCost(fs, bs, ff, bf, ws, wf, cd, cw, cf)


@dataclass(frozen=True)
class Blocks:
    """Per-rank costs of one layer's halves, the embedding and the head, for one microbatch."""

    attn: BlockCost
    mlp: BlockCost
    emb: BlockCost
    head: BlockCost
    core_rc_s: float  # selective recompute: the attention core's forward again
    core_rc_flops: float
    gather_copy_s: float = 0.0  # after each ZeRO-3 all-gather, on the compute stream (FSDP2's copy-out)
    checkpoint_s: float = 0.0  # full recompute, per layer: Megatron-LM 2019 CheckpointFunction's RNG-state copies
    up_rc_s: float = 0.0  # MLA under selective recompute: the latents' norms and the up-projections again
    up_rc_flops: float = 0.0
    norm_rc_s: float = 0.0  # MLA under recompute_modules' layernorm: the input norm's forward again

    @property
    def layer(self) -> BlockCost:
        """A whole layer (attention and MLP halves)."""
        a, m = self.attn, self.mlp
        return BlockCost(a.fwd_s + m.fwd_s, a.bwd_s + m.bwd_s, a.fwd_flops + m.fwd_flops,
                         a.bwd_flops + m.bwd_flops, a.wgrad_s + m.wgrad_s, a.wgrad_flops + m.wgrad_flops,
                         a.col_dgrad_s + m.col_dgrad_s, a.col_wgrad_s + m.col_wgrad_s, a.col_flops + m.col_flops)


def model_blocks(ops: ModelOps, cm: ComputeModel, t: int, c: int, sp: bool, flash: bool,
                 stack: Stack = MEGATRON) -> Blocks:
    """:func:`block_cost` of every block of ``ops`` on one rank of a (t, c, sp) layout under ``stack``."""
    attn = ops.block("attn")
    core = [o for o in attn if o.kind == "attention"]
    # MLA's latent norms and up-projections (Megatron's module-wise selective recompute only)
    up = [o for o in attn if o.name in SELECTIVE_RECOMPUTE] if stack.selective == "core" else []
    autocast = fp32_residual_stream(stack, cm.precision)
    if autocast:  # autocast with fp32 parameters (costs.autocast_stream)
        kernels = stream_kernels(ops.mlp, parallel=not ops.block("mlp"), fused=stack.fused_model)
    else:
        kernels = stack_kernels(ops.mlp, stack.eager_layer, stack.fused_kernels, flash, stack.fused_model)
    if stack.host_op_s > 0:  # op-by-op stacks run partial rotary's copies (XLA fuses them): costs.partial_rotary
        kernels = tuple(kernels) + partial_rotary_kernels(ops.rotary_pct)
    if any(k.name == "rmsnorm.float" for k in kernels):  # Llama-style eager code's further RMSNorms (costs.eager)
        if any(o.name == "qk_norm" for o in attn):
            kernels = tuple(kernels) + QK_RMSNORM
        if any(o.name == "post_ln1" for o in attn):
            kernels = tuple(kernels) + POST_RMSNORM
    if stack.eager_layer and not flash:  # eager PyTorch's separate passes over the scores: costs.eager_attention
        dropout = any(o.dropout for o in attn if o.kind == "attention")
        kernels = tuple(kernels) + score_kernels(autocast, dropout)
    extra = {k: block_extra(ops, k, cm, t, c, sp, kernels) if kernels else EagerCost() for k in ("attn", "mlp")}
    attn_cost = block_cost(list(attn), cm, t, c, sp, flash, stack, extra["attn"])
    if not stack.fused_kernels:  # Megatron-LM 2019's layer: RNG-state swaps around its dropout (costs.rng_state)
        attn_cost = replace(attn_cost, fwd_s=attn_cost.fwd_s + rng_state.fork_s(stack.host_op_s))
    return Blocks(attn_cost,
                  block_cost(list(ops.block("mlp")), cm, t, c, sp, flash, stack, extra["mlp"]),
                  block_cost(list(ops.embedding), cm, t, c, sp, flash, stack),
                  block_cost(list(ops.head), cm, t, c, sp, flash, stack),
                  *(op_sac_recompute(ops, cm, t, c, sp, flash, stack, extra) if stack.selective == "op" else
                    saves_recompute(ops, cm, t, c, sp, flash, stack, extra) if stack.selective == "saves" else
                    rerun_cost(core, cm, t, c, sp, flash)),
                  gather_copy_time(ops, cm, t, stack),
                  0.0 if stack.fused_kernels else rng_state.checkpoint_s(stack.host_op_s),
                  *rerun_cost(up, cm, t, c, sp, flash),
                  rerun_cost([o for o in attn if o.name == "ln1"] if up else [], cm, t, c, sp, flash)[0])


def rerun_cost(ops: list[Op], cm: ComputeModel, t: int, c: int, sp: bool, flash: bool) -> tuple[float, float]:
    """(seconds, matmul FLOPs) one rank spends running ``ops``' forwards again (selective recompute)."""
    return sum(op_time(o, cm, t, c, sp, flash, False) for o in ops), sum(op_flops(o, t, c)[0] for o in ops)


def curve_shares(ops: ModelOps, cm: ComputeModel, t: int, c: int, sp: bool, flash: bool,
                 stack: Stack = MEGATRON) -> dict[str, float]:
    """The shares of one microbatch's block costs (:func:`model_blocks`: a layer's halves forward and backward,
    the embedding, the head, the recompute) by the fitted curve they read: ``gemm``, ``attention``, ``memory``
    (:mod:`simcluster.costs.curve_shares`; the error bars weight each curve's σ by them)."""
    tally = TallyingModel.of(cm)
    model_blocks(ops, tally, t, c, sp, flash, stack)
    return tally.shares()


def mm_parts(ops: ModelOps) -> list[tuple[Op, float]]:
    """The layer's matrix multiplies in forward order as (GEMM operator, share of its N): Llama-style code
    (SwiGLU, torchtitan) runs wq, wk, wv and w1, w3 as separate mms; GPT/MPT code fuses Wqkv."""
    out: list[tuple[Op, float]] = []
    for o in ops.layer:
        if o.kind != "gemm" or o.gemm is None:
            continue
        n = o.gemm[1]
        if ops.mlp == "swiglu" and o.name == "qkv":
            kv = o.kv[0] / n
            out += [(o, 1 - kv), (o, kv / 2), (o, kv / 2)]
        elif ops.mlp == "swiglu" and o.name == "fc1":
            out += [(o, 0.5), (o, 0.5)]
        else:
            out.append((o, 1.0))
    return out


def op_sac_recompute(ops: ModelOps, cm: ComputeModel, t: int, c: int, sp: bool, flash: bool, stack: Stack,
                     extra: dict[str, EagerCost]) -> tuple[float, float]:
    """(seconds, matmul FLOPs) torchtitan's op SAC recomputes per layer (:mod:`simcluster.costs.frameworks`):
    every second mm in forward order (:func:`mm_parts`) and every memory-bound kernel, the stack's extra
    eager kernels included; the SDPA output is saved."""
    secs = extra["attn"].fwd_s + extra["mlp"].fwd_s
    secs += sum(op_time(o, cm, t, c, sp, flash, False, stack) for o in ops.layer if o.kind not in ("gemm", "attention"))
    flops = 0.0
    for i, (o, share) in enumerate(mm_parts(ops), start=1):
        if i % 2:
            continue
        M, N, K = rank_gemm(o, t, c)
        n = max(1, round(N * share))
        secs += cm.gemm_time(M, n, K)
        flops += 2.0 * M * n * K
    return secs, flops


def saves_recompute(ops: ModelOps, cm: ComputeModel, t: int, c: int, sp: bool, flash: bool, stack: Stack,
                    extra: dict[str, EagerCost]) -> tuple[float, float]:
    """(seconds, matmul FLOPs) a name-based checkpoint policy recomputes per layer (``training.recompute_saves``,
    ``Stack.selective_saves``): the layer's whole forward — its operators with the stack's extra kernels —
    except the GEMMs whose outputs it keeps and, when ``attention`` is kept, the attention core. MaxText's
    ``save_dot_except_mlpwi`` keeps every projection but the MLP's gate and up (qkv, proj, fc2 here) and reruns
    the rest: fc1, the attention core (a custom call, not a dot) and every memory-bound kernel
    (dgxc-benchmarking 35a9aec ``maxtext/configure.sh``)."""
    saves = set(stack.selective_saves)
    secs = extra["attn"].fwd_s + extra["mlp"].fwd_s
    flops = 0.0
    for o in ops.layer:
        kept = (o.kind == "gemm" and o.name in saves) or (o.kind == "attention" and "attention" in saves)
        if kept:
            continue
        secs += op_time(o, cm, t, c, sp, flash, False, stack)
        flops += op_flops(o, t, c)[0]
    return secs, flops


def gather_copy_time(ops: ModelOps, cm: ComputeModel, t: int, stack: Stack) -> float:
    """Seconds of the copy-out after one ZeRO-3 all-gather of a layer's weights on one rank: one kernel
    moving ``stack.gather_copy_out_bytes`` per weight (FSDP2's ``split_with_sizes_copy``; 0 otherwise).
    The GEMM weights only: a layer's biases and norm weights (13·h of 12·h² + 13·h) are left out."""
    if not stack.gather_copy_out_bytes:
        return 0.0
    weights = sum(rank_gemm(o, t, 1)[1] * rank_gemm(o, t, 1)[2] for o in ops.layer if o.kind == "gemm")
    return cm.memory_time(stack.gather_copy_out_bytes * weights, "copy")


def optimizer_time(cm: ComputeModel, optimizer: str, params: float, shard: int = 1,
                   stack: Stack = MEGATRON, layers: int = 0) -> tuple[float, float]:
    """(seconds, bytes) of the memory-bound optimizer step over ``params / shard`` parameters.

    Fused: :data:`OPTIMIZER_BYTES` in one pass (with bf16 states and no master copy,
    :data:`simcluster.costs.optimizer_states.BF16_STEP_BYTES`); Megatron-LM's Adam: the passes of
    :mod:`simcluster.costs.megatron_optimizer` over the ``params`` held and the ``params / shard`` updated; PyTorch's multi-tensor (foreach) Adam: eight passes,
    :data:`simcluster.costs.torch_step.FOREACH_ADAM_BYTES`. Megatron-LM 2019 (``fp16_2019``): the fused
    pass plus ``FP16_Optimizer``'s per-tensor loops over the tensors of ``layers`` layers
    (:func:`simcluster.costs.fp16_optimizer.extra_time`). PyTorch's trainers clip the gradient norm first:
    ``stack.clip_grad_bytes`` per parameter of the shard (:mod:`simcluster.costs.torch_step`).
    """
    step_s, step_bytes = _step_time(cm, optimizer, params, shard, stack, layers)
    if not stack.clip_grad_bytes:
        return step_s, step_bytes
    clip = stack.clip_grad_bytes * params / shard
    return step_s + cm.memory_time(clip, "elementwise") + CLIP_GRAD_KERNELS * cm.kernel_overhead_s, step_bytes + clip


def _step_time(cm: ComputeModel, optimizer: str, params: float, shard: int, stack: Stack,
               layers: int) -> tuple[float, float]:
    """(seconds, bytes) of the optimizer's own step (:func:`optimizer_time`, before any gradient clipping)."""
    if stack.optimizer == "foreach" and optimizer == "adam":
        nbytes = FOREACH_ADAM_BYTES * params / shard
        return cm.memory_time(nbytes, "elementwise") + FOREACH_ADAM_KERNELS * cm.kernel_overhead_s, nbytes
    if stack.optimizer == "megatron" and optimizer == "adam" and stack.optimizer_states != "bf16":
        nbytes = megatron_optimizer.step_bytes(cm.precision, params, shard, stack.grad_reduce_bf16)
    else:
        nbytes = (BF16_STEP_BYTES[optimizer] if stack.optimizer_states == "bf16" else OPTIMIZER_BYTES[optimizer]) \
            * params / shard
    secs = cm.memory_time(nbytes, "copy") + OPTIMIZER_KERNELS * cm.kernel_overhead_s
    if stack.optimizer == "fp16_2019":
        more_s, more_bytes = fp16_optimizer.extra_time(cm, params / shard, fp16_optimizer.tensors(layers),
                                                       stack.host_op_s)
        secs, nbytes = secs + more_s, nbytes + more_bytes
    return secs, nbytes
