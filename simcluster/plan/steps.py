"""A pipeline unit declared as data: the ordered steps of one forward, backward or W pass.

One layer's forward (F) and backward (B) pass, per rank and microbatch, is a short list
of :class:`Step` s. Lowering turns each step into tasks (:mod:`simcluster.lowering.lower`);
the analytical screen sums the same steps in closed form (:mod:`simcluster.search.estimate`).
Nothing else in the code decides which collectives a layer runs.

Per layer (Shoeybi et al. 2019 §3; Korthikanti et al. 2022 §4.2.2, §5; Narayanan et al.
2021 §3.5; Liu et al. 2023; Rajbhandari et al. 2020; Qi et al. 2023):

- a *block* (the attention half, the MLP half) is: with sequence parallelism a
  tensor-parallel all-gather before it; with context parallelism the K/V ring exchange
  beside the attention block; the compute; then a tensor-parallel all-reduce (a
  reduce-scatter with sequence parallelism). The tensor-parallel collectives block the
  compute stream, as Megatron runs them, or run beside the block's compute under Transformer
  Engine's userbuffers (``parallelism.tp_comm_overlap``, :mod:`simcluster.plan.tp_overlap`); a
  backward's input-gradient reduction runs beside its weight-gradient GEMM under
  ``parallelism.tp_grad_overlap`` (:mod:`simcluster.plan.tp_grad_overlap`);
- F: ZeRO-3 gathers the layer's weights (PyTorch FSDP2 then copies them out of the flat gather
  buffer on the compute stream, ``zero.copy_out``), then the attention and MLP blocks;
- B: ZeRO-3 gathers again; full recompute runs both forward blocks again (``rc.``);
  the MLP block's backward; selective recompute runs the attention core again; the
  attention block's backward, which produces the layer's gradients; ZeRO ≥ 2
  reduce-scatters them;
- zero-bubble (ZB-H1) moves the weight-gradient GEMMs out of B into a W pass per layer.

The first chunk adds the embedding (F: compute, then the tensor-parallel reduction of its
vocab-parallel output; B: an all-gather with sequence parallelism, then the compute), the
last chunk the head (F: an all-gather with sequence parallelism, then the logits and loss;
B: the compute, then a reduce-scatter with sequence parallelism).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from simcluster.plan.costing import BlockCost, Blocks
from simcluster.plan.fsdp_root import RootUnit
from simcluster.plan.tp_grad_overlap import backward_steps as grad_overlap_steps
from simcluster.plan.tp_overlap import block_steps
from simcluster.spec.training import TrainingSpec
from simcluster.spec.workload import ModelSpec

StepKind = Literal["compute", "tp", "ring", "gather", "reduce_grads", "a2a"]

#: The phase of compute-stream steps that are host work, the GPU idle meanwhile (DeepSpeed ZeRO-3's per-rank loops
#: around its list-based collectives): kept out of compute and reported as ``host_wait`` (simcluster.metrics.summary).
HOST_PHASE = "host"
#: Gradient keys of the embedding and the head (layers use their index).
EMBEDDING_GRADS, HEAD_GRADS = -1, -2


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a pipeline unit on one rank.

    ``what``: ``compute`` (on the compute stream), ``tp`` (a tensor-parallel collective of
    the activation buffer, blocking the compute stream), ``ring`` (the context-parallel K/V
    exchange, beside the next compute), ``gather`` (ZeRO-3's all-gather of the layer's
    weights, on the data-parallel stream), ``reduce_grads`` (ZeRO ≥ 2's reduce-scatter of
    the layer's gradients, on the data-parallel stream), ``a2a`` (a mixture of experts' dispatch or
    combine all-to-all over the expert-parallel group, blocking the compute stream:
    :mod:`simcluster.plan.moe`).
    """

    what: StepKind
    name: str  # task name without the layer, e.g. "fwd.attn"
    phase: str  # forward | backward | recompute | weight_grad (compute steps)
    seconds: float = 0.0  # compute steps
    flops: float = 0.0
    op: str = ""  # collective steps: all_reduce | all_gather | reduce_scatter
    block: bool = False  # a layer block's compute (ZeRO-3 prefetch counts these)
    waits_params: bool = False  # starts after this layer's ZeRO-3 gather
    waits_grads: bool = False  # compute steps: starts after the rank's last gradient reduce-scatter (a device sync)
    grads: bool = False  # produces the layer's gradients
    tag: str = ""  # tp steps: the name their task carries, e.g. "fwd.attn" or "embedding"
    parts: int = 1  # gather / reduce_grads steps: collectives the layer's weights (gradients) move in, one after another
    prefetch: bool = True  # gather steps: issued a block ahead of need (False: after the previous block)
    nbytes: float = 0.0  # a2a steps (MoE dispatch and combine, simcluster.plan.moe): each rank's send buffer
    overlap: bool = False  # DualPipe (simcluster.plan.moe): an a2a beside the compute; a compute that waits for it.
    # tp steps: beside the next compute, which the chain's next task waits for (simcluster.plan.tp_overlap)
    share: float = 1.0  # gather steps: the share of the layer's weights fetched (DeepSpeed's re-fetch after recompute);
    # tp steps: the share of the activation bytes moved (userbuffers' pipelined reduce-scatter chunks)
    params: float = 0.0  # gather / reduce_grads steps: the weights moved, when not a layer's (FSDP's root unit)
    joins: str = ""  # merged 1F1B (simcluster.plan.ep_overlap): the step waits for the all-to-all of this tag


