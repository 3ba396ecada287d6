"""The typed plan of one layout, built once from a workload: what every later stage reads.

A :class:`Plan` holds the rank grid (Megatron-Core order, :mod:`simcluster.plan.grid`), the
stage partition, each stage's schedule order and microbatches in flight, the per-rank
block costs of one layer, the embedding and the head, the bytes each communication moves,
the parameter counts (from :mod:`simcluster.costs.params`, the one source) and the steps
of every pipeline unit (:mod:`simcluster.plan.steps`). Lowering turns it into tasks,
metrics and the memory report read its counts, and the analytical screen sums its steps.

Bytes (16-bit activations, Narayanan et al. 2021 §4.1; Korthikanti et al. 2022 §4.2.2):

- tensor-parallel collective buffer: b·(s/c)·h·dtype;
- pipeline send: the same, or the same over t where the stack splits it (sequence parallel,
  scatter/gather, XLA's sharded activation: :func:`simcluster.costs.pipeline_sends.pipeline_sends`);
- K/V exchanged over the context ring per layer: 2·b·s·g·d·dtype / t;
- gradients per parameter: 4 bytes (Megatron's fp32 ``main_grad``) or 2 under fp16.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from simcluster.costs import params as P
from simcluster.costs.compute import ComputeModel
from simcluster.costs.deferred_wgrad import OUTPUT_GEMM, deferred
from simcluster.costs.attention_kernels import attention_kernel
from simcluster.costs.frameworks import Stack, framework
from simcluster.costs.pipeline_sends import PipelineSends
from simcluster.costs.memory import MemoryBreakdown, stage_memory
from simcluster.costs.partial_recompute import partial, recomputed_layers
from simcluster.costs.reserve import Reserve, replay_reserve
from simcluster.plan.costing import (TRAINING_LOOP_KERNEL_GAP_S, Blocks, curve_shares, model_blocks, op_flops,
                                     wgrad_time)
from simcluster.plan.fsdp_root import fsdp_root
from simcluster.plan.grid import RankGrid
from simcluster.plan.moe import MoePlan, build_moe_plan
from simcluster.plan.moe_memory import moe_stage_memory
from simcluster.plan.param_gather import gather_weights
from simcluster.plan.partition import model_chunks
from simcluster.plan.ep_overlap import warm_extra
from simcluster.plan.schedules import SCHEDULES, Unit, microbatches_in_flight
from simcluster.plan.stack_bytes import plan_sends, spec_stack, weight_bytes
from simcluster.plan.steps import (EMBEDDING_GRADS, HEAD_GRADS, Step, UnitShape, embedding_steps, head_steps, layer_steps,
                                   recv_gather_step, rerun_flags)
from simcluster.plan.zero3 import (backward_prefetch, collective_prep_s, fetch_syncs, zero3_gathers, zero3_grad_parts,
                                   zero3_persistent_gather_s, zero3_refetch)
from simcluster.spec.workload import WorkloadSpec
from simcluster.topology.devices import Device
from simcluster.workload import DTYPE_BYTES, model_ops
from simcluster.workload.sliding_window import full_attention, full_layers, without_window


@dataclass(frozen=True)
class Params:
    """Parameters one tensor-parallel rank holds (before ZeRO sharding)."""

    layer: float  # one transformer layer
    embedding: float  # word (vocab-parallel) and position embedding, first stage
    head: float  # final layernorm and output projection (and the MTP modules' own weights), last stage
    word_embedding: float  # the tied word embedding whose gradients the first and last stage sum
    kv_replicated: float = 0.0  # per layer: K/V weights replicated over the tensor group (g < t)


@dataclass(frozen=True)
class Plan:
    """A layout of one workload, ready to lower or to estimate (see the module docstring)."""

    spec: WorkloadSpec
    grid: RankGrid
    m: int  # microbatches per pipeline
    v: int  # model chunks per stage
    chunks: list[list[int]]  # layers of chunk k = chunk·p + stage
    schedule: str
    blocks: Blocks
    shape: UnitShape
    params: Params
    act_bytes: float
    p2p_bytes: float
    kv_bytes: float
    dtype_bytes: int  # bytes per parameter the weight gathers move (:func:`weight_bytes`)
    grad_bytes: int  # bytes per parameter the gradient reduction moves
    cm: ComputeModel = field(repr=False)  # the compute model the block costs came from
    embedding_and_head: bool = True  # closed-form tests switch them off
    orders: tuple[tuple[Unit, ...], ...] = field(default=(), repr=False)
    moe: MoePlan | None = field(default=None, repr=False)  # mixture of experts (simcluster.plan.moe)
    full_blocks: Blocks | None = field(default=None, repr=False)  # full-attention layers among windowed ones

    # -- the layout -----------------------------------------------------------------------
    @property
    def t(self) -> int:
        return self.grid.t

    @property
    def c(self) -> int:
        return self.grid.c

    @property
    def d(self) -> int:
        return self.grid.d

    @property
    def p(self) -> int:
        return self.grid.p

    @property
    def K(self) -> int:
        """Model chunks over all stages: p·v."""
        return self.grid.p * self.v

    @cached_property
    def stack(self) -> Stack:
        """The software stack's mechanisms (``training.framework``, :mod:`simcluster.costs.frameworks`)."""
        return spec_stack(self.spec)

    def curve_shares(self) -> dict[str, float]:
        """One microbatch's block costs by the fitted curve they read (:func:`simcluster.plan.costing.curve_shares`)."""
        tr = self.spec.training
        return curve_shares(model_ops(self.spec.model, tr), self.cm, self.t, self.c,
                            self.spec.parallelism.sequence_parallel, tr.flash_attention, self.stack)

    @cached_property
    def sends(self) -> PipelineSends:
        """How pipeline sends run: blocking or beside the next unit, split over the tensor ranks, gathered."""
        return plan_sends(self.spec, self.schedule, self.spec.parallelism.sequence_parallel)

    @cached_property
    def deferred_wgrad(self) -> tuple[int, float, float]:
        """(microbatches, seconds and FLOPs of one) of the output layer's weight gradient deferred to the flush
        (``parallelism.defer_embedding_wgrad_compute``, :mod:`simcluster.costs.deferred_wgrad`)."""
        n = deferred(self.spec.training, self.spec.parallelism) if self.embedding_and_head else 0
        out = next((o for o in model_ops(self.spec.model, self.spec.training).head if o.name == OUTPUT_GEMM), None)
        if not n or out is None:
            return 0, 0.0, 0.0
        return n, wgrad_time(out, self.cm, self.t, self.c), op_flops(out, self.t, self.c)[1] / 2

    @property
    def zero(self) -> int:
        return self.spec.parallelism.zero_stage

    @property
    def param_overlap(self) -> bool:
        """ZeRO 1/2's weight all-gather beside the next forward (``parallelism.overlap_param_gather``,
        :mod:`simcluster.plan.param_gather`), not after the optimizer step."""
        return self.spec.parallelism.overlap_param_gather and self.zero in (1, 2) and self.d > 1

    @property
    def zero_shard(self) -> int:
        """Data-parallel ranks a ZeRO shard group spans: ``zero_shard``, else the whole group (d)."""
        return self.spec.parallelism.zero_shard or self.d

    @property
    def shard_kind(self) -> str:
        """The group ZeRO's collectives run in: ``dp``, or ``zs`` with hybrid sharding (a smaller group)."""
        return "zs" if self.zero_shard < self.d else "dp"

    def replica_grad_bytes(self, s: int) -> float:
        """Hybrid sharding: the gradient shard of stage ``s`` one rank all-reduces with its replicas."""
        return self.stage_params(s) * self.grad_bytes / self.zero_shard if self.shard_kind == "zs" else 0.0

    def stage_layers(self, s: int) -> int:
        """Layers stage ``s`` holds over all its chunks."""
        return sum(len(self.chunks[c * self.p + s]) for c in range(self.v))

    def in_flight(self, s: int) -> int:
        """Microbatches whose activations stage ``s`` holds at its peak."""
        return microbatches_in_flight(self.schedule, self.p, self.m, self.v, s, warm_extra(self.spec))

    @cached_property
    def recomputed(self) -> frozenset[int] | None:
        """The layers full recompute runs again when only some are (``training.recompute_num_layers``: each
        chunk's first N, :mod:`simcluster.costs.partial_recompute`); None: the plan's recompute, every layer."""
        return recomputed_layers(self.chunks, self.spec.training) if partial(self.spec.training) else None

    def recomputed_on(self, s: int) -> int | None:
        """Layers of stage ``s`` full recompute runs again when only some are; None: all its layers."""
        return None if self.recomputed is None else sum(1 for i in self.layers_of(s) if i in self.recomputed)

    # -- units ----------------------------------------------------------------------------
    def layer_shape(self, layer: int) -> UnitShape:
        """The unit shape of ``layer``: the plan's, or without recompute (nor DeepSpeed's re-fetch after it, nor
        its split saved input) for a layer partial recompute keeps."""
        if self.recomputed is None or layer in self.recomputed:
            return self.shape
        return self._kept_shape

    @cached_property
    def _kept_shape(self) -> UnitShape:
        return self.shape.kept()

    def layer_unit_steps(self, kind: str, layer: int, mb: int = 0) -> tuple[Step, ...]:
        """The steps of ``layer`` in pass ``kind`` for microbatch ``mb`` (an MoE layer's depend on its
        router's draws for that microbatch)."""
        shape, blocks = self.layer_shape(layer), self.layer_blocks(layer)
        if self.moe is not None and self.moe.is_moe(layer):
            return self.moe.steps(kind, layer, mb, blocks, shape)
        return layer_steps(kind, blocks, shape)

    def layer_blocks(self, layer: int) -> Blocks:
        """The block costs of ``layer``: the plan's, or a full-attention layer's among windowed ones
        (``model.full_attention_every``: :mod:`simcluster.workload.sliding_window`)."""
        if self.full_blocks is not None and full_attention(self.spec.model, layer):
            return self.full_blocks
        return self.blocks

    def unit_steps(self, kind: str, k: int, mb: int = 0) -> list[tuple[int, Step]]:
        """(key, step) of pass ``kind`` (F, B, W) of chunk ``k`` for microbatch ``mb``.

        The key is the step's layer, or :data:`EMBEDDING_GRADS` (−1) / :data:`HEAD_GRADS` (−2)
        for the embedding's and the head's steps: the gradients' keys of :meth:`grads_produced`.
        """
        b, shape = self.blocks, self.shape
        emb = self.embedding_and_head and k == 0
        head = self.embedding_and_head and k == self.K - 1
        out: list[tuple[int, Step]] = []
        if self.shape.recv_gather and (k > 0 if kind == "F" else kind == "B" and k < self.K - 1):
            out.append((-1, recv_gather_step(kind)))  # the received activation (gradient), gathered first
        if kind == "F":
            gather = self.param_overlap and mb == 0  # the weights' all-gather beside the first forward

            def forward(key: int, steps: tuple[Step, ...], params: float = 0.0) -> list[tuple[int, Step]]:
                return [(key, s) for s in (gather_weights(list(steps), params) if gather else steps)]
            if emb:
                out += forward(EMBEDDING_GRADS, embedding_steps("F", b, shape), self.params.embedding)
            for layer in self.chunks[k]:
                out += forward(layer, self.layer_unit_steps("F", layer, mb))
            if head:
                out += forward(HEAD_GRADS, head_steps("F", b, shape), self.params.head)
        elif kind == "B":
            if head:
                n, w_s, w_f = self.deferred_wgrad
                out += [(HEAD_GRADS, s) for s in head_steps("B", b, shape, (w_s, w_f) if mb < n else None)]
            layers = [[(layer, s) for s in self.layer_unit_steps("B", layer, mb)] for layer in reversed(self.chunks[k])]
            out += backward_prefetch(layers) if shape.gather_prefetch else [st for steps in layers for st in steps]
            if emb:
                out += [(EMBEDDING_GRADS, s) for s in embedding_steps("B", b, shape)]
        else:
            for layer in reversed(self.chunks[k]):
                out += [(layer, s) for s in self.layer_unit_steps("W", layer, mb)]
        return out

    def grads_produced(self, s: int) -> list[tuple[int, float]]:
        """(gradient key, parameters per rank) of stage ``s`` in the order backward produces them.

        Keys: a layer's index, :data:`HEAD_GRADS` for the head, :data:`EMBEDDING_GRADS` for
        the embedding.
        """
        out: list[tuple[int, float]] = []
        late = self.deferred_wgrad[0] > 0  # the head's gradients come from the flush, after every backward
        for k in sorted((k for k in range(self.K) if k % self.p == s), reverse=True):
            if k == self.K - 1 and self.embedding_and_head and not late:
                out.append((HEAD_GRADS, self.params.head))
            out.extend((layer, self.layer_grad_params(layer)) for layer in reversed(self.chunks[k]))
            if k == 0 and self.embedding_and_head:
                out.append((EMBEDDING_GRADS, self.params.embedding))
        if late and s == self.p - 1:
            out.append((HEAD_GRADS, self.params.head))
        return out

    def layer_grad_params(self, layer: int) -> float:
        """Parameters of ``layer`` per rank whose gradients the data-parallel group reduces (an MoE
        layer's routed experts are reduced over the expert-data group instead)."""
        if self.moe is not None and self.moe.is_moe(layer):
            return self.moe.dense_params
        return self.params.layer

    def expert_params(self, s: int) -> float:
        """Routed-expert parameters one GPU of stage ``s`` holds (0 for a dense model)."""
        if self.moe is None:
            return 0.0
        return self.moe.routed_params * sum(self.moe.is_moe(i) for i in self.layers_of(s))

    def layers_of(self, s: int) -> list[int]:
        """The layers of stage ``s`` over all its chunks."""
        return [i for c in range(self.v) for i in self.chunks[c * self.p + s]]

    def memory(self, s: int) -> MemoryBreakdown:
        """Peak bytes one GPU of stage ``s`` holds (:func:`simcluster.costs.memory.stage_memory`)."""
        sp = self.spec
        if self.moe is not None:
            return moe_stage_memory(self.moe, self.layers_of(s), has_embedding=s == 0, has_logits=s == self.p - 1,
                                    in_flight=self.in_flight(s), recomputed=self.recomputed)
        return stage_memory(sp.model, sp.training, sp.parallelism, **self._stage_shape(s))

    def _stage_shape(self, s: int) -> dict[str, Any]:
        """What the memory model and the allocator replay need to know of stage ``s`` (its layers, ends, microbatches
        in flight and recomputed layers), as keyword arguments."""
        return dict(layers_on_stage=self.stage_layers(s), has_embedding=s == 0, has_logits=s == self.p - 1,
                    microbatches_in_flight=self.in_flight(s), recomputed_on_stage=self.recomputed_on(s))

    def allocator_reserve(self, s: int, headroom: float | None = None) -> Reserve:
        """What the caching allocator reserves on one GPU of stage ``s`` beyond its tensors' peak, and its cache
        flushes per step when the device leaves it only ``headroom`` bytes beside them
        (:func:`simcluster.costs.reserve.replay_reserve`; a mixture of experts' stage is replayed as its dense
        layers)."""
        sp = self.spec
        return replay_reserve(sp.model, sp.training, sp.parallelism, **self._stage_shape(s), headroom=headroom)

    def kv_grad_bytes(self, s: int) -> float:
        """Gradient bytes of stage ``s``'s K/V weights replicated over the tensor group (0 unless g < t)."""
        return self.stage_layers(s) * self.params.kv_replicated * self.grad_bytes

    def stage_params(self, s: int) -> float:
        """Parameters one GPU of stage ``s`` holds (tensor-parallel shard, before ZeRO)."""
        return sum(pc for _, pc in self.grads_produced(s))


