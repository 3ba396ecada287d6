"""Megatron-Core's expert-parallel all-to-all overlap: a forward and a backward merged layer by layer.

``parallelism.moe_a2a_overlap`` (Megatron-Core ``overlap_moe_expert_parallel_comm``, Megatron-Bridge
``moe_a2a_overlap``). In the 1F1B steady state Megatron-Core runs one microbatch's forward and another's backward
as one step (``combined_1f1b.py``), their layers paired f₀ with b_{n−1}, f₁ with b_{n−2}, … (a chunk with fewer
layers leaves the rest unpaired), and each pair on two streams (``TransformerLayerSchedulePlan.run``,
megatron/core/models/common/model_chunk_schedule_plan.py)::

    comm:    combine_b   | dispatch_f → dispatch_b       | combine_f
    compute: pre_f       | mlp_b → mlp_b.dw → mlp_f       | pre_b → pre_b.dw

where pre is the attention block with the router and the first permutation (backward: the same, reversed), mlp
the experts, and the post-combine unpermutation runs with combine. So the forward's all-to-alls run beside the
backward's compute and the backward's beside the forward's: each all-to-all waits for the compute that feeds it,
each compute for the all-to-all that feeds it, and the two streams keep their order. With
``delay_wgrad_compute`` the backward's weight gradients leave its input-gradient path (``backward_dw``): the
experts' run after ``dispatch_b`` is issued, the attention block's at the end of the pair, and the first layer's
after the chunk's gradient is sent on. Without it, mlp_b and pre_b are whole backwards.

Before the pairs the forward's embedding (and a received activation's all-gather) and the backward's loss and
output layer; after them the forward's output layer and loss and the backward's embedding (``run``'s phases 0 and
6). Megatron-Core schedules one more warm-up forward on every stage (``get_pp_rank_microbatches``: "to ensure the
forward and backward computations are independent in all 1f1b steps"), so a steady step's forward and backward
are never the same microbatch's; without pipelining the first forward and the last backward run alone.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import groupby
from typing import TYPE_CHECKING, Callable, Sequence

from simcluster.plan.schedules import Unit, warm_units
from simcluster.plan.steps import Step

if TYPE_CHECKING:
    from simcluster.plan.costing import Blocks
    from simcluster.plan.moe import MoePlan
    from simcluster.plan.plan import Plan
    from simcluster.plan.steps import UnitShape

#: A merged step: (pass F or B, key: the layer or −1 / −2 for the embedding's and the head's steps, step).
Tagged = tuple[str, int, Step]
#: One item of a stage's order: a plain unit, or a merged (forward unit, backward unit).
Item = Unit | tuple[Unit, Unit]


def warm_extra(spec: object) -> int:
    """Warm-up forwards the overlap adds to every stage: 1 under ``moe_a2a_overlap``, else 0."""
    return 1 if getattr(getattr(spec, "parallelism", None), "moe_a2a_overlap", False) else 0


def applies(expert: int, pipeline: int, schedule: str, recompute: str, zero: int) -> bool:
    """Whether a layout can merge its passes (:mod:`simcluster.spec.ep_overlap_checks`): experts split over ranks,
    the interleaved schedule with a pipeline (1f1b without), no full recompute, ZeRO below 3."""
    sched_ok = schedule == "interleaved" if pipeline > 1 else schedule == "1f1b"
    return expert > 1 and sched_ok and recompute != "full" and zero < 3


def steady_pairs(schedule: str, p: int, m: int, v: int, s: int) -> int:
    """Merged forward-and-backward steps of stage ``s``: its m·v units less its warm-up forwards, one more than the
    schedule's (:func:`simcluster.plan.schedules.warm_units`)."""
    return m * v - warm_units(schedule, p, m, v, s, 1)


def hidden_seconds(moe: "MoePlan", layer: int, blocks: "Blocks", shape: "UnitShape", serial: float,
                   coll: Callable[[Step], float], delay: bool, merged_share: float, slowdown: float) -> float:
    """What merging hides of one MoE layer's forward and backward (``serial`` seconds the two take one after the
    other), in ``merged_share`` of the units: the pair's :func:`pair_seconds`, with ``slowdown``, taken off."""
    f = moe.steps("F", layer, 0, blocks, shape)
    if delay:
        b, w_mlp, w_attn, _ = backward_split(moe, layer, 0, blocks, shape)
    else:
        b, w_mlp, w_attn = moe.steps("B", layer, 0, blocks, shape), None, None
    return max(0.0, serial - pair_seconds(f, b, w_mlp, w_attn, coll, slowdown)) * merged_share