@dataclass(frozen=True)
class UnitShape:
    """What decides a unit's steps besides the block costs."""

    tp: bool  # tensor parallel (t > 1)
    sp: bool  # sequence parallel
    cp: bool  # context parallel (c > 1)
    recompute: str  # none | selective | full
    gather: bool  # ZeRO-3 with data parallelism
    reduce_grads: bool  # ZeRO >= 2 with data parallelism
    split_w: bool  # zero-bubble: weight gradients in W passes
    parallel: bool = False  # parallel attention and MLP: one block (all in ``Blocks.attn``), one reduction
    parallel_inputs: int = 1  # parallel block: column-parallel inputs reduced apart in the backward (GPT-NeoX: 2)
    distribute: bool = False  # full recompute's saved input split over the tensor ranks: gathered first
    gather_parts: int = 1  # ZeRO-3 all-gathers per layer (DeepSpeed fetches each linear layer's weights)
    gather_prefetch: bool = True  # ZeRO-3 gathers issued ahead of need (else: when the compute reaches them)
    refetch_parts: int = 0  # ZeRO-3 under full recompute: modules gathered again between recompute and backward
    refetch_share: float = 0.0  # ... and their share of the layer's weights (DeepSpeed's reuse distance)
    collective_prep_s: float = 0.0  # host seconds before each ZeRO-3 gather / reduce-scatter, the GPU waiting
    fetch_sync: bool = False  # that host work starts after a device sync: the reduce-scatters in flight end first
    grad_parts: int = 1  # ZeRO >= 2: reduce-scatters per layer (DeepSpeed ZeRO-3: one per tensor, one after another)
    persist_gather_s: float = 0.0  # DeepSpeed ZeRO-3: host seconds per layer re-gathering its persistent tensors per step
    recv_gather: bool = False  # scatter-gathered pipeline sends: a received unit starts with a tensor all-gather
    root: RootUnit = RootUnit()  # FSDP's root unit (embedding, final norm, output): simcluster.plan.fsdp_root
    tp_overlap: bool = False  # tensor collectives beside the blocks' GEMMs (userbuffers): simcluster.plan.tp_overlap
    tp_grad_overlap: bool = False  # backward reductions beside the weight-gradient GEMMs: simcluster.plan.tp_grad_overlap
    core_rc: bool = True  # selective recompute reruns the attention core (Megatron-Core: core_attn in recompute_modules)
    up_rc: bool = False  # ... MLA's latent norms and up-projections (mla_up_proj; unset recompute_modules: with the core)
    norm_rc: bool = False  # ... MLA's input norm (layernorm: its output dropped after the forward)
    mlp_rc: bool = False  # ... the MLP block's forward, its tensor collectives with it (mlp; an MoE layer's: moe)

    def kept(self) -> "UnitShape":
        """This shape for a layer a partial full recompute keeps (``training.recompute_num_layers``,
        :mod:`simcluster.costs.partial_recompute`): no recompute, nor DeepSpeed's re-fetch after it, nor its
        split saved input."""
        return replace(self, recompute="none", refetch_parts=0, refetch_share=0.0, distribute=False)


def recv_gather_step(kind: str) -> Step:
    """The tensor-group all-gather of a scatter-gathered pipeline send (Narayanan et al. 2021 §4.1),
    on the compute stream before the receiving unit (Megatron-LM's ``gather_split_1d_tensor``)."""
    return Step("tp", "pp.recv_gather", "forward" if kind == "F" else "backward", op="all_gather",
                tag="pp.recv_gather")


