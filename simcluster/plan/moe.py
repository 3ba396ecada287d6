"""Mixture of experts in the plan: the expert grid, an MoE layer's steps and their costs.

Expert grid (Megatron-Core ``parallel_state``, expert ``RankGenerator``): the t·c·d ranks of
a pipeline stage are regrouped, expert-tensor (etp) innermost, then expert (ep), then
expert-data (edp = t·c·d / (etp·ep))::

    local rank = etp_i + etp·(ep_i + ep·edp_i)

so an expert-model-parallel group (the etp·ep ranks that exchange tokens) is consecutive, and
the expert-data group (the ranks holding the same experts, which reduce their gradients) is
strided by etp·ep. Dense weights are reduced over the whole data-parallel group.

Per rank and microbatch, τ = b·s/(c·t) tokens enter the dispatch (the tensor group's tokens
split over its ranks, as Megatron-Core's all-to-all dispatcher does), so the group routes
N = etp·ep·τ tokens, A = N·k copies. Expert-parallel rank j computes the R_j copies routed to
its E/ep experts (capped at the capacity) with each expert's weights split etp ways:

- dispatch and combine: all-to-all over the etp·ep ranks, S = τ·k·etp·h·dtype bytes per rank
  (NCCL's convention: the send buffer; a direct all-to-all puts S/n on each pair), scaled by
  R_max/R̄ when the router is skewed, so that the busiest rank's receive sets the time; with
  ``node_limited`` routing (DeepSeek-V3 §2.1.2 and §3.2.2: a token crosses InfiniBand once per
  node, at most M nodes, then NVLink forwards it) S is scaled by min(1, min(M, nodes)/k) over two or more nodes
  (not with ``router_groups``, Megatron-Core's group-limited routing, whose alltoall dispatcher sends every copy);
- sort (``alltoall`` dispatcher with E/ep > 1; Megatron-Core ``MoEAlltoAllTokenDispatcher.dispatch_postprocess``
  and ``combine_preprocess``): the copies arrive grouped by source rank and are sorted by local expert before the
  GEMMs (``sort_chunks_by_idxs``; with capacity padding a ``transpose(0, 1).contiguous()``) and back before the
  combine, each a copy of the R_max·h received elements (read and write); the backward copies their gradients
  alike. DeepEP and HybridEP expand their deduplicated tokens straight into expert order (the ``permute`` below);
- expert biases (``model.moe.expert_bias``, GPT-OSS): fc2's bias added weighted by the probabilities in eager
  PyTorch, expert by expert (:func:`simcluster.costs.moe.weighted_bias_bytes` per element of the R_max·h output);
- experts: one grouped GEMM per matrix over the E/ep local experts, each at the per-expert
  shape M = R_max/(E/ep), N = n_up/etp or h, K = h or f_e/etp, its body time from the device's
  GEMM curve (:meth:`simcluster.costs.compute.ComputeModel.gemm_body_time`: its calibration and
  sustained clock) *at that per-expert shape* (which carries the small-M inefficiency measured
  on H100), times E/ep, plus one launch. The
  slowest rank's R_max sets the time of every rank (the combine waits for it); FLOPs count
  the mean R̄ (active FLOPs, the MoE papers' MFU). The step is split in two: the experts at
  the mean load, then what the slowest rank adds (phase ``imbalance``: the time lost to
  imbalance, no FLOPs), so reports show it apart.
- before dispatch: ln2, router GEMM, softmax/top-k, permute and the shared experts; after
  combine: unpermute, the weighted sum and the residual (:mod:`simcluster.workload.moe`).

With a uniform router and capacity factor 1 (or dropless), R_max = R̄ = A/ep: the
balanced closed form.

DualPipe (``parallelism.schedule: dualpipe``, DeepSeek-V3 §3.2.1, Fig. 4) hides a chunk's
all-to-all under the compute of a paired chunk of another microbatch. Approximated per layer:
its dispatch and combine are issued on the expert stream when the layer starts and its last
compute step waits for them, so a layer takes max(its compute but the last step, its
all-to-all) + the last step, with the all-to-all still contending for the links.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from simcluster.collectives.dedup import Dedup, dedup_shares
from simcluster.costs import moe as M
from simcluster.costs.compute import ComputeModel
from simcluster.plan.costing import BlockCost, Blocks, block_cost, rerun_cost
from simcluster.plan.grid import RankGrid
from simcluster.plan.stack_bytes import spec_stack
from simcluster.plan.steps import Step, UnitShape, tp_block, layer_steps
from simcluster.spec.workload import WorkloadSpec
from simcluster.workload.moe import moe_ops
from simcluster.workload.ops import DTYPE_BYTES


# -- the expert grid --------------------------------------------------------------------------
def optimizer_units(dense: float, expert: float, shard: int, edp: int, zero: int) -> float:
    """Parameters an optimizer step costs, in dense-shard units: under ZeRO ≥ 1 it steps ``dense``/``shard`` dense
    and ``expert``/``edp`` routed-expert parameters (the experts' states sharded over their expert-data group), so
    the step is priced as ``dense + expert · shard / edp``; without ZeRO both are whole."""
    return dense + expert * shard / (edp if zero >= 1 else 1)


def expert_group(grid: RankGrid, etp: int, ep: int, rank: int) -> tuple[int, ...]:
    """The etp·ep consecutive ranks that exchange tokens with ``rank`` (dispatch and combine)."""
    n = etp * ep
    base = rank - (rank % grid.per_stage) % n
    return tuple(range(base, base + n))


def expert_data_group(grid: RankGrid, etp: int, ep: int, rank: int) -> tuple[int, ...]:
    """The ranks holding the same experts as ``rank`` (strided by etp·ep): its expert gradients' group."""
    n = etp * ep
    stage0 = rank - rank % grid.per_stage
    return tuple(stage0 + (rank - stage0) % n + n * k for k in range(grid.per_stage // n))


def expert_mirrors(grid: RankGrid, etp: int, ep: int) -> tuple[int, ...]:
    """Offsets of the other expert groups of a stage (rank symmetry)."""
    n = etp * ep
    return tuple(n * k for k in range(1, grid.per_stage // n))


def expert_data_mirrors(grid: RankGrid, etp: int, ep: int) -> tuple[int, ...]:
    """Offsets of the other expert-data groups of a stage (rank symmetry)."""
    return tuple(range(1, etp * ep))


# -- one MoE layer ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Load:
    """One layer and microbatch: copies the busiest and the mean expert-parallel rank compute."""

    r_max: float
    r_mean: float


@dataclass(frozen=True)
class MoePlan:
    """What the plan knows of the mixture of experts (see the module docstring)."""

    spec: WorkloadSpec = field(repr=False)
    cm: ComputeModel = field(repr=False)
    etp: int
    ep: int
    edp: int
    local: int  # experts per rank: E/ep
    assignments: float  # A = etp·ep·τ·k copies routed in a group per microbatch
    capacity: float | None  # copies per expert at most (None: dropless)
    pre: BlockCost
    post: BlockCost
    rerun: "MoeReruns"
    a2a_bytes: float  # S of the balanced dispatch, per rank
    dense_params: float  # per MoE layer and rank: attention, norms, router, shared experts (t-split)
    routed_params: float  # per MoE layer and rank: its E/ep experts over etp
    up: int  # fc1 columns of one expert (2·f_e for SwiGLU)
    width: int  # f_e
    dedup: Dedup | None = None  # deduplicating dispatcher (DeepEP, HybridEP): its shares of S (collectives.dedup)
    _cost: dict[tuple[float, float], BlockCost] = field(default_factory=dict, repr=False, compare=False)
    _steps: dict[tuple[str, float, float, UnitShape], tuple[Step, ...]] = field(default_factory=dict, repr=False,
                                                                                compare=False)

    @property
    def sorts(self) -> bool:
        """Whether the received copies are sorted by local expert and back: the alltoall dispatcher with E/ep > 1."""
        return self.spec.parallelism.moe_dispatcher == "alltoall" and self.local > 1

    def is_moe(self, layer: int) -> bool:
        return M.is_moe_layer(self.spec.model, layer)

    @property
    def balanced(self) -> float:
        """R̄ of a balanced router: A/ep."""
        return self.assignments / self.ep

    def load(self, layer: int, microbatch: int) -> Load:
        """The copies the busiest and the mean rank compute in ``layer`` for ``microbatch``."""
        moe = M.moe_of(self.spec.model)
        loads = M.expert_loads(moe.load_imbalance, moe.experts, self.assignments, layer, microbatch)
        ranks = M.rank_loads(loads, self.ep, self.capacity)
        return Load(float(ranks.max()), float(ranks.mean()))

    def report(self, microbatches: int) -> dict[str, object]:
        """details.json's ``moe``: the layout, the dispatch (dispatcher, S per rank of the balanced router, whether the
        copies are sorted by local expert, a deduplicating dispatcher's InfiniBand and NVLink shares of S), and per MoE
        layer the router's load over the microbatches (busiest over mean expert-parallel rank, dropped share) and each
        expert's mean share of it."""
        model = self.spec.model
        moe = M.moe_of(model)
        rows: list[dict[str, object]] = []
        share = np.zeros(moe.experts)
        for layer in (i for i in range(model.layers + model.mtp_layers) if self.is_moe(i)):
            ratio, dropped = [], []
            for mb in range(microbatches):
                loads = M.expert_loads(moe.load_imbalance, moe.experts, self.assignments, layer, mb)
                ranks = M.rank_loads(loads, self.ep, self.capacity)
                ratio.append(float(ranks.max() / ranks.mean()))
                dropped.append(1.0 - float(ranks.sum()) / self.assignments)
                share += loads / self.assignments
            rows.append({"layer": layer, "busiest_over_mean": max(ratio), "mean_busiest_over_mean": float(np.mean(ratio)),
                         "dropped_fraction": float(np.mean(dropped))})
        total = share.sum()
        par = self.spec.parallelism
        dispatch = {"dispatcher": par.moe_dispatcher, "bytes_per_rank": self.a2a_bytes,
                    "sorted_by_local_expert": self.sorts, "infiniband_share": self.dedup.ib if self.dedup else None,
                    "nvlink_share": self.dedup.nvl if self.dedup else None}
        return {"experts": moe.experts, "top_k": moe.top_k, "expert": self.ep, "expert_tensor": self.etp,
                "expert_data": self.edp, "experts_per_rank": self.local, "capacity_tokens": self.capacity,
                "dispatch": dispatch,
                "expert_load_share": [float(x) for x in (share / total if total else share)], "layers": rows}

    def experts(self, load: Load) -> BlockCost:
        """The routed experts' grouped GEMMs and activation on one rank (the busiest rank's time)."""
        key = (round(load.r_max, 6), round(load.r_mean, 6))
        hit = self._cost.get(key)
        if hit is not None:
            return hit
        cm, n, h, dt = self.cm, self.local, self.spec.model.hidden, DTYPE_BYTES[self.spec.training.precision]
        m = max(1, math.ceil(load.r_max / n))
        up, f = max(1, self.up // self.etp), max(1, self.width // self.etp)

        once = cm.fp8_per_tensor  # Transformer Engine: each tensor cast once, both layouts (costs.compute)
        tr = self.spec.training
        w = 1.0 / self.spec.num_microbatches if tr.fp8_weight_cache else 1.0

        def grouped(mm: int, nn: int, kk: int) -> float:  # E/ep GEMMs of one shape in one kernel
            # the device's GEMM curve (its calibration and sustained clock) at the per-expert shape; at FP8 the
            # FP8 grouped GEMM (DeepGEMM) after quantizing both operands of every expert (blockwise), or on
            # operands cast once before (per-tensor recipes, charged below)
            body = cm.kernel_time(n * cm.gemm_body_time(mm, nn, kk))
            if not cm.fp8 or once:
                return body
            return body + cm.quantize_time(n * mm * kk) + cm.quantize_time(n * kk * nn)

        def cast(elements: float) -> float:  # per-tensor FP8: one row- and column-wise cast
            return cm.quantize_time(n * elements, layouts=2) if once else 0.0

        unfused = not spec_stack(self.spec).fused_kernels  # Megatron's fusions off (costs.frameworks)
        act_b = M.weighted_activation_bytes(up > f, dt, not unfused)[1]
        act = self.activation_s(load)
        # alltoall dispatcher, E/ep > 1: the received copies sorted by local expert and back (sort_chunks_by_idxs,
        # or the padded layout's transpose-contiguous), each a copy of them; the backward copies their gradients
        sort = 2 * cm.memory_time(2 * dt * n * m * h, "copy") if self.sorts else 0.0
        # expert biases: fc2's added weighted by the probabilities, expert by expert (costs.moe.weighted_bias_bytes)
        per = M.weighted_bias_bytes(dt) if M.moe_of(self.spec.model).expert_bias else None
        bias_f = cm.memory_time(per[0] * n * m * h, "elementwise") if per else 0.0
        bias_b = cm.memory_time(per[1] * n * m * h, "elementwise") if per else 0.0
        fwd_extra, bwd_extra = sort + bias_f, sort + bias_b
        fwd = (fwd_extra + grouped(m, up, h) + grouped(m, h, f) + act
               + cast(m * h) + cast(m * f) + w * (cast(h * up) + cast(f * h)))  # X, the activation, the weights
        wgrad = grouped(up, h, m) + grouped(h, f, m)
        # fp8 (DeepSeek-V3 §3.3.4): the SwiGLU's output is not stored but recomputed before its backward (recompute_modules'
        # moe_act is its own recompute step otherwise: steps)
        act_bwd = (cm.memory_time(act_b * n * m * f, "elementwise") if unfused else 2 * act) + (act if cm.fp8 else 0.0)
        bwd = (bwd_extra + grouped(m, h, up) + grouped(m, f, h) + wgrad + act_bwd
               + cast(m * h) + cast(m * up))  # dY of the down and of the up projection
        flops = 2.0 * load.r_mean * h * (up + f)
        cost = BlockCost(fwd, bwd, flops, 2 * flops, wgrad, flops)
        self._cost[key] = cost
        return cost

    def activation_s(self, load: Load) -> float:
        """The busiest rank's weighted expert activation forward (E/ep experts of ⌈R_max/(E/ep)⌉ rows, f_e/etp wide)."""
        n, dt = self.local, DTYPE_BYTES[self.spec.training.precision]
        m = max(1, math.ceil(load.r_max / n))
        up, f = max(1, self.up // self.etp), max(1, self.width // self.etp)
        act_f = M.weighted_activation_bytes(up > f, dt, spec_stack(self.spec).fused_kernels)[0]
        return self.cm.memory_time(act_f * n * m * f, "elementwise")

    def a2a(self, load: Load) -> float:
        """Dispatch (= combine) bytes per rank: S scaled by the busiest rank's share."""
        return self.a2a_bytes * load.r_max / self.balanced

    def steps(self, kind: str, layer: int, microbatch: int, blocks: Blocks, shape: UnitShape) -> tuple[Step, ...]:
        """The steps of MoE layer ``layer`` in pass ``kind`` for ``microbatch``: the dense layer's steps
        with the MLP block's compute replaced by pre, dispatch, experts, combine, post."""
        load = self.load(layer, microbatch)
        key = (kind, round(load.r_max, 6), round(load.r_mean, 6), shape)
        hit = self._steps.get(key)
        if hit is not None:
            return hit
        exp, nbytes = self.experts(load), self.a2a(load)
        mean = self.experts(Load(load.r_mean, load.r_mean))
        lost = BlockCost(exp.fwd_s - mean.fwd_s, exp.bwd_s - mean.bwd_s, 0.0, 0.0, exp.wgrad_s - mean.wgrad_s, 0.0)
        parts = (self.pre, exp, self.post)
        mlp = BlockCost(*(sum(getattr(c, a) for c in parts) for a in ("fwd_s", "bwd_s", "fwd_flops", "bwd_flops",
                                                                         "wgrad_s", "wgrad_flops")))
        at_mean = replace(exp, fwd_s=mean.fwd_s, bwd_s=mean.bwd_s, wgrad_s=mean.wgrad_s)
        selective = shape.recompute == "selective"
        # Megatron-Core's moe recompute reruns the MoE module, not the pre-MLP norm before it nor the residual after
        rc_parts = (self.rerun.pre, at_mean, self.rerun.post) if selective else (self.pre, at_mean, self.post)
        shape = replace(shape, mlp_rc=selective and self.rerun.moe)
        reruns = self.rerun.steps(shape) if kind == "B" and selective else []
        merged = self.spec.parallelism.moe_a2a_overlap
        out: list[Step] = []
        for st in layer_steps(kind, replace(blocks, mlp=mlp), shape):
            if reruns and not merged and st.name in ("rc.mlp", "bwd.mlp"):  # the norm's and shared experts' first
                out += reruns
                reruns = []
            if st.what == "compute" and st.name in ("fwd.mlp", "rc.mlp", "bwd.mlp"):
                out += _split(st, rc_parts if st.name == "rc.mlp" else (self.pre, at_mean, self.post), nbytes,
                              shape.split_w, lost)
            else:
                out.append(st)
        if reruns:  # the merged 1F1B: a hook on the experts' output (fine_grained_callables.py), after the combine's
            at = next(i for i, s in enumerate(out) if s.name == "bwd.combine") + 1  # backward
            out[at:at] = reruns
        if kind == "B" and selective and self.rerun.act and not self.cm.fp8:  # moe_act: before the experts' backward
            at = next(i for i, s in enumerate(out) if s.name == "bwd.experts")
            out.insert(at, Step("compute", "rc.moe_act", "recompute", self.activation_s(load)))
        if self.spec.parallelism.schedule == "dualpipe":
            out = _overlapped(out)
        steps = tuple(out)
        self._steps[key] = steps
        return steps


@dataclass(frozen=True)
class MoeReruns:
    """What Megatron-Core's selective ``recompute_modules`` run again in an MoE layer's backward
    (``training.recompute_modules``; Megatron-LM ``transformer_layer.py``, ``moe/moe_layer.py``, ``moe/experts.py``):
    ``layernorm`` the pre-MLP norm (its output dropped after the forward), ``moe_act`` the experts' activation (just
    before the experts' backward, at the busiest rank's rows), ``shared_experts`` the shared experts' MLP
    (``tensor_parallel.checkpoint`` around it, its tensor collectives with it), ``moe`` the whole MoE module —
    router, permutation, shared experts, dispatch, experts, combine, unpermutation — from its input (``pre`` and
    ``post`` here are its parts without the norm before it and the residual after it). The norm's and the shared
    experts' reruns come before the MoE backward; under the merged 1F1B (``moe_a2a_overlap``) after the combine's
    backward, where Megatron-Core's fine-grained schedule hooks the norm's rerun on the experts' output."""

    pre: BlockCost  # the module's part before the dispatch, without the pre-MLP norm
    post: BlockCost  # ... after the combine, without the residual add
    moe: bool = False
    act: bool = False  # moe_act: the experts' activation (its output dropped; FP8 reruns it in the backward anyway)
    norm_s: float = 0.0  # layernorm: the pre-MLP norm's forward
    shared_s: float = 0.0  # shared_experts: the shared experts' forward
    shared_flops: float = 0.0

    def steps(self, shape: UnitShape) -> list[Step]:
        """The reruns before the MoE backward (phase recompute); none that ``moe`` already covers."""
        out = [Step("compute", "rc.pre_mlp_norm", "recompute", self.norm_s)] if self.norm_s > 0 else []
        if self.shared_s > 0 and not self.moe:
            out += tp_block(shape, "rc.shared_experts", self.shared_s, self.shared_flops, "recompute", False, True)
        return out


def _split(st: Step, parts: tuple[BlockCost, BlockCost, BlockCost], nbytes: float, split_w: bool,
           lost: BlockCost) -> list[Step]:
    """An MLP block's compute step as pre, dispatch, experts (+ imbalance), combine, post (backward: reversed)."""
    pfx, _ = st.name.split(".")
    back = pfx == "bwd"
    names = ("moe_in", "experts", "moe_out")
    order = (2, 1, 0) if back else (0, 1, 2)
    a2a = ("combine", "dispatch") if back else ("dispatch", "combine")
    out: list[Step] = []
    for n, i in enumerate(order):
        c = parts[i]
        if back:
            secs, flops = (c.bwd_s - c.wgrad_s, c.bwd_flops - c.wgrad_flops) if split_w else (c.bwd_s, c.bwd_flops)
        else:
            secs, flops = c.fwd_s, c.fwd_flops
        out.append(Step("compute", f"{pfx}.{names[i]}", st.phase, secs, flops, block=st.block and n == 0,
                        waits_params=st.waits_params and n == 0, grads=st.grads and n == 2))
        if i == 1:
            wait = (lost.bwd_s - (lost.wgrad_s if split_w else 0.0)) if back else lost.fwd_s
            if wait > 1e-12:
                out.append(Step("compute", f"{pfx}.imbalance", "imbalance", wait))
        if n < 2:
            out.append(Step("a2a", f"{pfx}.{a2a[n]}", st.phase, op="all_to_all", tag=f"{pfx}.{a2a[n]}",
                            nbytes=nbytes))
    return out


def _overlapped(steps: list[Step]) -> list[Step]:
    """DualPipe: the layer's all-to-alls first, beside the compute; its last compute waits for them."""
    a2a = [replace(s, overlap=True) for s in steps if s.what == "a2a"]
    rest = [s for s in steps if s.what != "a2a"]
    if not a2a:
        return steps
    last = max(i for i, s in enumerate(rest) if s.what == "compute")
    rest[last] = replace(rest[last], overlap=True)
    return a2a + rest


def build_moe_plan(spec: WorkloadSpec, cm: ComputeModel) -> MoePlan:
    """The :class:`MoePlan` of ``spec`` (a model with ``model.moe``)."""
    m, par, tr = spec.model, spec.parallelism, spec.training
    moe = M.moe_of(m)
    t, c, d = par.tensor, par.context, par.data or 1
    etp, ep = par.expert_tensor or t, par.expert
    edp = t * c * d // (etp * ep)
    ops = moe_ops(m, tr)
    sp = par.sequence_parallel and t > 1
    pre = block_cost(list(ops.pre), cm, t, c, sp, tr.flash_attention)
    post = block_cost(list(ops.post), cm, t, c, sp, tr.flash_attention)
    mods = tr.recomputed_modules
    shared = [o for o in ops.pre if o.name.startswith("shared_")]
    shared_s, shared_flops = rerun_cost(shared, cm, t, c, sp, tr.flash_attention) if "shared_experts" in mods \
        else (0.0, 0.0)
    rerun = MoeReruns(block_cost([o for o in ops.pre if o.name != "ln2"], cm, t, c, sp, tr.flash_attention),
                      block_cost([o for o in ops.post if o.name != "residual2"], cm, t, c, sp, tr.flash_attention),
                      "moe" in mods, "moe_act" in mods,
                      rerun_cost([o for o in ops.pre if o.name == "ln2"], cm, t, c, sp, tr.flash_attention)[0]
                      if "layernorm" in mods else 0.0, shared_s, shared_flops)
    tau = ops.tokens / (c * t)
    assignments = etp * ep * tau * moe.top_k
    capacity = None if moe.capacity_factor is None else moe.capacity_factor * assignments / moe.experts
    dt = DTYPE_BYTES[tr.precision]
    nbytes = tau * moe.top_k * etp * m.hidden * dt
    nodes = -(-etp * ep // spec.cluster.gpus_per_node)
    limit = moe.node_limit if moe.router == "node_limited" else None
    dedup = None
    if par.moe_dispatcher != "alltoall":  # a token once per remote node and per rank (collectives.dedup)
        dedup = dedup_shares(moe.experts, moe.top_k, ep, nodes, limit, moe.router_groups)
    elif limit is not None and moe.router_groups is None and nodes > 1:  # DeepSeek-V3's dispatch (module docstring)
        nbytes *= min(1.0, min(limit, nodes) / moe.top_k)
    return MoePlan(spec, cm, etp, ep, edp, moe.experts // ep, assignments, capacity, pre, post, rerun, nbytes,
                   M.moe_dense_params(m, t), M.routed_params_per_rank(m, ep, etp), ops.up_cols, ops.width, dedup)
