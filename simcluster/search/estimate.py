"""The analytical tier: an iteration's time from closed forms, in microseconds per layout.

Per layer and microbatch on one rank the plan declares the steps of its forward (F),
backward (B) and, under ZB-H1, weight-gradient (W) passes (:mod:`simcluster.plan.steps`,
the steps lowering turns into tasks); here they are summed in closed form: compute steps
and the tensor-parallel collectives that block the compute stream add up (Shoeybi et al.
2019 §3; Korthikanti et al. 2022 §4.2.2), the context ring's K/V exchange runs beside the
attention block, which costs max(compute, exchange) (Liu et al. 2023), and recompute
(Narayanan et al. 2021 §3.5; Korthikanti et al. 2022 §5) comes with its own collectives.
ZeRO-2's per-layer, per-microbatch reduce-scatter runs beside the compute on the
data-parallel stream, so a layer costs at least what that stream moves; under ZeRO-3 the
weight gathers are prefetched (in backward issued ahead of the previous layer's
reduce-scatter: FSDP's backward prefetch, Zhao et al. 2023 §3.3) a block ahead of need, as
lowering issues them: the next layer's gather runs beside what follows a layer's second-to-last
block (:func:`simcluster.plan.zero3.prefetch_window`), the reduce-scatter beside the next layer's
compute up to there, and B costs at least its gather and reduce-scatter (Rajbhandari et al. 2020).
A backward unit's first layer was gathered during the forward and has no reduce-scatter ahead of
it: it costs less by that lag, at most one gather, at most what hides it (the forward's last
window and the head). Under ZB-H1 the B pass gathers and the W pass reduce-scatters: the W pass
spans its wgrads beside its reduce-scatters, and that span fills the bubbles. Communication
beside the compute slows it as the engine does (:mod:`simcluster.costs.contention`, Lee et al.
2025): c seconds of compute beside m of communication take max(c + s·m, m) (:func:`simcluster.search.pass_time.beside`),
for userbuffers' and the context ring's collectives, ZeRO's gathers and reduce-scatters, the
overlapped gradient reduction and the parameter gather beside the next forward. Under ZeRO-3 a
unit's first gather has no layer of its unit to hide behind: it queues on the data-parallel stream
behind the previous backward unit's last reduce-scatter, and those two layers run serially at each
of a stage's m·v − 1 boundaries after a backward unit (FSDP's root unit or not). A stage's unit
X_s = F_s + B_s sums its layers, plus the embedding on the first stage and the logits on the
last, and the pipeline takes

    T_pipe = m·max_s X_s + (Σ_s X_s − max_s X_s) / v

(equal stages: (m + (p − 1)/v)·X, the bubble (p − 1)/(v·m + p − 1) of Narayanan et al. 2021
eqs. 1–2; v = 1 for GPipe and 1F1B). ZB-H1 fills the bubbles with weight-gradient passes, so
each non-bottleneck stage adds X_s − 2·W_s (Qi et al. 2023 §3.1); with fewer microbatches than
stages too few W passes are there to fill them: the bottleneck's wait out the drain and the first
stage's last one ends the iteration, m·(X_max − W_max) + Σ_others (X_s − W_s) + W_0, whichever is longer. Interleaved chunks of
unequal size make the fill and drain at least (p − 1) largest chunks. On top: the pipeline
sends on the fill and drain path, 2(p − 1) of b·s·h/(c·t) (interleaved 2(p·v − 1): the first
microbatch's forward and the last one's backward each cross all p·v chunks); the first
stage's data-parallel gradient reduction (buckets of ``grad_bucket_bytes``; with
``overlap_grad_reduce`` only what outlasts the last microbatch's backward is exposed;
all-reduce, reduce-scatter under ZeRO), the tied-embedding all-reduce, its optimizer step
and, under ZeRO, the all-gather of the updated weights. Memory comes from
:mod:`simcluster.search.memory`. No term is fitted to simulator output.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from simcluster.costs.contention import OVERLAP_COMPUTE_SLOWDOWN
from simcluster.costs.deferred_wgrad import deferred_count
from simcluster.plan.stack_bytes import plan_sends, spec_stack
from simcluster.plan.zero3 import (collective_prep_s, fetch_syncs, prefetch_window, zero3_gathers, zero3_grad_parts,
                                   zero3_persistent_gather_s, zero3_refetch)
from simcluster.costs.moe import moe_layers
from simcluster.plan.ep_overlap import applies, hidden_seconds, steady_pairs
from simcluster.plan.moe import MoePlan, build_moe_plan
from simcluster.plan.costing import Blocks
from simcluster.plan.fsdp_root import RootUnit, fsdp_root
from simcluster.plan.steps import Step, UnitShape, embedding_steps, head_steps, layer_steps, rerun_flags
from simcluster.search.grad_sync import after_backward
from simcluster.search.pass_time import PassTime, beside
from simcluster.search.costs import Costs
from simcluster.search.layout import Layout
from simcluster.search.memory import MemoryModel, chunk_spread, layout_spec, stage_layers
from simcluster.spec.workload import WorkloadSpec
from simcluster.workload.sliding_window import full_layers
from simcluster.topology.topology import Topology


#: The parts of an iteration, as the simulator's per-stage breakdown names them.
PARTS = ("compute", "recompute", "exposed_tp_comm", "exposed_pp_comm", "exposed_dp_comm", "bubble", "optimizer",
         "host_wait")


@dataclass(frozen=True)
class Estimate:
    """The analytical tier's figures for one layout (seconds, bytes)."""

    iteration_time_s: float
    peak_memory_bytes: float
    fits_in_memory: bool
    compute: float = 0.0
    recompute: float = 0.0
    exposed_tp_comm: float = 0.0
    exposed_pp_comm: float = 0.0
    exposed_dp_comm: float = 0.0
    bubble: float = 0.0
    optimizer: float = 0.0
    host_wait: float = 0.0

    def parts(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in PARTS}