def layer_params(spec: WorkloadSpec, t: int, p: int) -> Params:
    """:class:`Params` of a (tensor t, pipeline p) layout, from :mod:`simcluster.costs.params`."""
    m = spec.model
    return Params(P.layer_params(m, t), P.embedding_params(m, t),
                  P.output_params(m, t, shares_embedding_stage=(p == 1)) + P.mtp_params(m, t, shares_embedding_stage=(p == 1)),
                  m.vocab * m.hidden / t,
                  P.replicated_kv_params(m, t))


def activation_bytes(spec: WorkloadSpec, t: int, c: int, micro_batch: int, sp: bool,
                     sends: PipelineSends | None = None) -> tuple[float, float, float]:
    """(tensor-parallel buffer, pipeline send, context-ring K/V) bytes per microbatch and layer
    (``sends``: the layout's :func:`plan_sends`, computed here when not given)."""
    m = spec.model
    dt = DTYPE_BYTES[spec.training.precision]
    act = micro_batch * (m.seq_len // c) * m.hidden * dt
    g = m.kv_heads or m.heads
    if g < t:  # one replicated K/V head per rank (costs.params.kv_heads_per_rank)
        kv = 2 * micro_batch * m.seq_len * P.head_dim(m) * dt * P.kv_heads_per_rank(m, t)
    else:
        kv = 2 * micro_batch * m.seq_len * g * P.head_dim(m) * dt / t
    split = (sends or plan_sends(spec, spec.parallelism.schedule, sp)).split
    return act, act / t if split else act, kv


def compute_model(spec: WorkloadSpec, device: Device) -> ComputeModel:
    """The compute model lowering and the screen use: a training loop's kernel gaps."""
    tr = spec.training
    kernel = attention_kernel(tr.attention_kernel, framework(tr.framework), device.name)
    return ComputeModel(device, tr.precision, kernel_overhead_s=TRAINING_LOOP_KERNEL_GAP_S, attention_kernel=kernel,
                        fp8_recipe=tr.fp8_recipe)


def build_plan(spec: WorkloadSpec, device: Device | None = None, *, cm: ComputeModel | None = None,
               embedding_and_head: bool = True) -> Plan:
    """The plan of ``spec``'s layout (``device``: the cluster's unless given)."""
    par, tr = spec.parallelism, spec.training
    t, c, p, v = par.tensor, par.context, par.pipeline, par.virtual_stages
    d = par.data or 1
    grid = RankGrid(t, c, d, p)
    cm = cm or compute_model(spec, device or spec.cluster.device)
    ops = model_ops(spec.model, tr)
    stack = spec_stack(spec)
    blocks = model_blocks(ops, cm, t, c, par.sequence_parallel, tr.flash_attention, stack)
    full = model_blocks(model_ops(without_window(spec.model), tr), cm, t, c, par.sequence_parallel,
                        tr.flash_attention, stack) if full_layers(spec.model) else None
    sends = plan_sends(spec, par.schedule, par.sequence_parallel)
    parts, prefetch = zero3_gathers(spec, ops)
    refetch, share = zero3_refetch(spec, ops)
    params = layer_params(spec, t, p)
    root = fsdp_root(stack, cm, params.embedding, params.head, spec.model.tied_embeddings, p, d, par.zero_stage)
    shape = UnitShape(tp=t > 1, sp=par.sequence_parallel, cp=c > 1, recompute=tr.recompute,
                      **rerun_flags(spec.model, tr),
                      gather=par.zero_stage >= 3 and d > 1, reduce_grads=par.zero_stage >= 2 and d > 1,
                      split_w=par.schedule == "zero-bubble", parallel=spec.model.parallel_block,
                      parallel_inputs=spec.model.parallel_block_norms,
                      distribute=tr.distribute_saved_activations,
                      gather_parts=parts, gather_prefetch=prefetch, refetch_parts=refetch, refetch_share=share,
                      collective_prep_s=collective_prep_s(spec, par.zero_shard or d), fetch_sync=fetch_syncs(spec),
                      grad_parts=zero3_grad_parts(spec, ops),
                      persist_gather_s=zero3_persistent_gather_s(spec, par.zero_shard or d, ops),
                      recv_gather=t > 1 and p > 1 and sends.gather, root=root,
                      tp_overlap=par.tp_comm_overlap and t > 1,
                      tp_grad_overlap=t > 1 and (stack.tp_grad_overlap if par.tp_grad_overlap is None
                                                 else par.tp_grad_overlap))
    act, p2p, kv = activation_bytes(spec, t, c, tr.micro_batch, par.sequence_parallel, sends)
    plan = Plan(spec, grid, spec.num_microbatches, v, model_chunks(spec.model, p, v, par.stage_layers),
                par.schedule, blocks, shape, params, act, p2p, kv,
                *weight_bytes(tr.precision, stack), cm, embedding_and_head,
                moe=_moe_plan(spec, cm), full_blocks=full)
    object.__setattr__(plan, "sends", sends)  # the cached property, computed once above
    object.__setattr__(plan, "orders", stage_orders(plan))
    return plan


def _moe_plan(spec: WorkloadSpec, cm: ComputeModel) -> MoePlan | None:
    return None if spec.model.moe is None else build_moe_plan(spec, cm)


def stage_orders(plan: Plan) -> tuple[tuple[Unit, ...], ...]:
    """Every stage's order of passes; zero-bubble places its W passes by the passes' durations."""
    sched = SCHEDULES.get(plan.schedule)
    out = []
    for s in range(plan.p):
        if plan.shape.split_w:
            layer = plan.blocks.layer
            times = (layer.fwd_s, layer.bwd_s - layer.wgrad_s, layer.wgrad_s)
            out.append(tuple(sched(plan.p, plan.m, plan.v, s, times=times)))  # type: ignore[call-arg]
        elif warm_extra(plan.spec):  # Megatron-Core's merged 1F1B (simcluster.plan.ep_overlap)
            out.append(tuple(sched(plan.p, plan.m, plan.v, s, warm_extra=warm_extra(plan.spec))))  # type: ignore
        else:
            out.append(tuple(sched(plan.p, plan.m, plan.v, s)))
    return tuple(out)

