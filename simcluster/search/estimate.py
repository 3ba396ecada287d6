"""The analytical tier: an iteration's time from closed forms, in microseconds per layout.

Per layer and microbatch on one rank (costs from :mod:`simcluster.search.costs`):

    F = attn_f + mlp_f + TP        TP = 2 all-reduces of b·(s/c)·h, or with sequence
                                   parallelism 2 all-gathers + 2 reduce-scatters
                                   (Shoeybi et al. 2019 §3; Korthikanti et al. 2022 §4.2.2);
                                   they block the compute stream, as in Megatron
    B = attn_b + mlp_b + TP + R    R: full recompute F again (Narayanan et al. 2021 §3.5),
                                   selective the attention core (Korthikanti et al. 2022 §5)

With context parallelism the attention half costs max(compute, K/V ring step) (the ring
runs beside it, Liu et al. 2023). ZeRO-2's per-layer, per-microbatch reduce-scatter runs
beside the compute on the data-parallel stream, so a layer costs at least what that stream
moves; under ZeRO-3 a layer's all-gather waits, in that stream's order, behind the previous
layer's reduce-scatter, which waits for its backward: F gains a gather, B a gather and a
reduce-scatter (Rajbhandari et al. 2020 as lowering schedules it). A stage's unit
X_s = F_s + B_s sums its layers, plus the embedding on the first stage and the logits on the
last, and the pipeline takes

    T_pipe = m·max_s X_s + (Σ_s X_s − max_s X_s) / v

(equal stages: (m + (p − 1)/v)·X, the bubble (p − 1)/(v·m + p − 1) of Narayanan et al. 2021
eqs. 1–2; v = 1 for GPipe and 1F1B). ZB-H1 fills the bubbles with weight-gradient passes, so
each non-bottleneck stage adds X_s − 2·W_s (Qi et al. 2023 §3.1). Interleaved chunks of
unequal size on stages of equal size make the fill and drain at least (p − 1) largest chunks
and cost :data:`UNEVEN_CHUNKS` more per microbatch. On top: the pipeline sends on the fill and
drain path, 2(p − 1) of b·s·h/(c·t) (interleaved p·v − 1); the first stage's data-parallel
gradient reduction (buckets of ``grad_bucket_bytes``; with ``overlap_grad_reduce`` only what
outlasts the last microbatch's backward is exposed; all-reduce, reduce-scatter under ZeRO),
the tied-embedding all-reduce, its optimizer step and, under ZeRO, the all-gather of the
updated weights. Memory comes from :mod:`simcluster.search.memory`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simcluster.search.costs import Costs
from simcluster.search.layout import Layout
from simcluster.search.memory import MemoryModel, chunk_spread, stage_layers

#: Interleaved 1F1B on stages of equal layers but chunks of unequal ones (say 1 and 2 layers) runs
#: slower than its bubble formula: by about this share of a layer's forward and backward per
#: microbatch, times ((largest − smallest) / smallest chunk)². Set from the simulator, where the
#: share seen beyond the largest-chunk fill is 0.1–0.3 (GPT-3 on 4 and 8 stages, the 1T model on
#: 16, 24- to 40-layer models on 4 and 8): a coarse term for an effect the closed forms miss.
UNEVEN_CHUNKS = 0.15

#: ZeRO-2's reduce-scatters, run while the compute goes on, slow the tensor-parallel collectives
#: that share a GPU's NVLink with them (when data-parallel peers sit in the same node) by about this
#: share of their time, times the share of the time the data-parallel stream is busy. Set from
#: the simulator (GPT-3 with tensor 2 and 4 on 1,024 A100s: 0.15–0.25).
SHARED_LINKS = 0.2

#: The parts of an iteration, as the simulator's per-stage breakdown names them.
PARTS = ("compute", "recompute", "exposed_tp_comm", "exposed_pp_comm", "exposed_dp_comm", "bubble", "optimizer")


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

    def parts(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in PARTS}


class Group:
    """Everything about a layout but its recompute and ZeRO stage, computed once for all of them."""

    __slots__ = ("est", "t", "c", "p", "d", "mb", "v", "schedule", "sp", "m", "b", "counts", "n0", "nl",
                 "nmid", "chunk", "spread", "dp_in_node", "tp_layer", "tp_first", "tp_last", "attn_f", "attn_b", "send")

    def __init__(self, est: "Estimator", t: int, c: int, p: int, d: int, mb: int, v: int, schedule: str, sp: bool):
        self.est = est
        self.t, self.c, self.p, self.d, self.mb, self.v, self.schedule, self.sp = t, c, p, d, mb, v, schedule, sp
        self.m = est.global_batch // (mb * d)
        costs = est.costs
        b = self.b = costs.blocks(t, c, mb, sp)
        counts = self.counts = stage_layers(est.layers, p, v)
        self.n0, self.nl = counts[0], counts[-1]
        self.nmid = max(counts[1:-1], default=0)
        self.chunk, self.spread = chunk_spread(est.layers, p, v) if v > 1 else (0, 0.0)
        tp = lambda op: costs.time("tp", op, t, c, d, p, b.act_bytes)  # noqa: E731
        if t == 1:
            self.tp_layer = self.tp_first = self.tp_last = 0.0
        elif sp:  # per layer pass: AG + RS around each half; embedding RS (+ AG back); head AG (+ RS back)
            ag, rs = tp("all_gather"), tp("reduce_scatter")
            self.tp_layer, self.tp_first, self.tp_last = 2 * (ag + rs), rs + ag, ag + rs
        else:
            ar = tp("all_reduce")
            self.tp_layer, self.tp_first, self.tp_last = 2 * ar, ar, 0.0
        if c > 1:  # the K/V ring beside the attention half
            self.attn_f = max(b.attn.fwd_s, costs.time("cp", "all_gather", t, c, d, p, b.kv_bytes))
            self.attn_b = max(b.attn.bwd_s, costs.time("cp", "reduce_scatter", t, c, d, p, b.kv_bytes))
        else:
            self.attn_f, self.attn_b = b.attn.fwd_s, b.attn.bwd_s
        self.send = costs.time("send", "send", t, c, d, p, b.p2p_bytes) if p > 1 else 0.0
        self.dp_in_node = d > 1 and t * c < costs.topo.gpus_per_node  # data-parallel peers inside a node

    def peak_memory(self, rc: str, zero: int) -> float:
        return self.est.memory.peak(self.t, self.c, self.d, self.p, self.v, self.m, self.schedule, self.mb,
                                    self.sp, rc, zero)

    def time(self, rc: str, zero: int) -> tuple[float, ...]:
        """(iteration, compute, recompute, tp, pp, dp, bubble, optimizer) seconds, stage 0's view."""
        est, b, costs = self.est, self.b, self.est.costs
        t, c, d, p, m, v = self.t, self.c, self.d, self.p, self.m, self.v
        fwd = self.attn_f + b.mlp.fwd_s
        bwd = self.attn_b + b.mlp.bwd_s
        rec = fwd if rc == "full" else (b.core_rc_s if rc == "selective" else 0.0)
        rec_tp = self.tp_layer if rc == "full" else 0.0
        f_layer = fwd + self.tp_layer
        b_layer = bwd + self.tp_layer + rec + rec_tp
        dp_rs = dp_ag = 0.0
        if zero >= 2 and d > 1:
            dp_rs = costs.time("dp", "reduce_scatter", t, c, d, p, b.layer_params * costs.grad_bytes)
            if zero == 3:  # in the data-parallel stream's order a layer's gather waits behind the
                # previous layer's reduce-scatter, which waits for its backward: all in series
                dp_ag = costs.time("dp", "all_gather", t, c, d, p, b.layer_params * costs.dt)
                f_layer += dp_ag
                b_layer += dp_ag + dp_rs
            else:  # the reduce-scatters run beside the compute: hidden unless the stream lags
                if self.dp_in_node:  # and share the GPU's links with the tensor-parallel collectives
                    b_layer += SHARED_LINKS * min(1.0, dp_rs / (f_layer + b_layer)) * (2 * self.tp_layer + rec_tp)
                b_layer = max(b_layer, dp_rs - f_layer)
        x_layer = f_layer + b_layer
        first = b.emb.fwd_s + b.emb.bwd_s + self.tp_first
        last = b.head.fwd_s + b.head.bwd_s + self.tp_last
        x0 = self.n0 * x_layer + first + (last if p == 1 else 0.0)
        stages = [(x0, self.n0)]
        if p > 1:
            stages.append((self.nl * x_layer + last, self.nl))
        if p > 2:
            stages.append((self.nmid * x_layer, self.nmid))
        x_max, n_max = max(stages)
        fill = est.layers * x_layer + first + last - x_max
        if self.schedule == "zero-bubble":  # the other stages' weight-gradient passes fill their bubbles
            fill = max(0.0, fill - 2 * (b.attn.wgrad_s + b.mlp.wgrad_s) * (est.layers - n_max))
        fill /= v
        if v > 1 and self.spread:  # stages alike but chunks not: the fill and drain wait for the
            # largest chunk on every stage, and every microbatch waits a little at chunk boundaries
            fill = max(fill, (p - 1) * self.chunk * x_layer) + UNEVEN_CHUNKS * self.spread * m * x_layer
        pipe = m * x_max + fill
        pp = (p * v - 1 if v > 1 else 2 * (p - 1)) * self.send
        dp, opt = self._after_backward(rc, zero, x0, f_layer, b_layer, dp_rs)
        total = pipe + pp + dp + opt
        n = m * self.n0
        compute = n * (fwd + bwd) + m * (b.emb.fwd_s + b.emb.bwd_s + (b.head.fwd_s + b.head.bwd_s if p == 1 else 0.0))
        recompute = n * rec
        tp = n * (2 * self.tp_layer + rec_tp) + m * self.tp_first
        bubble = max(0.0, total - compute - recompute - tp - pp - dp - opt)
        return total, compute, recompute, tp, pp, dp, bubble, opt

    def _after_backward(self, rc: str, zero: int, x0: float, f_layer: float, b_layer: float,
                        dp_rs: float) -> tuple[float, float]:
        """(exposed data-parallel communication, optimizer) of the first stage."""
        est, b, costs = self.est, self.b, self.est.costs
        t, c, d, p = self.t, self.c, self.d, self.p
        params = self.n0 * b.layer_params + b.emb_params + (b.head_params if p == 1 else 0.0)
        dp = 0.0
        if d > 1:
            if zero >= 2:
                dp = dp_rs
            else:
                op = "all_reduce" if zero == 0 else "reduce_scatter"
                gb = costs.grad_bytes
                layer = b.layer_params * gb
                per_bucket = max(1, -(-est.bucket // layer))  # layers per bucket
                buckets, rest = divmod(self.n0, per_bucket)
                sync = buckets * costs.time("dp", op, t, c, d, p, per_bucket * layer)
                tail = costs.time("dp", op, t, c, d, p, rest * layer + (b.emb_params + (b.head_params if p == 1 else 0.0)) * gb)
                sync += tail
                if est.overlap:
                    dp = max(sync - (x0 - f_layer * self.n0), tail)
                else:
                    dp = sync
            if zero >= 1:
                dp += costs.time("dp", "all_gather", t, c, d, p, params * costs.dt)
        if p > 1 and est.tied:
            dp += costs.time("tied", "all_reduce", t, c, d, p, b.emb_params * costs.grad_bytes)
        opt = costs.optimizer_s(params / (d if zero >= 1 else 1))
        return dp, opt


class Estimator:
    """Analytical estimates of layouts of one workload (model, batch, precision, cluster)."""

    def __init__(self, spec: Any, topo: Any):
        self.spec = spec
        self.costs = Costs(spec, topo)
        self.memory = MemoryModel(spec)
        self.layers = spec.model.layers
        self.global_batch = spec.training.global_batch
        self.bucket = float(getattr(spec.parallelism, "grad_bucket_bytes", 25e6))
        self.overlap = bool(getattr(spec.parallelism, "overlap_grad_reduce", True))
        self.tied = bool(spec.model.tied_embeddings)

    def group(self, t: int, c: int, p: int, d: int, mb: int, v: int, schedule: str, sp: bool) -> Group:
        return Group(self, t, c, p, d, mb, v, schedule, sp)

    def estimate(self, layout: Layout) -> Estimate:
        """Every figure of one layout (the screening loop uses :class:`Group` directly)."""
        g = self.group(layout.tensor, layout.context, layout.pipeline, layout.data, layout.micro_batch,
                       layout.virtual_stages, layout.schedule, layout.sequence_parallel)
        peak = g.peak_memory(layout.recompute, layout.zero_stage)
        total, *parts = g.time(layout.recompute, layout.zero_stage)
        return Estimate(total, peak, self.memory.fits(peak), *parts)