def pair_seconds(f: Sequence[Step], b: Sequence[Step], w_mlp: Step | None, w_attn: Step | None,
                 coll: Callable[[Step], float], slowdown: float = 0.0) -> float:
    """Seconds of one merged MoE layer pair (forward steps ``f``, backward steps ``b`` with, under
    ``delay_wgrad_compute``, their weight gradients apart) in closed form: the compute stream and the all-to-all
    stream each in order, every step at the later of its stream's previous end and what it waits for (module
    docstring); blocking tensor collectives count on the compute stream, ``coll`` their seconds and the
    all-to-alls'. ``slowdown``: the compute's loss beside communication (:mod:`simcluster.costs.contention`),
    charged on the overlapped time, taken as the smaller of the all-to-alls' and the compute's (the screen's
    approximation; exact at 0)."""
    pre_f, dispatch_f, mlp_f, combine_f, post_f = _split_at_a2a(f)
    post_b, combine_b, mlp_b, dispatch_b, pre_b = _split_at_a2a(b)

    def span(steps: list[Step]) -> float:
        return sum(s.seconds if s.what == "compute" else coll(s) if s.what == "tp" and not s.overlap else 0.0
                   for s in steps)
    t = span(post_b)
    cb = t + coll(combine_b)
    t += span(pre_f)
    df = max(cb, t) + coll(dispatch_f)
    t = max(t, cb) + span(mlp_b)
    db = max(df, t) + coll(dispatch_b)
    t = max(t + (w_mlp.seconds if w_mlp else 0.0), df) + span(mlp_f)
    cf = max(db, t) + coll(combine_f)
    t = max(t, db) + span(pre_b)
    t = max(t, cf) + span(post_f) + (w_attn.seconds if w_attn else 0.0)
    if not slowdown:
        return t
    comm = sum(coll(s) for s in (combine_b, dispatch_f, dispatch_b, combine_f))
    compute = sum(span(x) for x in (pre_f, mlp_b, mlp_f, pre_b, post_f)) + sum(
        w.seconds for w in (w_mlp, w_attn) if w is not None)
    return t + slowdown * min(comm, compute)


def merged(order: tuple[Unit, ...] | list[Unit], steady: int) -> list[Item]:
    """``order`` with its first ``steady`` forwards that a backward immediately follows merged with it (the 1F1B
    steady state's steps: the stage's units less its warm-up forwards, :func:`simcluster.plan.schedules.warm_units`;
    when every forward is a warm-up one the last is followed by the first cool-down backward, not merged).

    >>> merged([("F", 0, 0), ("F", 1, 0), ("B", 0, 0), ("F", 2, 0), ("B", 1, 0), ("B", 2, 0)], 2)
    [('F', 0, 0), (('F', 1, 0), ('B', 0, 0)), (('F', 2, 0), ('B', 1, 0)), ('B', 2, 0)]
    """
    out: list[Item] = []
    i = 0
    while i < len(order):
        u = order[i]
        if steady and u[0] == "F" and i + 1 < len(order) and order[i + 1][0] == "B":
            out.append((u, order[i + 1]))
            steady -= 1
            i += 2
        else:
            out.append(u)
            i += 1
    return out


def _runs(steps: list[tuple[int, Step]]) -> list[tuple[int, list[Step]]]:
    """Consecutive steps of one key, grouped: [(key, steps)] in order."""
    return [(key, [s for _, s in grp]) for key, grp in groupby(steps, key=lambda ks: ks[0])]


def _split_at_a2a(steps: Sequence[Step]) -> tuple[list[Step], Step, list[Step], Step, list[Step]]:
    """An MoE layer's pass cut at its two all-to-alls: (before, first all-to-all, between, second, after)."""
    idx = [i for i, s in enumerate(steps) if s.what == "a2a"]
    i, j = idx
    return list(steps[:i]), steps[i], list(steps[i + 1:j]), steps[j], list(steps[j + 1:])


def _joined(steps: list[Step], tag: str) -> list[Step]:
    """``steps`` whose first waits for the all-to-all ``tag`` (as the compute stream waits for its event)."""
    return [replace(steps[0], joins=tag)] + steps[1:] if steps else steps


def _side(step: Step, tag: str) -> Step:
    """An all-to-all run beside the compute stream, named ``tag`` for the steps that wait for it."""
    return replace(step, overlap=True, tag=tag)


def backward_split(moe: "MoePlan", layer: int, mb: int, blocks: "Blocks",
                   shape: "UnitShape") -> tuple[tuple[Step, ...], Step, Step, list[Step]]:
    """An MoE layer's backward without its weight gradients, the experts' and the attention block's weight-gradient
    steps (``delay_wgrad_compute``: the steps of a zero-bubble shape, whose W step is both), and the W pass's
    gradient reductions (ZeRO-2), after the attention block's."""
    shape = replace(shape, split_w=True)
    b = moe.steps("B", layer, mb, blocks, shape)
    w = moe.steps("W", layer, mb, blocks, shape)
    wgrad, rest = w[0], list(w[1:])
    attn = blocks.attn
    mlp = replace(wgrad, name="bwd.experts.wgrad", seconds=wgrad.seconds - attn.wgrad_s,
                  flops=wgrad.flops - attn.wgrad_flops, grads=False)
    return b, mlp, replace(wgrad, name="bwd.attn.wgrad", seconds=attn.wgrad_s, flops=attn.wgrad_flops), rest