def _prep(shape: UnitShape, count: int) -> list[Step]:
    """DeepSpeed's per-rank host work before ``count`` list-based collectives (frameworks docstring), the GPU
    idle meanwhile: a compute-stream step of phase :data:`HOST_PHASE`."""
    if shape.collective_prep_s <= 0 or count <= 0:
        return []
    return [Step("compute", "zero.prep", HOST_PHASE, count * shape.collective_prep_s, waits_grads=shape.fetch_sync)]


def tp_block(shape: UnitShape, name: str, secs: float, flops: float, phase: str, attn: bool, fwd: bool,
             waits: bool = False, cost: BlockCost | None = None) -> list[Step]:
    """A block's compute step with its tensor-parallel collectives (sequence parallel: all-gather before, reduce-scatter
    after; else an all-reduce after), its context ring (attention), or userbuffers' overlapped collectives."""
    if shape.tp_overlap and shape.tp:  # Transformer Engine's userbuffers: simcluster.plan.tp_overlap
        gather = Step("tp", name, phase, op="all_gather", tag=name) if shape.sp else None
        ring = [Step("ring", name, phase, op="all_gather" if fwd else "reduce_scatter")] if attn and shape.cp else []
        return block_steps(gather, ring, Step("compute", name, phase, secs, flops, block=True, waits_params=waits),
                           Step("tp", name, phase, op="reduce_scatter" if shape.sp else "all_reduce", tag=name), fwd)
    out: list[Step] = []
    if shape.tp and shape.sp:
        out.append(Step("tp", name, phase, op="all_gather", tag=name))
    if attn and shape.cp:
        out.append(Step("ring", name, phase, op="all_gather" if fwd else "reduce_scatter"))
    compute = Step("compute", name, phase, secs, flops, block=True, waits_params=waits)
    reduce = Step("tp", name, phase, op="reduce_scatter" if shape.sp else "all_reduce", tag=name)
    if shape.tp and shape.tp_grad_overlap and not fwd and cost is not None and cost.col_wgrad_s > 0:
        gather = Step("tp", name, phase, op="all_gather", tag=name) if shape.sp else None
        return out + grad_overlap_steps(name, secs, flops, cost, compute, gather, reduce)
    out.append(compute)
    if shape.tp:
        out.append(reduce)
    return out


def layer_steps(kind: str, b: Blocks, shape: UnitShape) -> tuple[Step, ...]:
    """The steps of one layer in a pass of ``kind`` F, B or W."""
    gather = _prep(shape, shape.gather_parts) + [
        Step("gather", "zero.all_gather", "forward", op="all_gather", parts=shape.gather_parts,
             prefetch=shape.gather_prefetch)] if shape.gather else []
    reduce = _prep(shape, shape.grad_parts if shape.gather else 0) + [
        Step("reduce_grads", "zero.reduce_scatter", "backward", op="reduce_scatter", parts=shape.grad_parts)
    ] if shape.reduce_grads else []
    copied = shape.gather and b.gather_copy_s > 0
    if copied:  # FSDP2's copy-out of the gathered weights, on the compute stream once the gather is done
        gather.append(Step("compute", "zero.copy_out", "forward" if kind == "F" else "backward",
                           b.gather_copy_s, waits_params=True))
    if shape.parallel:
        return _parallel_layer_steps(kind, b, shape, gather, reduce, copied)
    if kind == "F":
        return tuple(gather + tp_block(shape, "fwd.attn", b.attn.fwd_s, b.attn.fwd_flops, "forward", True, True,
                                       waits=shape.gather and not copied)
                     + tp_block(shape, "fwd.mlp", b.mlp.fwd_s, b.mlp.fwd_flops, "forward", False, True))
    if kind == "W":
        w = b.layer
        return (Step("compute", "wgrad", "weight_grad", w.wgrad_s, w.wgrad_flops, grads=True), *reduce)
    mlp, attn = _backward(b.mlp, shape.split_w), _backward(b.attn, shape.split_w)
    out = list(gather)
    waits = shape.gather and not copied
    if shape.recompute == "full":
        out += _checkpoint_gather(shape)
        out += tp_block(shape, "rc.attn", b.attn.fwd_s, b.attn.fwd_flops, "recompute", True, True, waits=waits)
        out += tp_block(shape, "rc.mlp", b.mlp.fwd_s, b.mlp.fwd_flops, "recompute", False, True)
        out += _checkpoint_rng(b)
        waits = False
        if shape.gather and shape.refetch_parts:  # DeepSpeed: weights released after their recompute, fetched again
            out += _prep(shape, shape.refetch_parts) + [
                Step("gather", "zero.all_gather", "backward", op="all_gather", parts=shape.refetch_parts,
                     prefetch=False, share=shape.refetch_share)]
            if copied:
                out.append(Step("compute", "zero.copy_out", "backward", shape.refetch_share * b.gather_copy_s,
                                waits_params=True))
            waits = not copied
    mlp_cost, attn_cost = (None, None) if shape.split_w else (b.mlp, b.attn)
    if shape.recompute == "selective" and shape.mlp_rc:  # Megatron-Core's checkpoint around the MLP (mlp / moe)
        out += tp_block(shape, "rc.mlp", b.mlp.fwd_s, b.mlp.fwd_flops, "recompute", False, True, waits=waits)
        waits = False
    out += tp_block(shape, "bwd.mlp", *mlp, "backward", False, False, waits=waits, cost=mlp_cost)
    out += attention_reruns(b, shape)
    attn_steps = tp_block(shape, "bwd.attn", *attn, "backward", True, False, cost=attn_cost)
    if not shape.split_w:  # the last compute step produces the layer's gradients
        i = max(i for i, s in enumerate(attn_steps) if s.what == "compute")
        attn_steps[i] = replace(attn_steps[i], grads=True)
        attn_steps += reduce  # ZeRO >= 2: reduce-scatter what that compute produced
    out += attn_steps
    return tuple(out)


