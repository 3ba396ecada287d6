"""Lower an operator graph and a parallel layout into one :class:`TaskGraph`.

Fidelity. ``full`` simulates every GPU. ``symmetric`` (what ``auto`` picks for
a homogeneous cluster) simulates one representative per pipeline stage
(tp = cp = dp = 0): the stage's tensor-, context- and data-parallel ranks do
identical work, so its collectives are planned on the real topology for the
real group, and the identical groups that run the same collective at the same
moment load the shared links through ``mirror_offsets``. Every simulated rank
stands for ``TaskGraph.multiplicity[rank]`` GPUs. In symmetric mode a unit whose
tensor-parallel traffic no other transfer can meet (every microbatch but the
last, whose backward feeds the data-parallel buckets, when the tensor group's
links carry no pipeline traffic) is fused into one task whose parts restore
the per-layer timeline.

Per stage and per microbatch the schedule's forward (F) and backward (B) units
become a chain: per layer an attention block and an MLP block on the compute
stream, each followed (or, with sequence parallelism, surrounded) by a
tensor-parallel collective on the ``tp`` stream (Shoeybi et al. 2019 §3: two
all-reduces per layer forward, two backward); recompute blocks before a layer's
backward (``full``: the whole layer, Narayanan et al. 2021 §3.5; ``selective``:
the attention core, Korthikanti et al. 2022 §5); with context parallelism
the ring exchange of key/value blocks on the ``cp`` stream beside the
attention block (Liu et al. 2023, Ring Attention: each step's transfer hides
behind the previous block's attention, so the block costs about
max(compute, exchange)); pipeline sends of
b·s·h/t activations (scatter/gather, Narayanan et al. 2021 §4.1) on the
``pp-fwd``/``pp-bwd`` streams; data-parallel gradient reduction in buckets on
the ``dp`` stream (:mod:`simcluster.lowering.grad_sync`); the optimizer step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

from simcluster.collectives import plan_collective
from simcluster.collectives.transfer import Transfer
from simcluster.costs.compute import ComputeModel
from simcluster.lowering.chain import Group, Labels, PartsChain, TaskChain
from simcluster.lowering.costing import TRAINING_LOOP_KERNEL_GAP_S, block_cost, op_time, rank_params
from simcluster.lowering.grad_sync import add_grad_sync, grad_bytes_per_param
from simcluster.lowering.grid import RankGrid
from simcluster.lowering.partition import partition_layers
from simcluster.lowering.schedules import SCHEDULES, peak_in_flight
from simcluster.lowering.slowdown import compute_slowdowns
from simcluster.lowering.task import TaskGraph
from simcluster.workload.graph import DTYPE_BYTES, ops_in_order


@dataclass(frozen=True)
class LoweringOptions:
    """Switches for closed-form tests and fidelity (defaults: a real run)."""

    ideal_network: bool = False  # every transfer is free
    include_optimizer: bool = True
    include_embedding_head: bool = True
    fidelity: str | None = None  # None: the spec's ``fidelity`` (auto | symmetric | full)
    fuse: bool = True  # fuse units whose timing nothing can disturb (symmetric only)


def resolve_fidelity(spec: Any, options: LoweringOptions) -> str:
    """``symmetric`` or ``full``; ``auto`` is symmetric while every rank is identical."""
    f = options.fidelity or getattr(spec, "fidelity", "auto") or "auto"
    if f == "auto":
        return "full" if getattr(spec.cluster, "heterogeneous", False) else "symmetric"
    if f == "symmetric" and getattr(spec.cluster, "heterogeneous", False):
        raise ValueError("fidelity symmetric cannot simulate stragglers or degraded links")
    return f


def lower(graph: nx.DiGraph, spec: Any, topo: Any, cm: ComputeModel | None = None,
          options: LoweringOptions = LoweringOptions()) -> TaskGraph:
    """Build the task graph of one training iteration."""
    return Lowerer(graph, spec, topo, cm, options).build()


class Lowerer:
    """Holds the layout, the per-block costs and the plans; :meth:`build` makes the graph."""

    def __init__(self, graph: nx.DiGraph, spec: Any, topo: Any, cm: ComputeModel | None,
                 options: LoweringOptions):
        self.spec, self.topo, self.opt = spec, topo, options
        par, tr, model = spec.parallelism, spec.training, spec.model
        self.t, self.c, self.d, self.p = par.tensor, par.context, par.data, par.pipeline
        self.v, self.m, self.sp = par.virtual_stages, spec.num_microbatches, par.sequence_parallel
        self.K = self.p * self.v
        self.grid = RankGrid(self.t, self.c, self.d, self.p)
        self.full = resolve_fidelity(spec, options) == "full"
        self.chunks = partition_layers(model.layers, self.p, self.v, par.stage_layers)
        self.cm = cm or ComputeModel(topo.device, tr.precision, kernel_overhead_s=TRAINING_LOOP_KERNEL_GAP_S)
        self.schedule = SCHEDULES.get(par.schedule)
        self.tg = TaskGraph()
        self.dt = DTYPE_BYTES[tr.precision]

        ops = ops_in_order(graph)
        layer0 = [o for o in ops if o.layer == 0]
        attn_ops = [o for o in layer0 if o.block == "attn"]
        mlp_ops = [o for o in layer0 if o.block == "mlp"]
        emb_ops = [o for o in ops if o.block == "embedding"]
        head_ops = [o for o in ops if o.block == "head"]
        args = (self.cm, self.t, self.c, self.sp, tr.flash_attention)
        self.attn, self.mlp = block_cost(attn_ops, *args), block_cost(mlp_ops, *args)
        self.emb, self.head = block_cost(emb_ops, *args), block_cost(head_ops, *args)
        core = [o for o in attn_ops if o.kind == "attention"]
        self.core_rc_s = sum(op_time(o, *args, False) for o in core)
        self.core_rc_flops = sum(o.fwd_flops for o in core) / (self.t * self.c)
        self.layer_params = rank_params(attn_ops + mlp_ops, self.t)
        self.emb_params = rank_params(emb_ops, self.t)
        self.head_params = rank_params(head_ops, self.t)

        b, s, h = tr.micro_batch, model.seq_len, model.hidden
        self.act_bytes = b * (s // self.c) * h * self.dt  # tensor-parallel collective buffer
        self.p2p_bytes = self.act_bytes / self.t
        kv_dim = model.kv_heads * (h // model.heads)
        self.kv_bytes = 2 * b * s * kv_dim * self.dt / self.t  # K and V gathered over context ranks
        self.recompute = tr.recompute
        self._templates: dict[tuple[str, int], tuple] = {}
        self._plans: dict[tuple, tuple[tuple[int, ...], tuple[Transfer, ...]]] = {}
        self.split_w = par.schedule == "zero-bubble"
        self.grad_bytes = grad_bytes_per_param(tr.precision)
        self.last_rs: dict[int, int] = {}  # ZeRO >= 2: each rank's last gradient reduce-scatter
        self.slow = compute_slowdowns(spec, topo, attn_ops + mlp_ops, args[1:], self.grid.size)

    # -- who is simulated -------------------------------------------------------------------
    def members(self, s: int) -> list[tuple[int, ...]]:
        """Chains of stage s: each a tuple of simulated ranks that run one unit together."""
        g = self.grid
        if not self.full:
            return [(g.rank(pp=s),)]
        return [tuple(g.rank(tp, cp, dp, s) for cp in range(self.c) for tp in range(self.t))
                for dp in range(self.d)]

    def groups(self, kind: str, members: tuple[int, ...]) -> list[Group]:
        """The collectives of kind ``tp``/``cp``/``dp`` that ``members`` take part in."""
        g = self.grid
        of = {"tp": g.tp_group, "cp": g.cp_group, "dp": g.dp_group}[kind]
        if not self.full:
            mirrors = {"tp": g.tp_mirror_offsets, "cp": g.cp_mirror_offsets,
                       "dp": g.dp_mirror_offsets}[kind]()
            return [((members[0],), of(members[0]), mirrors)]
        seen: dict[tuple[int, ...], None] = {}
        for r in members:
            seen.setdefault(of(r))
        return [(grp, grp, ()) for grp in seen]

    def plan(self, op: str, group: tuple[int, ...], nbytes: float,
             mirrors: tuple[int, ...]) -> tuple[Transfer, ...]:
        if self.opt.ideal_network or len(group) < 2 or nbytes <= 0 or len(set(group)) < 2:
            return ()
        key = (op, group, nbytes, id(mirrors))  # mirror tuples come cached from the grid
        hit = self._plans.get(key)
        if hit is not None and hit[0] is mirrors:
            return hit[1]
        colls = getattr(self.spec, "collectives", None) or {}
        plan = plan_collective(op, group, nbytes, self.topo, algorithm=colls.get(op, "auto"),
                               mirror_offsets=mirrors)
        self._plans[key] = (mirrors, plan)
        return plan

    # -- building -------------------------------------------------------------------------
    def build(self) -> TaskGraph:
        tg, g = self.tg, self.grid
        all_members = [self.members(s) for s in range(self.p)]
        ranks = tuple(r for ms in all_members for chain in ms for r in chain)
        tg.ranks = ranks
        tg.multiplicity = {r: (1 if self.full else g.per_stage) for r in ranks}
        first: dict[tuple, int] = {}
        last: dict[tuple, int] = {}
        send: dict[tuple, int] = {}
        grads: dict[tuple[int, int], int] = {}  # (rank, layer | -1 emb | -2 head) -> task (last mb)
        stage_last: dict[int, int] = {}
        in_flight = []
        for s in range(self.p):
            if self.split_w:  # zero-bubble orders its passes by their estimated durations
                f = self.attn.fwd_s + self.mlp.fwd_s
                w = self.attn.wgrad_s + self.mlp.wgrad_s
                order = self.schedule(self.p, self.m, self.v, s,
                                      times=(f, self.attn.bwd_s + self.mlp.bwd_s - w, w))
            else:
                order = self.schedule(self.p, self.m, self.v, s)
            in_flight.append(peak_in_flight(order))
            fusable = self._fusable(s)
            tail = self.m - (self.p if self.v > 1 else 1)  # units that may meet gradient buckets
            for kind, mb, ck in order:
                k = ck * self.p + s
                for chain_members in all_members[s]:
                    lb = Labels(s, mb, ck)
                    if fusable and mb < tail:
                        ids = self._fused_unit(kind, k, chain_members, lb)
                    else:
                        ch = TaskChain(tg, chain_members, lb, self.plan, self.slow)
                        # tensor-parallel collectives block the compute stream (Megatron runs
                        # them on it): a unit starts after the previous unit's last task
                        ch.prev.update((r, stage_last[r]) for r in chain_members if r in stage_last)
                        self._unit(ch, kind, k, chain_members, grads if mb == self.m - 1 else None)
                        ids = {r: (ch.first[r], ch.prev[r]) for r in chain_members}
                    for r, (a, z) in ids.items():
                        first[(kind, k, mb, r)], last[(kind, k, mb, r)] = a, z
                        stage_last[r] = z
                        send[(kind, k, mb, r)] = self._send(kind, k, mb, r, z, lb)
        self._cross_stage_deps(first, last, send)
        tail = add_grad_sync(self, grads, stage_last)
        tg.meta.update(stages=self.p, microbatches=self.m, chunk_layers=self.chunks,
                       in_flight=in_flight, representatives=[ms[0][0] for ms in all_members],
                       multiplicity=1 if self.full else g.per_stage,
                       fidelity="full" if self.full else "symmetric", stage_size=g.per_stage,
                       **tail)
        return tg

    def _send(self, kind: str, k: int, mb: int, r: int, after: int, lb: Labels) -> int:
        """The pipeline send after unit (kind, k, mb) of rank r, or the unit's last task."""
        if kind == "W":
            return after
        nxt = k + 1 if kind == "F" else k - 1
        if not 0 <= nxt < self.K or nxt % self.p == k % self.p:
            return after
        to = r + (nxt % self.p - k % self.p) * self.grid.per_stage
        mirrors = () if self.full else self.grid.stage_mirror_offsets()
        tr = self.plan("send", (r, to), self.p2p_bytes, mirrors)
        task = self.tg.add(kind="send", name=f"send.{'fwd' if kind == 'F' else 'bwd'} mb{mb}",
                           ranks=(r,), stream="pp-fwd" if kind == "F" else "pp-bwd", deps=(after,),
                           transfers=tr, nbytes=self.p2p_bytes, op="send", group=(r, to),
                           phase="pp_comm", stage=lb.stage, microbatch=mb, chunk=lb.chunk)
        return task.id

    def _cross_stage_deps(self, first: dict, last: dict, send: dict) -> None:
        per = self.grid.per_stage
        for (kind, k, mb, r), fid in first.items():
            dep = None
            if kind == "F" and k > 0:
                dep = send[("F", k - 1, mb, r + ((k - 1) % self.p - k % self.p) * per)]
            elif kind == "B":
                if k < self.K - 1:
                    dep = send[("B", k + 1, mb, r + ((k + 1) % self.p - k % self.p) * per)]
                else:
                    dep = last[("F", k, mb, r)]
            if dep is not None:
                t = self.tg.tasks[fid]
                t.deps = t.deps + (dep,)

    def _fusable(self, s: int) -> bool:
        """Symmetric stage whose tensor/context groups' links no pipeline transfer uses."""
        if self.full or not self.opt.fuse or self.spec.parallelism.zero_stage >= 2 or self.c > 1:
            return False  # ZeRO >= 2 and context rings put traffic beside every unit's compute
        rep = self.grid.rank(pp=s)
        coll: set[int] = set()
        for kind in ("tp", "cp"):
            for _, grp, mirrors in self.groups(kind, (rep,)):
                for tr in self.plan("all_reduce", grp, 1.0, mirrors):
                    coll.update(tr.links)
        if not coll:
            return True
        per = self.grid.per_stage
        for other in (s - 1, s + 1, (s + 1) % self.p, (s - 1) % self.p):
            if 0 <= other < self.p and other != s:
                for a, b in ((rep, other * per), (other * per, rep)):
                    for tr in self.plan("send", (a, b), 1.0, self.grid.stage_mirror_offsets()):
                        if coll.intersection(tr.links):
                            return False
        return True

    def _fused_unit(self, kind: str, k: int, members: tuple[int, ...], lb: Labels) -> dict:
        key = (kind, k)
        tmpl = self._templates.get(key)
        if tmpl is None:
            ch = PartsChain(self.plan, self.topo.link_bandwidth)
            self._unit(ch, kind, k, members, None)
            flops = sum(p.flops for p in ch.parts)
            tmpl = (tuple(ch.parts), ch.t, flops)
            self._templates[key] = tmpl
        parts, secs, flops = tmpl
        r = members[0]
        tag = {"F": "fwd", "B": "bwd", "W": "wgrad"}[kind]
        name = f"{tag} chunk{lb.chunk} L{self.chunks[k][0]}-{self.chunks[k][-1]}" \
            if self.chunks[k] else f"{tag} chunk{lb.chunk}"
        t = self.tg.add(kind="compute", name=name, ranks=(r,), stream="compute", duration=secs,
                        flops=flops, phase={"F": "forward", "B": "backward", "W": "weight_grad"}[kind],
                        stage=lb.stage, microbatch=lb.microbatch, chunk=lb.chunk, parts=parts)
        return {r: (t.id, t.id)}

    def _unit(self, ch: Any, kind: str, k: int, members: tuple[int, ...],
              grads: dict[tuple[int, int], int] | None) -> None:
        """One forward (F), backward (B) or weight-gradient (W, zero-bubble) unit of chunk k."""
        tp_groups = self.groups("tp", members) if self.t > 1 else []
        cp_groups = self.groups("cp", members) if self.c > 1 else []
        dp_groups = self.groups("dp", members) if self.d > 1 else []
        zero = self.spec.parallelism.zero_stage
        gathered: list[dict[int, int]] = []  # ZeRO-3 parameter gathers of this unit, in order
        computed: list[dict[int, int]] = []

        def tp(op: str, layer: int, tag: str) -> None:
            if tp_groups:
                ch.collective(tp_groups, op, self.act_bytes, f"tp.{op} {tag}", "tp", "tp_comm", layer)

        def gather(layer: int) -> dict[int, int] | None:
            """ZeRO-3: all-gather the layer's 16-bit weights, at most two layers ahead (prefetch)."""
            if zero < 3 or not dp_groups:
                return None
            after = computed[-2] if len(computed) >= 2 else None
            ids = ch.side(dp_groups, "all_gather", self.layer_params * self.dt, f"zero.all_gather L{layer}",
                          "dp", "zero_comm", layer, after)
            gathered.append(ids)
            return ids

        def reduce_grads(ids: dict[int, int], layer: int) -> None:
            """ZeRO ≥ 2: reduce-scatter the layer's gradients after every microbatch's backward."""
            if zero >= 2 and dp_groups:
                rs = ch.side(dp_groups, "reduce_scatter", self.layer_params * self.grad_bytes,
                             f"zero.reduce_scatter L{layer}", "dp", "dp_comm", layer, ids)
                self.last_rs.update(rs)

        def block(name: str, secs: float, flops: float, phase: str, layer: int, fwd: bool,
                  attn: bool = False, params: dict[int, int] | None = None) -> dict[int, int]:
            if self.sp:
                tp("all_gather", layer, f"{name} L{layer}")
            ring = None
            if attn and cp_groups:  # ring exchange of K/V blocks beside the attention compute
                op = "all_gather" if fwd else "reduce_scatter"
                ring = ch.side(cp_groups, op, self.kv_bytes, f"cp.{op} L{layer}", "cp", "cp_comm",
                               layer, after=dict(ch.prev) if ch.prev else None)
            ids = ch.compute(f"{name} L{layer}", secs, flops, phase, layer, after=params)
            if ring:
                ch.join(ring)
            computed.append(ids)
            tp("reduce_scatter" if self.sp else "all_reduce", layer, f"{name} L{layer}")
            return ids

        def note(ids: dict[int, int], key: int) -> None:
            if grads is not None:
                for r, tid in ids.items():
                    grads[(r, key)] = tid

        layers = self.chunks[k]
        emb_head = self.opt.include_embedding_head
        split = self.split_w  # zero-bubble: weight gradients in their own W unit
        if kind == "W":
            for l in reversed(layers):
                ids = ch.compute(f"wgrad L{l}", self.attn.wgrad_s + self.mlp.wgrad_s,
                                 self.attn.wgrad_flops + self.mlp.wgrad_flops, "weight_grad", l)
                note(ids, l)
                reduce_grads(ids, l)
            return
        if kind == "F":
            if k == 0 and emb_head:
                ch.compute("fwd.embedding L-1", self.emb.fwd_s, self.emb.fwd_flops, "forward", -1)
                tp("reduce_scatter" if self.sp else "all_reduce", -1, "embedding")
            for l in layers:
                params = gather(l)
                block("fwd.attn", self.attn.fwd_s, self.attn.fwd_flops, "forward", l, True, True, params)
                block("fwd.mlp", self.mlp.fwd_s, self.mlp.fwd_flops, "forward", l, True)
            if k == self.K - 1 and emb_head:
                if self.sp:
                    tp("all_gather", -1, "head")
                ch.compute("fwd.head L-1", self.head.fwd_s, self.head.fwd_flops, "forward", -1)
            return
        if k == self.K - 1 and emb_head:
            note(ch.compute("bwd.head L-1", self.head.bwd_s, self.head.bwd_flops, "backward", -1), -2)
            if self.sp:
                tp("reduce_scatter", -1, "head")
        mlp_s, mlp_f = self.mlp.bwd_s, self.mlp.bwd_flops
        attn_s, attn_f = self.attn.bwd_s, self.attn.bwd_flops
        if split:
            mlp_s, mlp_f = mlp_s - self.mlp.wgrad_s, mlp_f - self.mlp.wgrad_flops
            attn_s, attn_f = attn_s - self.attn.wgrad_s, attn_f - self.attn.wgrad_flops
        for l in reversed(layers):
            params = gather(l)
            if self.recompute == "full":
                block("rc.attn", self.attn.fwd_s, self.attn.fwd_flops, "recompute", l, True, True, params)
                block("rc.mlp", self.mlp.fwd_s, self.mlp.fwd_flops, "recompute", l, True)
                params = None
            block("bwd.mlp", mlp_s, mlp_f, "backward", l, False, params=params)
            if self.recompute == "selective":
                ch.compute(f"rc.attn_core L{l}", self.core_rc_s, self.core_rc_flops, "recompute", l)
            ids = block("bwd.attn", attn_s, attn_f, "backward", l, False, True)
            if not split:
                note(ids, l)
                reduce_grads(ids, l)
        if k == 0 and emb_head:
            if self.sp:
                tp("all_gather", -1, "embedding")
            note(ch.compute("bwd.embedding L-1", self.emb.bwd_s, self.emb.bwd_flops, "backward", -1), -1)