def _is_moe(plan: "Plan", layer: int) -> bool:
    return plan.moe is not None and plan.moe.is_moe(layer)


def _pair(plan: "Plan", fwd: tuple[int, list[Step]] | None, bwd: tuple[int, list[Step]] | None,
          mbb: int) -> tuple[list[Tagged], list[Tagged]]:
    """The merged steps of a forward layer's and a backward layer's (layer, steps) (either None: unpaired), and the
    backward's delayed attention weight gradient with what follows it (ZeRO-2's reduce-scatter), for later."""
    delay = plan.spec.parallelism.delay_wgrad_compute
    lf, f = fwd if fwd is not None else (None, [])
    lb, unsplit = bwd if bwd is not None else (None, [])
    b: Sequence[Step] = unsplit
    w_mlp = w_attn = None
    reduce: list[Step] = []
    if lb is not None and _is_moe(plan, lb) and delay:
        assert plan.moe is not None
        b, w_mlp, w_attn, reduce = backward_split(plan.moe, lb, mbb, plan.layer_blocks(lb), plan.layer_shape(lb))
    if lf is None or lb is None or not (_is_moe(plan, lf) and _is_moe(plan, lb)):  # nothing to overlap: in turn
        out: list[Tagged] = [("F", lf, s) for s in f] if lf is not None else []
        if lb is not None:
            out += [("B", lb, s) for s in b]
            if w_mlp is not None and w_attn is not None:
                out += [("B", lb, w_mlp), ("B", lb, w_attn)] + [("B", lb, s) for s in reduce]
        return out, []
    pre_f, dispatch_f, mlp_f, combine_f, post_f = _split_at_a2a(f)
    post_b, combine_b, mlp_b, dispatch_b, pre_b = _split_at_a2a(b)
    out = [("B", lb, s) for s in post_b]
    out.append(("B", lb, _side(combine_b, "bwd.combine")))
    out += [("F", lf, s) for s in pre_f]
    out.append(("F", lf, _side(dispatch_f, "fwd.dispatch")))
    out += [("B", lb, s) for s in _joined(mlp_b, "bwd.combine")]
    out.append(("B", lb, _side(dispatch_b, "bwd.dispatch")))
    if w_mlp is not None:
        out.append(("B", lb, w_mlp))
    out += [("F", lf, s) for s in _joined(mlp_f, "fwd.dispatch")]
    out.append(("F", lf, _side(combine_f, "fwd.combine")))
    out += [("B", lb, s) for s in _joined(pre_b, "bwd.dispatch")]
    out += [("F", lf, s) for s in _joined(post_f, "fwd.combine")]
    held = [("B", lb, w_attn)] + [("B", lb, s) for s in reduce] if w_attn is not None else []
    return out, held


def _edges(runs: list[tuple[int, list[Step]]]) -> tuple[list[tuple[int, Step]], list[tuple[int, list[Step]]],
                                                       list[tuple[int, Step]]]:
    """A pass's runs as ((key, step) before its layers, its layers' runs, (key, step) after them); no layers: all
    before."""
    at = [i for i, (key, _) in enumerate(runs) if key >= 0]
    if not at:
        return [(k, st) for k, sts in runs for st in sts], [], []
    return ([(k, st) for k, sts in runs[:at[0]] for st in sts], runs[at[0]:at[-1] + 1],
            [(k, st) for k, sts in runs[at[-1] + 1:] for st in sts])


def pair_steps(plan: "Plan", kf: int, mbf: int, kb: int, mbb: int) -> list[Tagged]:
    """The merged steps of the forward of chunk ``kf`` for microbatch ``mbf`` and the backward of chunk ``kb`` for
    microbatch ``mbb`` (chunk k = chunk index · p + stage), in Megatron-Core's order (module docstring)."""
    f_pre, f_layers, f_post = _edges(_runs(plan.unit_steps("F", kf, mbf)))
    b_pre, b_layers, b_post = _edges(_runs(plan.unit_steps("B", kb, mbb)))
    out: list[Tagged] = [("F", k, st) for k, st in f_pre] + [("B", k, st) for k, st in b_pre]
    held: list[Tagged] = []
    for i in range(max(len(f_layers), len(b_layers))):
        fwd = f_layers[i] if i < len(f_layers) else None
        bwd = b_layers[i] if i < len(b_layers) else None
        steps, later = _pair(plan, fwd, bwd, mbb)
        out += steps
        if i == len(b_layers) - 1:  # the chunk's first layer: its weight gradient after the gradient is sent on
            held = later
        else:
            out += later
    return out + held + [("F", k, st) for k, st in f_post] + [("B", k, st) for k, st in b_post]