class Group:
    """Everything about a layout but its recompute and ZeRO stage, computed once for all of them."""

    __slots__ = ("est", "t", "c", "p", "d", "mb", "v", "schedule", "sp", "m", "b", "counts", "n0", "nl",
                 "nmid", "chunk", "spread", "send", "blocking", "recv_gather", "e", "et", "moe")

    def __init__(self, est: "Estimator", t: int, c: int, p: int, d: int, mb: int, v: int, schedule: str, sp: bool,
                 e: int = 1, et: int | None = None):
        self.est = est
        self.e, self.et = e, et
        self.moe = est.moe_plan(t, c, d, mb, sp, e, et, schedule) if est.spec.model.moe is not None else None
        self.t, self.c, self.p, self.d, self.mb, self.v, self.schedule, self.sp = t, c, p, d, mb, v, schedule, sp
        self.m = est.global_batch // (mb * d)
        self.b = est.costs.blocks(t, c, mb, sp)
        counts = self.counts = stage_layers(est.layers, p, v, est.spec.model.mtp_layers)
        self.n0, self.nl = counts[0], counts[-1]
        self.nmid = max(counts[1:-1], default=0)
        self.chunk, self.spread = chunk_spread(est.layers, p, v) if v > 1 else (0, 0.0)
        self.send = est.costs.time("send", "send", t, c, d, p, self.b.p2p_bytes) if p > 1 else 0.0
        sends = plan_sends(est.spec, schedule, sp)
        self.blocking = sends.blocking  # a send holds its stage (DeepSpeed's engine, Megatron's 1F1B)
        # scatter-gathered sends: the receiving unit first all-gathers the activation over the tensor group
        self.recv_gather = est.costs.time("tp", "all_gather", t, c, d, p, self.b.act_bytes) \
            if p > 1 and t > 1 and sends.gather else 0.0

    def peak_memory(self, rc: str, zero: int) -> float:
        return self.est.memory.peak(self.t, self.c, self.d, self.p, self.v, self.m, self.schedule, self.mb,
                                    self.sp, rc, zero, self.e, self.et)

    def _steps(self, shape: UnitShape, full: bool = False) -> tuple[tuple[Step, ...], ...]:
        """(F, B, W, embedding F and B, head F and B) steps of one layer (cached per shape; W empty but
        under ZB-H1); ``full``: of a full-attention layer among windowed ones."""
        key = (self.t, self.c, self.mb, self.sp, shape, full)
        hit = self.est.steps.get(key)
        if hit is None:
            blocks = self._blocks(full)
            hit = (layer_steps("F", blocks, shape), layer_steps("B", blocks, shape),
                   layer_steps("W", blocks, shape) if shape.split_w else (),
                   embedding_steps("F", blocks, shape) + embedding_steps("B", blocks, shape),
                   head_steps("F", blocks, shape) + head_steps("B", blocks, shape))
            self.est.steps[key] = hit
        return hit

    def _blocks(self, full: bool) -> Blocks:
        """The layout's block costs: a full-attention layer's (``full``, where the model mixes kinds) or the plan's."""
        return self.b.full if full and self.b.full is not None else self.b.blocks

    def _pass(self, steps: tuple[Step, ...], window: bool) -> tuple[PassTime, PassTime]:
        """A pass's steps summed, and (``window``) those a prefetched gather of the next layer runs beside
        (:func:`simcluster.plan.zero3.prefetch_window`; else nothing)."""
        return (PassTime().add(steps, self._coll),
                PassTime().add(prefetch_window(steps), self._coll) if window else PassTime())

    def _coll(self, st: Step) -> float:
        """Seconds of one collective step of this layout, uncontended."""
        costs, b, t, c, d, p = self.est.costs, self.b, self.t, self.c, self.d, self.p
        if st.what == "tp":
            return costs.time("tp", st.op, t, c, d, p, b.act_bytes * st.share)
        if st.what == "ring":
            return costs.time("cp", st.op, t, c, d, p, b.kv_bytes)
        if st.what == "a2a" and self.moe is not None:
            return costs.ep_time(t, c, d, self.moe.etp, self.moe.ep, st.nbytes, share=self.moe.dedup)
        nbytes = (st.params or b.params.layer) * (costs.dt * st.share if st.what == "gather" else costs.grad_bytes)
        return st.parts * costs.time(costs.shard_kind(d), st.op, t, c, d, p, nbytes / st.parts)

    def shape(self, rc: str, zero: int) -> UnitShape:
        """The unit shape the plan builds for this layout (:func:`simcluster.plan.plan.build_plan`), but for what
        the screen prices apart: scatter-gathered pipeline receives (``recv_gather``) and DeepSpeed's per-step
        persistent gather (``persist_gather_s``)."""
        est, d = self.est, self.d
        (parts, prefetch), refetch = est.zero3(self.t, rc)
        return UnitShape(tp=self.t > 1, sp=self.sp, cp=self.c > 1, recompute=rc, gather=zero >= 3 and d > 1,
                          reduce_grads=zero >= 2 and d > 1, split_w=self.schedule == "zero-bubble",
                          parallel=est.spec.model.parallel_block,
                          parallel_inputs=est.spec.model.parallel_block_norms,
                          distribute=est.spec.training.distribute_saved_activations, gather_parts=parts,
                          gather_prefetch=prefetch, refetch_parts=refetch[0], refetch_share=refetch[1],
                          collective_prep_s=collective_prep_s(est.spec, est.spec.parallelism.zero_shard or d, zero),
                          fetch_sync=fetch_syncs(est.spec, zero),
                          grad_parts=est.grad_parts if zero >= 3 else 1,
                          root=self._root(zero, d), tp_overlap=est.tp_overlap and self.t > 1,
                          tp_grad_overlap=self.t > 1 and est.tp_grad_overlap,
                          **rerun_flags(est.spec.model, est.spec.training))

    def _passes(self, shape: UnitShape, rc: str, window: bool) -> tuple[PassTime, ...]:
        """(F, its prefetch window, B, its prefetch window, W) of one layer: a kept layer's backward blended in under
        partial recompute, every layer the mean of the dense and the MoE ones, and of the windowed and the
        full-attention ones (``model.full_attention_every``), each kind weighted by its count."""
        out = self._kind_passes(shape, rc, window, False)
        if self.b.full is None:
            return out
        w = full_layers(self.est.spec.model) / self.est.layers
        full = self._kind_passes(shape, rc, window, True)
        return tuple(a.blend(b, w) for a, b in zip(out, full))

    def _kind_passes(self, shape: UnitShape, rc: str, window: bool, full: bool) -> tuple[PassTime, ...]:
        """:meth:`_passes` of the windowed layers (``full``: of the full-attention ones, :meth:`_steps`)."""
        est = self.est
        blocks = self._blocks(full)
        steps = self._steps(shape, full)
        f, ft = self._pass(steps[0], window)
        bw, bt = self._pass(steps[1], window)
        wg = PassTime().add(steps[2], self._coll)  # ZB-H1's W pass (its reduce-scatter with it)
        n_rc = est.spec.training.recompute_num_layers if rc == "full" else None
        if n_rc is not None:  # partial recompute (costs.partial_recompute): the kept layers' backward blended in
            chunk = est.layers / (self.p * self.v)
            w = max(0.0, 1 - min(n_rc, chunk) / chunk)
            kept = self._steps(shape.kept(), full)
            kb, kt = self._pass(kept[1], window)
            bw, bt, wg = bw.blend(kb, w), bt.blend(kt, w), wg.blend(PassTime().add(kept[2], self._coll), w)
        if self.moe is not None:  # every layer as the layers' mean: dense and MoE weighted by their count
            first = next(i for i in range(est.layers) if self.moe.is_moe(i))
            w = est.moe_layers / est.layers
            mf, mft = self._pass(self.moe.steps("F", first, 0, blocks, shape), window)
            mb, mbt = self._pass(self.moe.steps("B", first, 0, blocks, shape), window)
            mw = PassTime().add(self.moe.steps("W", first, 0, blocks, shape), self._coll) if shape.split_w \
                else PassTime()
            if est.spec.parallelism.moe_a2a_overlap and applies(self.e, self.p, self.schedule, rc,
                                                                3 if shape.gather else 0):
                mf, mb = self._merged(first, blocks, shape, mf, mb)
            f, ft, bw, bt, wg = f.blend(mf, w), ft.blend(mft, w), bw.blend(mb, w), bt.blend(mbt, w), wg.blend(mw, w)
        return f, ft, bw, bt, wg

    def _merged(self, layer: int, blocks: Blocks, shape: UnitShape, f: PassTime,
                b: PassTime) -> tuple[PassTime, PassTime]:
        """An MoE layer's forward and backward less what Megatron-Core's merged 1F1B hides of their all-to-alls
        (:func:`simcluster.plan.ep_overlap.hidden_seconds`, in stage 0's share of merged units), taken off the
        blocking time, the backward's first."""
        assert self.moe is not None
        units = self.m * self.v
        share = steady_pairs(self.schedule, self.p, self.m, self.v, 0) / units
        hidden = hidden_seconds(self.moe, layer, blocks, shape, f.serial + b.serial, self._coll,
                                self.est.spec.parallelism.delay_wgrad_compute, share, OVERLAP_COMPUTE_SLOWDOWN)
        from_b = min(hidden, b.tp)
        return replace(f, tp=f.tp - min(hidden - from_b, f.tp)), replace(b, tp=b.tp - from_b)

    def _layer_times(self, shape: UnitShape, f: PassTime, ft: PassTime, bb: PassTime, bw: PassTime, bt: PassTime,
                     wg: PassTime, head: PassTime) -> tuple[float, float, float, float]:
        """(forward, backward, W pass, what a backward unit's first layer saves) seconds of one layer, with ZeRO's
        gathers and reduce-scatters placed as the plan issues them; ``bb`` the B pass alone, ``bw`` with its W."""
        f_layer, b_layer = f.serial, bw.serial
        dp_rs = bw.reduce
        unit_save = 0.0  # what a backward unit's first layer costs less than the others (prefetched ZeRO-3)
        w_layer = self.b.blocks.layer.wgrad_s  # what a layer's W pass takes (ZB-H1)
        # communication beside the compute slows it (beside(): the engine's contention)
        if shape.gather and shape.fetch_sync:  # DeepSpeed: each fetch syncs the device, the reduce-scatters first
            f_layer = f_layer + f.gather if not shape.gather_prefetch else beside(f_layer, f.gather, f.tp)
            b_layer = (b_layer + bw.gather if not shape.gather_prefetch else beside(b_layer, bw.gather, bw.tp)) + dp_rs
        elif shape.gather and not shape.gather_prefetch:  # fetched when needed: the compute waits for them
            f_layer += f.gather
            b_layer = bw.gather + beside(b_layer, dp_rs, bw.tp)
        elif shape.gather:  # prefetched gathers, issued when the layer's second-to-last block ends (in backward
            # ahead of its reduce-scatter, the plan's backward prefetch), run beside what follows it (plan.zero3.
            # prefetch_window); the reduce-scatter beside the next layer's compute up to there; the stream may lag
            f_layer = f_layer - ft.serial + beside(ft.serial, f.gather, ft.tp)
            if shape.split_w:  # ZB-H1: the B pass gathers, the W pass's reduce-scatters run beside its wgrads
                w_layer = beside(wg.serial, wg.reduce, wg.tp)
                b_layer = bb.serial - bt.serial + beside(bt.serial, bb.gather, bt.tp) + w_layer
            else:  # a B unit's first layer has no reduce-scatter of a layer before it on the stream, and its
                # gather was issued in the forward: it saves that reduce-scatter's lag, at most one gather
                pre, side = b_layer - bt.serial, beside(bt.serial, bw.gather, bt.tp)
                b_layer = max(beside(pre, dp_rs, bw.tp - bt.tp) + side, bw.gather + dp_rs)
                unit_save = min(b_layer - pre - side, bw.gather, ft.serial + head.serial)
        elif shape.reduce_grads:  # the reduce-scatters run beside the compute: hidden unless the stream lags
            b_layer = max(b_layer + OVERLAP_COMPUTE_SLOWDOWN * dp_rs, dp_rs - f_layer)
        return f_layer, b_layer, w_layer, unit_save

    def _pipeline(self, shape: UnitShape, x_layer: float, w_layer: float, save: float, first: float,
                  last: float) -> tuple[float, float, float]:
        """(the pipeline's compute span, its exposed sends, stage 0's unit) seconds: the bottleneck stage's m units,
        the fill and drain, the blocking sends; ``x_layer`` a layer's F and B, ``save`` per unit, ``first`` and
        ``last`` the embedding's and the head's."""
        est, p, m, v = self.est, self.p, self.m, self.v
        x0 = self.n0 * x_layer - save + first + (last if p == 1 else 0.0)
        stages = [(x0, self.n0)]
        if p > 1:
            stages.append((self.nl * x_layer - save + last, self.nl))
        if p > 2:
            stages.append((self.nmid * x_layer - save, self.nmid))
        x_max, n_max = max(stages)
        fill = est.layers * x_layer - p * save + first + last - x_max
        if shape.split_w:  # the other stages' weight-gradient passes fill their bubbles (Qi et al. 2023 §3.1),
            # unless there are fewer microbatches than stages: then the bottleneck's W passes wait out the drain and
            # the first stage's last W pass ends the iteration, m·(X_max − W_max) + Σ_others (X_s − W_s) + W_0
            rest = w_layer * (est.layers - n_max)
            fill = max(fill - 2 * rest, fill - rest + w_layer * (self.n0 - m * n_max), 0.0)
        fill /= v
        if v > 1 and self.spread:  # stages alike but chunks not: the fill and drain wait for the
            fill = max(fill, (p - 1) * self.chunk * x_layer)  # largest chunk on every stage
        pipe = m * (x_max + 2 * v * ((self.send if self.blocking else 0.0) + self.recv_gather)) + fill
        pp = (2 * (p * v - 1) if v > 1 else 2 * (p - 1)) * self.send
        return pipe, pp, x0

    def time(self, rc: str, zero: int) -> tuple[float, ...]:
        """(iteration, compute, recompute, tp, pp, dp, bubble, optimizer, host wait) seconds, stage 0's view."""
        est, blocks = self.est, self.b.blocks
        p, m, v = self.p, self.m, self.v
        shape = self.shape(rc, zero)
        steps = self._steps(shape)
        # prefetched ZeRO-3 gathers run beside the part of the previous layer after its second-to-last block
        window = shape.gather and shape.gather_prefetch and not shape.fetch_sync
        f, ft, bw, bt, wg = self._passes(shape, rc, window)
        bb, bw = bw, bw.plus(wg)  # the B pass alone, and with its W pass
        emb = PassTime().add(steps[3], self._coll)
        head = PassTime().add(steps[4], self._coll)
        f_layer, b_layer, w_layer, unit_save = self._layer_times(shape, f, ft, bb, bw, bt, wg, head)
        dp_rs = bw.reduce
        x_layer = f_layer + b_layer
        first, last = emb.serial + emb.gather + emb.reduce, head.serial  # FSDP's root unit: both exposed
        # the output layer's weight gradient of the deferred microbatches runs in the last stage's flush
        last -= deferred_count(est.spec.parallelism, m, p) / m * blocks.head.wgrad_s  # (costs.deferred_wgrad)
        # a unit of one layer has no gather beside it: the boundary term below charges that layer
        save = v * unit_save if est.layers >= 2 * p * v else 0.0
        pipe, pp, x0 = self._pipeline(shape, x_layer, w_layer, save, first, last)
        dp, opt, host_after = after_backward(self, zero, x0, f_layer, dp_rs)
        if shape.gather and shape.gather_prefetch and not shape.fetch_sync:
            # each unit's first gather has no layer of its own unit to hide behind and queues on the data-parallel
            # stream behind the previous backward unit's last reduce-scatter: at each of the stage's m·v − 1
            # boundaries after a backward unit, its last layer, that reduce-scatter, the gather and the next
            # unit's first layer run one after another, beyond what the per-layer terms charged for the two
            # layers (FSDP's root unit gathers and reduces before and after them: charged in ``first``)
            serial = bw.serial + dp_rs + f.gather + f.serial
            dp += (m * v - 1) * max(0.0, serial - b_layer - f_layer)
        lead = est.spec.training.data_loading_wait  # the step's batch loaded after a sync, the GPU idle
        total = pipe + pp + dp + opt + host_after + lead
        n = m * self.n0
        compute = n * (f.compute + bw.compute) + m * (emb.compute + (head.compute if p == 1 else 0.0))
        recompute = n * bw.recompute
        tp = n * (f.tp + bw.tp) + m * emb.tp
        host = n * (f.host + bw.host) + host_after + lead
        bubble = max(0.0, total - compute - recompute - tp - pp - dp - opt - host)
        return total, compute, recompute, tp, pp, dp, bubble, opt, host

    def _root(self, zero: int, d: int) -> RootUnit:
        """FSDP's root unit of this layout (:mod:`simcluster.plan.fsdp_root`)."""
        costs, params = self.est.costs, self.b.params_one_stage
        return fsdp_root(costs.stack, costs.cm, params.embedding, params.head, self.est.tied, self.p, d, zero)