def attention_reruns(b: Blocks, shape: UnitShape) -> list[Step]:
    """What selective recompute runs again before the attention block's backward: the attention core (Korthikanti
    et al. 2022 §4.2; Megatron-Core's core_attn), under MLA the latents' norms and up-projections (DeepSeek-V3
    §3.2.3; mla_up_proj) and the input norm (layernorm), each a forward of those operators in phase recompute."""
    if shape.recompute != "selective":
        return []
    out = [Step("compute", "rc.attn_core", "recompute", b.core_rc_s, b.core_rc_flops)] if shape.core_rc else []
    if shape.up_rc and b.up_rc_s > 0:
        out.append(Step("compute", "rc.mla_up", "recompute", b.up_rc_s, b.up_rc_flops))
    if shape.norm_rc and b.norm_rc_s > 0:
        out.append(Step("compute", "rc.input_norm", "recompute", b.norm_rc_s, 0.0))
    return out


def rerun_flags(model: ModelSpec, training: TrainingSpec) -> dict[str, bool]:
    """:class:`UnitShape`'s selective-recompute flags of ``training`` (:meth:`TrainingSpec.selective_modules`)."""
    mods = training.selective_modules(model.attention)
    return {"core_rc": "core_attn" in mods, "up_rc": "mla_up_proj" in mods, "norm_rc": "layernorm" in mods,
            "mlp_rc": "mlp" in mods}


def _checkpoint_rng(b: Blocks) -> list[Step]:
    """Full recompute under Megatron-LM 2019: ``CheckpointFunction``'s synchronous RNG-state copies of the layer
    (:func:`simcluster.costs.rng_state.checkpoint_s`; its one forward copy counted here too)."""
    return [Step("compute", "rc.rng_state", "recompute", b.checkpoint_s, 0.0)] if b.checkpoint_s > 0 else []


def _checkpoint_gather(shape: UnitShape) -> list[Step]:
    """Full recompute with the saved input distributed over the tensor ranks (and no sequence
    parallelism, which splits it anyway): all-gather it before recomputing (Megatron-LM's
    ``CheckpointFunction`` with ``distribute_saved_activations``)."""
    if shape.distribute and shape.tp and not shape.sp:
        return [Step("tp", "rc.checkpoint", "recompute", op="all_gather", tag="rc.checkpoint")]
    return []


def _parallel_layer_steps(kind: str, b: Blocks, shape: UnitShape, gather: list[Step],
                          reduce: list[Step], copied: bool) -> tuple[Step, ...]:
    """A parallel block (GPT-J; Chowdhery et al. 2022 §2): y = x + Attn(LN(x)) + MLP(LN(x)), so one
    block per pass with one tensor-parallel reduction of the summed outputs (with sequence
    parallelism one all-gather before it and one reduce-scatter after). With two LayerNorms
    (``shape.parallel_inputs`` 2, GPT-NeoX's ``gpt_j_residual``) the QKV and MLP-up GEMMs read
    different inputs, and the backward of each one's ``copy_to_model_parallel_region`` all-reduces
    its input gradient: one more reduction per backward, on the compute stream like the first
    (:func:`simcluster.workload.graph._neox_parallel`)."""
    if kind == "F":
        return tuple(gather + tp_block(shape, "fwd.layer", b.attn.fwd_s, b.attn.fwd_flops, "forward", True, True,
                                       waits=shape.gather and not copied))
    if kind == "W":
        return (Step("compute", "wgrad", "weight_grad", b.attn.wgrad_s, b.attn.wgrad_flops, grads=True), *reduce)
    out = list(gather)
    waits = shape.gather and not copied
    if shape.recompute == "full":
        out += _checkpoint_gather(shape)
        out += tp_block(shape, "rc.layer", b.attn.fwd_s, b.attn.fwd_flops, "recompute", True, True, waits=waits)
        out += _checkpoint_rng(b)
        waits = False
    out += attention_reruns(b, shape)
    steps = tp_block(shape, "bwd.layer", *_backward(b.attn, shape.split_w), "backward", True, False, waits=waits)
    if shape.tp and not shape.sp and not shape.tp_overlap:
        steps += [Step("tp", f"bwd.layer.in{i}", "backward", op="all_reduce", tag=f"bwd.layer.in{i}")
                  for i in range(2, shape.parallel_inputs + 1)]
    if not shape.split_w:
        i = next(i for i, s in enumerate(steps) if s.what == "compute")
        s = steps[i]
        steps[i] = Step(s.what, s.name, s.phase, s.seconds, s.flops, block=True, waits_params=s.waits_params,
                        grads=True)
        steps += reduce
    return tuple(out + steps)


