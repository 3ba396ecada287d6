"""Symmetric-mode fusion: a unit whose tensor-parallel traffic nothing else can meet becomes one task.

In symmetric mode (one representative per pipeline stage, :mod:`simcluster.lowering.lower`) a stage is *fusable* when
its tensor- and context-parallel groups' links carry no pipeline transfer of the neighbouring stages (and no ZeRO-2/3
traffic, context ring, userbuffer overlap or MoE all-to-all runs beside the compute). Its units before the last
microbatches (whose backward feeds the data-parallel buckets) are then lowered once per (pass, chunk) into a template
of :class:`~simcluster.lowering.task.Part` rows (:class:`~simcluster.lowering.chain.PartsChain`, the collectives timed
alone on their links) and emitted as one compute task per unit that restores the per-layer timeline from its parts:
the same seconds as the explicit chain, a fraction of the tasks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simcluster.costs.contention import OVERLAP_COMPUTE_SLOWDOWN
from simcluster.lowering.chain import Labels, PartsChain

if TYPE_CHECKING:
    from simcluster.lowering.lower import Lowerer


def is_fusable(lw: Lowerer, s: int) -> bool:
    """Symmetric stage whose tensor/context groups' links no pipeline transfer uses."""
    plan, comms = lw.plan, lw.comms
    if comms.full or comms.partial or not lw.opt.fuse or plan.zero >= 2 or plan.c > 1 \
            or plan.moe is not None or plan.shape.tp_overlap:
        return False  # ZeRO >= 2, context rings and userbuffers put traffic beside every unit's compute; MoE
        # units differ per microbatch (the router's draws) and their all-to-alls share every link;
        # partial: the explicit replicas' traffic may meet the representative's
    rep = plan.grid.rank(pp=s)
    coll: set[int] = set()
    for kind in ("tp", "cp"):
        for _, grp, mirrors in comms.groups(kind, (rep,)):
            for tr in comms.plan("all_reduce", grp, 1.0, mirrors):
                coll.update(tr.links)
    if not coll:
        return True
    per = plan.grid.per_stage
    for other in (s - 1, s + 1, (s + 1) % plan.p, (s - 1) % plan.p):
        if 0 <= other < plan.p and other != s:
            for a, b in ((rep, other * per), (other * per, rep)):
                for tr in comms.plan("send", (a, b), 1.0, plan.grid.stage_mirror_offsets()):
                    if coll.intersection(tr.links):
                        return False
    return True


def fused_unit(lw: Lowerer, kind: str, k: int, members: tuple[int, ...], lb: Labels,
               stage_last: dict[int, int]) -> dict[int, tuple[int, int]]:
    """One unit as a single task whose parts restore its rows; like an explicit chain it starts
    after the previous unit's last task (a tensor-parallel collective may end after its compute)."""
    head_b = kind == "B" and k == lw.plan.K - 1  # its head's weight gradient may be deferred (by microbatch)
    key = (kind, k, head_b and lb.microbatch < lw.plan.deferred_wgrad[0])
    tmpl = lw.templates.get(key)
    if tmpl is None:
        ch = PartsChain(lw.comms.plan, lw.topo.link_bandwidth,
                        OVERLAP_COMPUTE_SLOWDOWN if lw.opt.contention else 0.0)
        # microbatch 1's steps: a fused unit is never the first forward, which gathers the weights under
        # overlap_param_gather (simcluster.plan.param_gather); every other unit's steps are the same
        lw.unit(ch, kind, k, members, None, mb=lb.microbatch if head_b else 1)
        flops = sum(p.flops for p in ch.parts)
        tmpl = (tuple(ch.parts), ch.t, flops)
        lw.templates[key] = tmpl
    parts, secs, flops = tmpl
    r = members[0]
    tag = {"F": "fwd", "B": "bwd", "W": "wgrad"}[kind]
    layers = lw.plan.chunks[k]
    name = f"{tag} chunk{lb.chunk} L{layers[0]}-{layers[-1]}" if layers else f"{tag} chunk{lb.chunk}"
    deps = (stage_last[r],) if r in stage_last else ()
    t = lw.tg.add(kind="compute", name=name, ranks=(r,), stream="compute", duration=secs, deps=deps,
                  flops=flops, phase={"F": "forward", "B": "backward", "W": "weight_grad"}[kind],
                  stage=lb.stage, microbatch=lb.microbatch, chunk=lb.chunk, parts=parts)
    return {r: (t.id, t.id)}