class Estimator:
    """Analytical estimates of layouts of one workload (model, batch, precision, cluster)."""

    def __init__(self, spec: WorkloadSpec, topo: Topology):
        self.spec = spec
        self.costs = Costs(spec, topo)
        self.memory = MemoryModel(spec)
        self.layers = spec.model.layers
        self.global_batch = spec.training.global_batch
        self.bucket = float(spec.parallelism.grad_bucket_bytes)
        stack = spec_stack(spec)
        self.overlap = spec.parallelism.overlap_grad_reduce and stack.overlap_grad_reduce
        self.param_overlap = spec.parallelism.overlap_param_gather  # ZeRO 1/2 (simcluster.plan.param_gather)
        self.tp_overlap = spec.parallelism.tp_comm_overlap  # userbuffers (simcluster.plan.tp_overlap)
        self.tp_grad_overlap = (stack.tp_grad_overlap if spec.parallelism.tp_grad_overlap is None
                                else spec.parallelism.tp_grad_overlap)  # (simcluster.plan.tp_grad_overlap)
        self.ops = self.costs.ops(spec.training.micro_batch)  # module weights: the same at every micro batch
        self.grad_parts = zero3_grad_parts(spec, self.ops, zero=3)  # reduce-scatters per layer under ZeRO-3
        self._zero3: dict[tuple[int, str], tuple[tuple[int, bool], tuple[int, float]]] = {}
        self._persist: dict[tuple[int, int], float] = {}
        self.tied = bool(spec.model.tied_embeddings)
        self.steps: dict[tuple[int, int, int, bool, UnitShape, bool], tuple[tuple[Step, ...], ...]] = {}
        self.moe_layers = moe_layers(spec.model) if spec.model.moe is not None else 0
        self._moe: dict[tuple[int, int, int, int, bool, int, int | None, str], MoePlan] = {}

    def zero3(self, t: int, rc: str) -> tuple[tuple[int, bool], tuple[int, float]]:
        """ZeRO-3's (gathers per layer, prefetched) and (modules re-fetched, their share) at tensor degree ``t`` and
        recompute ``rc`` (cached; :mod:`simcluster.plan.zero3`)."""
        if (t, rc) not in self._zero3:
            self._zero3[t, rc] = (zero3_gathers(self.spec, self.ops, t), zero3_refetch(self.spec, self.ops, t, rc))
        return self._zero3[t, rc]

    def persist_gather_s(self, ranks: int, t: int) -> float:
        """Host seconds per layer of DeepSpeed's per-step persistent-tensor gather over ``ranks`` at tensor degree
        ``t`` (cached; ZeRO-3 layouts only ask)."""
        if (ranks, t) not in self._persist:
            self._persist[ranks, t] = zero3_persistent_gather_s(self.spec, ranks, self.ops, t, zero=3)
        return self._persist[ranks, t]

    def group(self, t: int, c: int, p: int, d: int, mb: int, v: int, schedule: str, sp: bool, e: int = 1,
              et: int | None = None) -> Group:
        return Group(self, t, c, p, d, mb, v, schedule, sp, e, et)

    def moe_plan(self, t: int, c: int, d: int, mb: int, sp: bool, e: int, et: int | None, schedule: str) -> MoePlan:
        """The plan's MoE costs for one layout (cached): the same steps lowering runs."""
        key = (t, c, d, mb, sp, e, et, schedule)
        hit = self._moe.get(key)
        if hit is None:
            hit = self._moe[key] = build_moe_plan(layout_spec(self.spec, t=t, c=c, d=d, mb=mb, sp=sp, e=e, et=et,
                                                              schedule=schedule), self.costs.cm)
        return hit

    def estimate(self, layout: Layout) -> Estimate:
        """Every figure of one layout (the screening loop uses :class:`Group` directly)."""
        g = self.group(layout.tensor, layout.context, layout.pipeline, layout.data, layout.micro_batch,
                       layout.virtual_stages, layout.schedule, layout.sequence_parallel, layout.expert,
                       layout.expert_tensor)
        peak = g.peak_memory(layout.recompute, layout.zero_stage)
        total, *parts = g.time(layout.recompute, layout.zero_stage)
        return Estimate(total, peak, self.memory.fits(peak), *parts)