def _backward(c: BlockCost, split_w: bool) -> tuple[float, float]:
    """(seconds, FLOPs) of a block's backward pass; without the weight gradients under ZB-H1."""
    if split_w:
        return c.bwd_s - c.wgrad_s, c.bwd_flops - c.wgrad_flops
    return c.bwd_s, c.bwd_flops


def embedding_steps(kind: str, b: Blocks, shape: UnitShape) -> tuple[Step, ...]:
    """The first chunk's embedding steps, before its layers (F) or after them (B); under FSDP the root unit's
    gather and copy-out first (F) and its gradient cast and reduce-scatter last (B), :mod:`simcluster.plan.fsdp_root`."""
    if kind == "F":
        out = _root_gather(shape) + [Step("compute", "fwd.embedding", "forward", b.emb.fwd_s, b.emb.fwd_flops)]
        if shape.tp:
            out.append(Step("tp", "fwd.embedding", "forward", op="reduce_scatter" if shape.sp else "all_reduce",
                            tag="embedding"))
        return tuple(out)
    if kind == "B":
        out = [Step("tp", "bwd.embedding", "backward", op="all_gather", tag="embedding")] \
            if shape.tp and shape.sp else []
        out.append(Step("compute", "bwd.embedding", "backward", b.emb.bwd_s, b.emb.bwd_flops, grads=True))
        return tuple(out + _root_reduce(shape))
    return ()


def _root_gather(shape: UnitShape) -> list[Step]:
    """FSDP's root unit before the embedding: its all-gather (nothing to prefetch behind), then the copy-out."""
    root = shape.root
    if not (shape.gather and root.params):
        return []
    return [Step("gather", "zero.all_gather", "forward", op="all_gather", params=root.params),
            Step("compute", "zero.copy_out", "forward", root.copy_out_s, waits_params=True)]


def _root_reduce(shape: UnitShape) -> list[Step]:
    """FSDP's root unit after the whole backward: the embedding gradient's fp32 cast, then the reduce-scatter."""
    root = shape.root
    if not (shape.reduce_grads and root.params):
        return []
    cast = [Step("compute", "zero.copy_in", "backward", root.grad_cast_s, grads=True)] if root.grad_cast_s else []
    return cast + [Step("reduce_grads", "zero.reduce_scatter", "backward", op="reduce_scatter", params=root.params)]


def head_steps(kind: str, b: Blocks, shape: UnitShape, deferred: tuple[float, float] | None = None) -> tuple[Step, ...]:
    """The last chunk's head steps (logits and loss), after its layers (F) or before them (B); ``deferred``: the
    (seconds, FLOPs) of the output layer's weight gradient left to the pipeline flush, the head's gradients then
    produced there (:mod:`simcluster.costs.deferred_wgrad`)."""
    tp_sp = shape.tp and shape.sp
    if kind == "F":
        out = [Step("tp", "fwd.head", "forward", op="all_gather", tag="head")] if tp_sp else []
        out.append(Step("compute", "fwd.head", "forward", b.head.fwd_s, b.head.fwd_flops))
        return tuple(out)
    if kind == "B":
        w_s, w_f = deferred or (0.0, 0.0)
        out = [Step("compute", "bwd.head", "backward", b.head.bwd_s - w_s, b.head.bwd_flops - w_f, grads=not deferred)]
        if tp_sp:
            out.append(Step("tp", "bwd.head", "backward", op="reduce_scatter", tag="head"))
        return tuple(out)
    return ()
