"""Lower a layout's :class:`~simcluster.plan.Plan` into one :class:`TaskGraph`.

Fidelity. ``full`` simulates every GPU. ``symmetric`` (what ``auto`` picks for
a homogeneous cluster) simulates one representative per pipeline stage
(tp = cp = dp = 0): the stage's tensor-, context- and data-parallel ranks do
identical work, so its collectives are planned on the real topology for the
real group, and the identical groups that run the same collective at the same
moment load the shared links through ``mirror_offsets``. ``partial`` (what
``auto`` picks for stragglers, mixed-device nodes and degraded node links)
simulates the data-parallel replicas they touch GPU by GPU and one
representative per stage for the rest (:mod:`simcluster.lowering.partial`).
Every simulated rank stands for ``TaskGraph.multiplicity[rank]`` GPUs. In symmetric mode a unit whose
tensor-parallel traffic no other transfer can meet (every microbatch but the
last, whose backward feeds the data-parallel buckets, when the tensor group's
links carry no pipeline traffic) is fused into one task whose parts restore
the per-layer timeline.

Per stage and per microbatch the schedule's forward (F), backward (B) and
weight-gradient (W) units become a chain built from the plan's unit steps
(:mod:`simcluster.plan.steps`: compute blocks on the compute stream, tensor-parallel
collectives on the ``tp`` stream that block it, the context ring on ``cp`` beside the
attention block, ZeRO gathers and reduce-scatters on ``dp``); pipeline sends of
b·s·h/t activations (scatter/gather, Narayanan et al. 2021 §4.1) on the
``pp-fwd``/``pp-bwd`` streams; then data-parallel gradient reduction in buckets,
the optimizer step and ZeRO's gather (:mod:`simcluster.lowering.grad_sync`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from simcluster.costs.contention import OVERLAP_COMPUTE_SLOWDOWN
from simcluster.lowering.chain import Labels, PartsChain, TaskChain
from simcluster.lowering.comms import Comms
from simcluster.lowering.fused import fused_unit, is_fusable
from simcluster.lowering.grad_sync import GradSync, add_grad_sync
from simcluster.lowering.partial import explicit_replicas
from simcluster.lowering.slowdown import compute_slowdowns
from simcluster.lowering.task import Part, TaskGraph
from simcluster.plan import Plan
from simcluster.lowering.merged import lower_pair
from simcluster.plan.ep_overlap import merged, steady_pairs
from simcluster.plan.param_gather import chunk_gather_dispatch
from simcluster.plan.schedules import Unit
from simcluster.plan.steps import HEAD_GRADS, HOST_PHASE, Step
from simcluster.spec.workload import WorkloadSpec
from simcluster.topology.topology import Topology

Chain = TaskChain | PartsChain
UnitKey = tuple[str, int, int, int]  # (pass, chunk, microbatch, rank)
Template = tuple[tuple[Part, ...], float, float]  # a fused unit: parts, seconds, FLOPs


@dataclass(frozen=True)
class LoweringOptions:
    """Switches for closed-form tests and fidelity (defaults: a real run)."""

    ideal_network: bool = False  # every transfer is free
    include_optimizer: bool = True
    include_embedding_head: bool = True
    fidelity: str | None = None  # None: the spec's ``fidelity`` (auto | symmetric | partial | full)
    fuse: bool = True  # fuse units whose timing nothing can disturb (symmetric only)
    contention: bool = True  # compute slows while communication shares its GPU (costs/contention.py)


def resolve_fidelity(spec: WorkloadSpec, options: LoweringOptions) -> str:
    """``symmetric``, ``partial`` or ``full`` as asked; ``auto`` is symmetric while every rank is
    identical, partial otherwise (which :class:`Lowerer` turns into full where it does not apply), and full on
    nodes whose GPU pairs are linked unevenly (the DGX-1 cube-mesh: ``ClusterSpec.uneven_node``), where no GPU
    stands for its peers."""
    f = options.fidelity or spec.fidelity
    if f == "auto":
        return "full" if spec.cluster.uneven_node else "partial" if spec.cluster.heterogeneous else "symmetric"
    if f == "symmetric" and spec.cluster.heterogeneous:
        raise ValueError("fidelity symmetric cannot simulate stragglers or degraded links")
    if f in ("symmetric", "partial") and spec.cluster.uneven_node:
        raise ValueError(f"fidelity {f} cannot simulate a node whose GPU pairs are linked unevenly (nvlink-mesh)")
    return f


def lower(plan: Plan, topo: Topology, options: LoweringOptions = LoweringOptions()) -> TaskGraph:
    """Build the task graph of one training iteration of ``plan`` on ``topo``."""
    return Lowerer(plan, topo, options).build()


class Lowerer:
    """Turns the plan's units into chains of tasks, stage by stage (see the module docstring)."""

    def __init__(self, plan: Plan, topo: Topology, options: LoweringOptions):
        spec = plan.spec
        self.plan, self.topo, self.opt = plan, topo, options
        self.slow = compute_slowdowns(plan, topo)
        fidelity = resolve_fidelity(spec, options)
        if fidelity == "partial" and plan.moe is not None:
            fidelity = "full"  # partial symmetry does not place the expert groups: every GPU explicit
        explicit = explicit_replicas(plan, topo, self.slow) if fidelity == "partial" else frozenset()
        self.comms = Comms(plan.grid, topo, explicit is None or fidelity == "full", dict(spec.collectives),
                           options.ideal_network, plan.zero_shard,
                           (plan.moe.etp, plan.moe.ep) if plan.moe else (1, 1), explicit=explicit or frozenset(),
                           spread=bool(explicit and spec.cluster.degraded_links),
                           a2a_share=plan.moe.dedup if plan.moe else None)
        self.fidelity = "full" if self.comms.full else "partial" if self.comms.partial else "symmetric"
        self.tg = TaskGraph()
        self.last_rs: dict[int, int] = {}  # ZeRO >= 2: each rank's last gradient reduce-scatter
        self.templates: dict[tuple[str, int, bool], Template] = {}  # fused units (simcluster.lowering.fused)
        self.shared: dict[tuple[object, ...], int] = {}  # collectives spanning chains (TaskChain.side)
        self.loads: dict[int, int] = {}  # rank -> its step's data-loading host task (training.data_loading_wait)

    def build(self) -> TaskGraph:
        tg, plan, comms = self.tg, self.plan, self.comms
        p, m = plan.p, plan.m
        all_members = [comms.members(s) for s in range(p)]
        tg.ranks = tuple(r for ms in all_members for chain in ms for r in chain)
        tg.multiplicity = {r: comms.multiplicity_of(r) for r in tg.ranks}
        first: dict[UnitKey, int] = {}
        last: dict[UnitKey, int] = {}
        send: dict[UnitKey, int] = {}
        grads: dict[tuple[int, int], int] = {}  # (rank, gradient key) -> task (last mb)
        stage_last: dict[int, int] = {}
        blocking = plan.sends.blocking  # DeepSpeed's pipeline engine, Megatron-LM's 1F1B
        self._data_loading(all_members)
        for s in range(p):
            fusable = is_fusable(self, s)
            tail = m - (p if plan.v > 1 else 1)  # units that may meet gradient buckets
            forwards: list[tuple[int, int]] = []  # the stage's forward units in order: (chunk k, microbatch)
            items = merged(plan.orders[s], steady_pairs(plan.schedule, p, m, plan.v, s)) \
                if plan.spec.parallelism.moe_a2a_overlap else plan.orders[s]
            for item in items:
                if isinstance(item[0], tuple):  # a forward and a backward merged (simcluster.plan.ep_overlap)
                    pair: tuple[Unit, Unit] = item
                    forwards.append((pair[0][2] * p + s, pair[0][1]))
                    lower_pair(self, s, pair, all_members[s], grads if pair[1][1] == m - 1 else None,
                               (first, last, send), stage_last)
                    continue
                kind, mb, ck = item
                k = ck * p + s
                if kind == "F":
                    forwards.append((k, mb))
                for chain_members in all_members[s]:
                    lb = Labels(s, mb, ck, kind)
                    if fusable and mb < tail and not (plan.param_overlap and kind == "F" and mb == 0):
                        ids = fused_unit(self, kind, k, chain_members, lb, stage_last)
                    else:
                        ch = TaskChain(tg, chain_members, lb, comms.plan, self.slow, self.shared)
                        # tensor-parallel collectives block the compute stream (Megatron runs
                        # them on it): a unit starts after the previous unit's last task
                        ch.prev.update((r, stage_last[r]) for r in chain_members if r in stage_last)
                        anchor = None
                        if plan.param_overlap and plan.schedule == "interleaved" and kind == "F" and mb == 0:
                            j = chunk_gather_dispatch(ck, p, s)  # simcluster.plan.param_gather
                            anchor = ({r: first[("F", *forwards[j], r)] for r in chain_members}
                                      if j is not None else {})
                        self.unit(ch, kind, k, chain_members, grads if mb == m - 1 else None, mb, anchor)
                        ids = {r: (ch.first[r], ch.prev[r]) for r in chain_members}
                    for r, (a, z) in ids.items():
                        first[(kind, k, mb, r)], last[(kind, k, mb, r)] = a, z
                        stage_last[r] = z
                        send[(kind, k, mb, r)] = self.send_after(kind, k, mb, r, z, lb)
                        if blocking:  # the stage's next unit waits for its send
                            stage_last[r] = send[(kind, k, mb, r)]
        self._cross_stage_deps(first, last, send)
        self._drain_deferred(all_members[p - 1], grads, stage_last)
        ctx = GradSync(tg, plan, comms, self.slow, self.last_rs, self.opt.include_optimizer)
        add_grad_sync(ctx, grads, stage_last)
        self._after_loading()
        tg.meta.update(stages=p, microbatches=m, chunk_layers=plan.chunks,
                       representatives=[ms[0][0] for ms in all_members], multiplicity=comms.multiplicity,
                       fidelity=self.fidelity, stage_size=plan.grid.per_stage,
                       explicit_replicas=sorted(comms.explicit) if comms.partial else [],
                       overlap_slowdown=OVERLAP_COMPUTE_SLOWDOWN if self.opt.contention else 0.0)
        return tg

    def _data_loading(self, all_members: list[list[tuple[int, ...]]]) -> None:
        """``training.data_loading_wait``: the host loads the step's batch after the previous step's sync, the GPU
        idle: one host task (phase ``host``) per GPU, which :meth:`_after_loading` puts before the step."""
        wait = self.plan.spec.training.data_loading_wait
        if wait <= 0:
            return
        for s, chains in enumerate(all_members):
            for chain in chains:
                for r in chain:
                    self.loads[r] = self.tg.add(kind="compute", name="step.data_loading", ranks=(r,),
                                                stream="compute", deps=(), duration=wait, phase=HOST_PHASE,
                                                stage=s).id

    def _after_loading(self) -> None:
        """Every task that waits for nothing (each GPU's first compute, the first ZeRO-3 gathers, FSDP's root
        gather) waits for its ranks' data loading: the host issues nothing of the step before its batch is loaded."""
        loading = set(self.loads.values())
        for t in self.tg.tasks:
            if not t.deps and t.id not in loading:
                t.deps = tuple(self.loads[r] for r in t.ranks if r in self.loads)

    def send_after(self, kind: str, k: int, mb: int, r: int, after: int, lb: Labels) -> int:
        """The pipeline send after unit (kind, k, mb) of rank r, or the unit's last task."""
        plan = self.plan
        if kind == "W":
            return after
        nxt = k + 1 if kind == "F" else k - 1
        if not 0 <= nxt < plan.K or nxt % plan.p == k % plan.p:
            return after
        to = r + (nxt % plan.p - k % plan.p) * plan.grid.per_stage
        tr = self.comms.plan("send", (r, to), plan.p2p_bytes, self.comms.stage_mirrors(r))
        task = self.tg.add(kind="send", name=f"send.{'fwd' if kind == 'F' else 'bwd'} mb{mb}",
                           ranks=(r,), stream="pp-fwd" if kind == "F" else "pp-bwd", deps=(after,),
                           transfers=tr, nbytes=plan.p2p_bytes, op="send", group=(r, to),
                           phase="pp_comm", stage=lb.stage, microbatch=mb, chunk=lb.chunk)
        return task.id

    def _cross_stage_deps(self, first: dict[UnitKey, int], last: dict[UnitKey, int],
                          send: dict[UnitKey, int]) -> None:
        p, K, per = self.plan.p, self.plan.K, self.plan.grid.per_stage
        for (kind, k, mb, r), fid in first.items():
            dep = None
            if kind == "F" and k > 0:
                dep = send[("F", k - 1, mb, r + ((k - 1) % p - k % p) * per)]
            elif kind == "B":
                if k < K - 1:
                    dep = send[("B", k + 1, mb, r + ((k + 1) % p - k % p) * per)]
                else:
                    dep = last[("F", k, mb, r)]
            if dep is not None:
                t = self.tg.tasks[fid]
                t.deps = t.deps + (dep,)

    def _drain_deferred(self, chains: list[tuple[int, ...]], grads: dict[tuple[int, int], int],
                        stage_last: dict[int, int]) -> None:
        """Megatron-Core's drain of the output layer's deferred weight gradients after the last stage's last
        unit: one all-gather of a microbatch's input (sequence parallel; the others run under the GEMMs), then the
        GEMMs, which produce the head's gradients (:mod:`simcluster.costs.deferred_wgrad`)."""
        plan = self.plan
        n, w_s, w_f = plan.deferred_wgrad
        if not n:
            return
        for members in chains:
            ch = TaskChain(self.tg, members, Labels(plan.p - 1, plan.m - 1, plan.v - 1, "B"), self.comms.plan,
                           self.slow, self.shared)
            ch.prev.update((r, stage_last[r]) for r in members if r in stage_last)
            if plan.t > 1 and plan.shape.sp:
                ch.collective(self.comms.groups("tp", members), "all_gather", plan.act_bytes,
                              "tp.all_gather bwd.head.wgrad", "tp", "tp_comm", -1)
            for r, tid in ch.compute("bwd.head.wgrad L-1", n * w_s, n * w_f, "backward", -1).items():
                grads[(r, HEAD_GRADS)] = stage_last[r] = tid

    def unit(self, ch: Chain, kind: str, k: int, members: tuple[int, ...],
              grads: dict[tuple[int, int], int] | None, mb: int = 0,
              anchor: dict[int, int] | None = None) -> None:
        """One F, B or W unit of chunk k: the plan's steps, in order, as tasks or parts. ``anchor``: the
        interleaved schedule's chunk-wise weight gathers (:func:`simcluster.plan.param_gather.chunk_gather_dispatch`)
        are issued together after these tasks (``{}``: at the iteration's start), not a layer ahead."""
        self.lower_steps(ch, [(None, key, step) for key, step in self.plan.unit_steps(kind, k, mb)], members, grads,
                         anchor)

    def lower_steps(self, ch: Chain, items: list[tuple[Labels | None, int, Step]], members: tuple[int, ...],
                    grads: dict[tuple[int, int], int] | None, anchor: dict[int, int] | None,
                    noted: Callable[[Labels, Step], None] | None = None) -> None:
        """Lower ``items`` ((labels, or None: the chain's), key, step) in order as tasks or parts (:meth:`unit`);
        ``noted(labels, step)`` after each step lowered on the chain (a merged pair's, whose labels switch)."""
        plan, comms = self.plan, self.comms
        groups = {kind: comms.groups(kind, members) if n > 1 else []
                  for kind, n in (("tp", plan.t), ("cp", plan.c), ("dp", plan.d), ("zs", plan.zero_shard),
                                  ("ep", plan.moe.etp * plan.moe.ep if plan.moe else 1))}
        zero = groups[plan.shard_kind]  # ZeRO's gathers and reduce-scatters
        computed: list[dict[int, int]] = []  # this unit's layer blocks, for ZeRO-3's prefetch
        params: dict[int, int] | None = None  # the current layer's ZeRO-3 gather
        prep: dict[int, int] | None = None  # DeepSpeed's host work before the next ZeRO-3 collective
        # collectives beside the next compute, which the chain's next task waits for: the context ring (first) and
        # userbuffers' tensor collectives (simcluster.plan.tp_overlap)
        beside: list[dict[int, int]] = []
        pending = False  # the unit's last compute had a collective beside it (tp_grad_overlap, userbuffers, ring)
        produced: dict[int, int] = {}
        a2a: dict[int, int] = {}  # DualPipe: the layer's all-to-alls beside its compute (simcluster.plan.moe)
        tagged: dict[str, dict[int, int]] = {}  # a merged pair's all-to-alls beside, by tag (plan.ep_overlap)
        for lb, key, step in items:
            if lb is not None and isinstance(ch, TaskChain):
                ch.labels = lb
            if step.joins:  # the compute stream waits for that all-to-all's event
                ch.join(tagged.pop(step.joins))
            layer = max(key, -1)  # the embedding's and the head's tasks are labelled layer -1
            if step.what == "compute":
                if step.overlap and a2a:
                    ch.join(a2a)
                    a2a = {}
                wait = self.last_rs if step.waits_grads and self.last_rs else params if step.waits_params else None
                ids = ch.compute(f"{step.name} L{layer}", step.seconds, step.flops, step.phase, layer,
                                 after=wait)
                if step.name == "zero.prep":  # the collective it prepares is issued after it
                    prep = ids
                for side in beside:
                    ch.join(side)
                pending = bool(beside)  # its sides (reductions beside the GEMMs, userbuffers, the context ring)
                beside = []
                if step.block:
                    computed.append(ids)
                if step.grads:
                    produced = ids
                    if grads is not None:
                        for r, tid in ids.items():
                            grads[(r, key)] = tid
            elif step.what == "tp":
                pending = pending and step.overlap
                if groups["tp"]:
                    tag = f"{step.tag} L{layer}" if layer >= 0 else step.tag
                    if step.overlap:  # userbuffers (simcluster.plan.tp_overlap): beside the next compute
                        beside.append(ch.side(groups["tp"], step.op, plan.act_bytes * step.share,
                                              f"tp.{step.op} {tag}", "tp", "tp_comm", layer,
                                              after=dict(ch.prev) if isinstance(ch, TaskChain) and ch.prev else None))
                    else:
                        ch.collective(groups["tp"], step.op, plan.act_bytes * step.share, f"tp.{step.op} {tag}", "tp",
                                      "tp_comm", layer)
            elif step.what == "a2a":  # MoE dispatch / combine over the expert group (simcluster.plan.moe)
                name = f"ep.all_to_all {step.tag} L{layer}"
                if groups["ep"] and step.overlap:
                    ids = ch.side(groups["ep"], "all_to_all", step.nbytes, name, "ep", "ep_comm", layer,
                                  after=dict(ch.prev) if isinstance(ch, TaskChain) and ch.prev else None)
                    a2a.update(ids)
                    tagged[step.tag] = ids
                    continue  # beside the chain: nothing to note
                elif groups["ep"]:
                    ch.collective(groups["ep"], "all_to_all", step.nbytes, name, "ep", "ep_comm", layer)
            elif step.what == "ring":
                if groups["cp"]:  # joined first, as before userbuffers' collectives
                    beside.insert(0, ch.side(groups["cp"], step.op, plan.kv_bytes, f"cp.{step.op} L{layer}", "cp",
                                             "cp_comm", layer,
                                             after=dict(ch.prev) if isinstance(ch, TaskChain) and ch.prev else None))
            elif step.what == "gather":
                if anchor is not None:  # the chunk's gathers one after another from the anchor on
                    after = params if params else (anchor or None)
                elif step.prefetch:  # issued a block ahead of need
                    after = computed[-2] if len(computed) >= 2 else None
                else:  # fetched when the compute reaches the layer (DeepSpeed, modules past its bucket)
                    after = computed[-1] if computed else None
                after, prep = prep or after, None
                nbytes = (step.params or plan.params.layer) * plan.dtype_bytes * step.share / step.parts
                for i in range(step.parts):  # one after another on the data-parallel stream
                    name = f"zero.all_gather L{layer}" + (f".{i}" if step.parts > 1 else "")
                    params = ch.side(zero, "all_gather", nbytes, name, "dp", "zero_comm", layer,
                                     after if i == 0 else params, slot=key)
            elif step.what == "reduce_grads":
                after, prep = prep or produced, None
                nbytes = (step.params or plan.params.layer) * plan.grad_bytes / step.parts
                rs: dict[int, int] = {}
                for i in range(step.parts):  # DeepSpeed: one per tensor, one after another
                    name = f"zero.reduce_scatter L{layer}" + (f".{i}" if step.parts > 1 else "")
                    rs = ch.side(zero, "reduce_scatter", nbytes, name, "dp", "dp_comm", layer, rs or after, slot=key)
                # a rank's last reduce-scatter is the one its own chain has reached: under full fidelity the task is
                # shared with replicas lowered later, whose fetches must not wait for it before they issue it
                self.last_rs.update((r, tid) for r, tid in rs.items() if r in members)
            if noted is not None and lb is not None:
                noted(lb, step)
        if pending:  # the unit's output, the input gradient, is whole once the collectives beside its last GEMM end:
            ch.compute(f"tp.wait L{layer}", 0.0, 0.0, "backward", layer)  # what its send and the next unit wait for
