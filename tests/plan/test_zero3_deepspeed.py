"""DeepSpeed ZeRO-3 of 2021 (v0.3.13–v0.4.x): the re-fetch after recompute and the per-rank host work
of its list-based collectives, against their closed forms (simcluster.costs.deepspeed_zero3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers_spec import make_spec
from simcluster.costs.deepspeed_zero3 import (DEEPSPEED_HOST_OPS_PER_RANK, DEEPSPEED_MAX_REUSE_DISTANCE,
                                              DEEPSPEED_PERSISTENCE_THRESHOLD)
from simcluster.costs.frameworks import GRAD_ACCUM_BYTES, HOST_OP_S, framework
from simcluster.plan.costing import gather_copy_time
from simcluster.plan.plan import compute_model
from simcluster.workload import model_ops
from simcluster.plan import build_plan
from simcluster.plan.zero3 import (collective_prep_s, zero3_grad_parts, zero3_layer_tensors, zero3_persistent_gather_s,
                                   zero3_refetch)
from simcluster.run import simulate_workload
from simcluster.search.estimate import Estimator
from simcluster.search.layout import Layout
from simcluster.topology.build import build_topology

ZERO3 = ("parallelism.data=8", "parallelism.zero_stage=3", "training.recompute=full",
         "training.framework=deepspeed")


def _wide(tmp_path, h: int, *extra: str):
    return make_spec(tmp_path, *ZERO3, f"model.hidden={h}", f"model.heads={h // 128}", *extra)


@pytest.mark.parametrize("h, modules, share", [
    (12288, 3, 8 / 12),  # 2·|fc2| = 8h² ≥ 1e9: fc1, dense and qkv (3h² + h² + 4h² of 12h²) fetched again
    (8192, 2, 4 / 12),   # 2·|fc2| < 1e9 ≤ 2·(|fc1| + |fc2|): dense and qkv
    (4096, 0, 0.0),      # every reuse distance under 1e9: nothing fetched twice
])
def test_refetch_is_the_reuse_distance_rule(tmp_path, h, modules, share):
    """Module i of rc(m1..mk), bwd(mk..m1) is released when 2·Σ_{j>i}|m_j| ≥ stage3_max_reuse_distance."""
    assert DEEPSPEED_MAX_REUSE_DISTANCE == 1e9
    n, s = zero3_refetch(_wide(tmp_path, h))
    assert n == modules and s == pytest.approx(share)


def test_refetch_needs_module_fetches_and_full_recompute(tmp_path):
    assert zero3_refetch(_wide(tmp_path, 12288, "training.framework=pytorch")) == (0, 0.0)
    assert zero3_refetch(_wide(tmp_path, 12288, "training.recompute=none")) == (0, 0.0)


def test_prep_is_linear_in_the_ranks(tmp_path):
    """N views and N copies per collective: N × ops × HOST_OP_S, 0 for FSDP and below ZeRO-3."""
    spec = make_spec(tmp_path, *ZERO3)
    for n in (8, 384, 1536):
        assert collective_prep_s(spec, n) == pytest.approx(n * DEEPSPEED_HOST_OPS_PER_RANK * HOST_OP_S)
    assert collective_prep_s(spec, 1536) == pytest.approx(4 * collective_prep_s(spec, 384))
    assert collective_prep_s(make_spec(tmp_path, *ZERO3, "training.framework=pytorch"), 1536) == 0.0
    assert collective_prep_s(make_spec(tmp_path, *ZERO3, "parallelism.zero_stage=2"), 1536) == 0.0


def test_plan_prepares_every_gather_and_reduce_scatter(tmp_path):
    """Per layer: one prep per linear layer's gather (forward, recompute, re-fetch) and one per tensor's
    reduce-scatter (4 weights, 4 biases, 2 × (γ, β))."""
    spec = _wide(tmp_path, 12288, "model.layers=2", "training.global_batch=8")
    plan = build_plan(spec)
    prep = plan.shape.collective_prep_s
    assert prep == pytest.approx(8 * HOST_OP_S)
    fwd = [s for s in plan.layer_unit_steps("F", 0) if s.name == "zero.prep"]
    bwd = [s for s in plan.layer_unit_steps("B", 0) if s.name == "zero.prep"]
    assert sum(s.seconds for s in fwd) == pytest.approx(4 * prep)
    assert sum(s.seconds for s in bwd) == pytest.approx((4 + 3 + 12) * prep)
    again = [s for s in plan.layer_unit_steps("B", 0) if s.what == "gather"][1]
    assert (again.parts, again.share) == (3, pytest.approx(8 / 12))


def test_gathers_wait_for_their_host_preparation(tmp_path):
    """Each all-gather is issued after its zero.prep task; the re-fetch's bytes are its share of the layer."""
    spec = make_spec(tmp_path, *ZERO3, "model.layers=2", "training.global_batch=8")
    out = simulate_workload(spec)
    tasks = out.tasks.tasks
    start, end = out.result.start, out.result.end
    gathers = [t for t in tasks if t.name.startswith("zero.all_gather L0")]
    preps = [t for t in tasks if t.name.startswith("zero.prep L0")]
    assert preps and len(preps) <= len(gathers)
    for g in gathers:
        before = [p for p in preps if p.id < g.id]
        assert before and start[g.id] >= end[before[-1].id] - 1e-12


def test_each_fetch_waits_for_the_reduce_scatters_in_flight(tmp_path):
    """_allgather_param calls torch.cuda.synchronize() before its N views (partition_parameters.py, v0.3.13–
    v0.4.x): every zero.prep starts after each reduce-scatter issued before it has ended, on every rank; the
    gradient reduction never runs beside the compute. FSDP's reduce-scatters do (no sync, no prep)."""
    spec = make_spec(tmp_path, *ZERO3, "model.layers=3", "training.global_batch=16")
    assert build_plan(spec).shape.fetch_sync
    assert all(s.waits_grads for s in build_plan(spec).layer_unit_steps("B", 1) if s.name == "zero.prep")
    out = simulate_workload(spec)
    tasks, start, end = out.tasks.tasks, out.result.start, out.result.end
    waited = 0
    for rank in {t.ranks[0] for t in tasks if t.name.startswith("zero.prep")}:
        mine = sorted((t for t in tasks if rank in t.ranks), key=lambda t: start[t.id])
        for prep in (t for t in mine if t.name.startswith("zero.prep")):
            earlier = [t for t in mine if t.name.startswith("zero.reduce_scatter") and t.id < prep.id]
            assert all(start[prep.id] >= end[t.id] - 1e-12 for t in earlier), prep.name
            waited += bool(earlier)
    assert waited  # backward preps after a layer's reduce-scatters exist
    fsdp = make_spec(tmp_path, *ZERO3, "model.layers=3", "training.global_batch=16", "training.framework=pytorch")
    assert not build_plan(fsdp).shape.fetch_sync


def test_screen_serialises_the_reduce_scatters_as_the_simulator(tmp_path):
    """The search screen's closed form adds the reduce-scatters to the backward, as the simulated timeline
    (overlapping them with the compute, as it did before, it read 15 % faster than the simulation here)."""
    spec = _wide(tmp_path, 12288, "model.layers=16", "training.global_batch=8", "training.micro_batch=1")
    p, t = spec.parallelism, spec.training
    lay = Layout(p.tensor, p.pipeline, p.data, p.context, t.micro_batch, 1, p.schedule, False, t.recompute,
                 p.zero_stage)
    est = Estimator(spec, build_topology(spec.cluster)).estimate(lay).iteration_time_s
    assert est == pytest.approx(simulate_workload(spec).summary["iteration_time_s"], rel=0.02)


def test_memory_passes_around_the_collectives(tmp_path):
    """torch.zeros (2 B) and c10d's copy into the N views (2 + 2) per gathered weight; before the
    reduce-scatter bucket copy, div_ and c10d's flattening copy (4 B each) instead of ZeRO-1/2's
    18 B fp32 accumulation; the re-fetch copies its share of the layer."""
    spec = _wide(tmp_path, 12288, "model.layers=2", "training.global_batch=8")
    ops, cm = model_ops(spec.model, spec.training), compute_model(spec, spec.cluster.device)
    h = spec.model.hidden
    assert gather_copy_time(ops, cm, 1, framework("deepspeed", 3)) == pytest.approx(
        cm.memory_time(6 * 12 * h * h, "copy"), rel=1e-12)
    assert framework("deepspeed", 3).grad_accum_bytes == 12.0
    assert framework("deepspeed", 1).grad_accum_bytes == GRAD_ACCUM_BYTES
    assert framework("deepspeed", 1).gather_copy_out_bytes == 0.0
    plan = build_plan(spec)
    copies = [s.seconds for s in plan.layer_unit_steps("B", 0) if s.name == "zero.copy_out"]
    assert copies == pytest.approx([plan.blocks.gather_copy_s, plan.blocks.gather_copy_s * 8 / 12])


def test_layer_tensors_and_one_reduce_scatter_each(tmp_path):
    """A GPT layer's 12 tensors (weights 3h², h², 4h², 4h²; biases 3h, h, 4h, h; γ, β twice): DeepSpeed
    reduce-scatters each on its own (``_reduce_scatter_gradients``); FSDP and ZeRO-2 one per layer."""
    h = 12288
    spec = _wide(tmp_path, h)
    assert sorted(zero3_layer_tensors(spec)) == sorted([3 * h * h, h * h, 4 * h * h, 4 * h * h,
                                                         3 * h, h, 4 * h, h, h, h, h, h])
    assert zero3_grad_parts(spec) == 12
    assert zero3_grad_parts(_wide(tmp_path, h, "training.framework=pytorch")) == 1
    assert zero3_grad_parts(_wide(tmp_path, h, "parallelism.zero_stage=2")) == 1


@pytest.mark.parametrize("h, ranks, pieces", [
    (12288, 1536, 8 * 1536),  # every small tensor a multiple of N: N pieces each
    # N = 5000: ⌈n/⌈n/N⌉⌉ = 4096 for n = h (six of them), 4608 for 3h, 4916 for 4h
    (12288, 5000, 6 * 4096 + 4608 + 4916),
    # 4h = 102,400 ≥ 1e5: fc1's bias is not persistent; h = 25,600 in pieces of 17: 1506, 3h of 50: 1536
    (25600, 1536, 6 * 1506 + 1536),
])
def test_persistent_gather_is_one_copy_per_rank_piece(tmp_path, h, ranks, pieces):
    """``_allgather_params`` copies each persistent tensor rank by rank: pieces × ops × HOST_OP_S per layer."""
    assert DEEPSPEED_PERSISTENCE_THRESHOLD == 1e5
    got = zero3_persistent_gather_s(_wide(tmp_path, h), ranks)
    assert got == pytest.approx(pieces * DEEPSPEED_HOST_OPS_PER_RANK * HOST_OP_S)
    assert zero3_persistent_gather_s(_wide(tmp_path, h, "training.framework=pytorch"), ranks) == 0.0


def test_lowering_reduces_each_tensor_and_regathers_after_the_step(tmp_path):
    """12 reduce-scatters per layer, one after another on the data-parallel stream, and a
    zero.persist_gather task of layers × the per-layer host time after each rank's optimizer step."""
    spec = make_spec(tmp_path, *ZERO3, "model.layers=2", "training.global_batch=8")
    out = simulate_workload(spec)
    tasks = out.tasks.tasks
    start, end = out.result.start, out.result.end
    rs = [t for t in tasks if t.name.startswith("zero.reduce_scatter L0")]
    assert len({t.name for t in rs}) == 12
    ordered = sorted({t.name: t for t in rs}.values(), key=lambda t: int(t.name.rsplit(".", 1)[1]))
    assert all(start[b.id] >= end[a.id] - 1e-12 for a, b in zip(ordered, ordered[1:]))
    per_layer = zero3_persistent_gather_s(spec, 8)
    persist = [t for t in tasks if t.name == "zero.persist_gather"]
    steps = {t.ranks: t for t in tasks if t.name == "optimizer.step"}
    assert persist and per_layer > 0
    for t in persist:
        assert t.duration == pytest.approx(2 * per_layer)
        assert start[t.id] >= end[steps[t.ranks].id] - 1e-12


@pytest.mark.parametrize("tensor", [1, 8])
def test_layer_tensors_add_up_to_the_layers_parameters(tensor):
    # the per-tensor split the reduce-scatters use and costs.params's count are one layer, two views
    from simcluster.costs import params as P
    from simcluster.spec import load_workload

    path = Path(__file__).resolve().parents[2] / "simcluster/data/validation/stacks/narayanan-zero3-175b-384.yaml"
    spec = load_workload(path, overrides=[f"parallelism.tensor={tensor}", f"parallelism.data={384 // tensor}"])
    assert sum(zero3_layer_tensors(spec)) == pytest.approx(P.layer_params(spec.model, tensor))


def test_deepspeed_holds_one_module_gathered_fsdp_two_layers(tmp_path):
    """ZeRO-3's buffer in the memory model: DeepSpeed fetches module by module and releases each after use, so its
    largest module's weights and whole gradient (2 · 4h²/t · 2 B); FSDP the current and the prefetched layer
    (2 · layer · 2 B; here the megatron stack's layer-wise ZeRO-3, without FSDP2's root unit). The 529.6B ZeRO-3
    row on 640 GPUs, which Narayanan et al. ran, then fits in 80 GiB."""
    from simcluster.costs import params as P
    from simcluster.costs.deepspeed_zero3 import live_gathered_params
    from simcluster.costs.memory import stage_memory
    from simcluster.spec import load_workload
    h = 4096
    ds = _wide(tmp_path, h)
    fsdp = _wide(tmp_path, h, "training.framework=megatron")
    assert live_gathered_params(ds.model, ds.training, 1) == 4 * h * h
    kw = dict(layers_on_stage=ds.model.layers, has_embedding=True, has_logits=True, microbatches_in_flight=1)
    a = stage_memory(ds.model, ds.training, ds.parallelism, **kw)
    b = stage_memory(fsdp.model, fsdp.training, fsdp.parallelism, **kw)
    layer = P.layer_params(ds.model, 1)
    assert b.buffers - a.buffers == pytest.approx(2 * 2 * (layer - 4 * h * h))
    row = load_workload(Path(__file__).resolve().parents[2] / "simcluster/data/validation/stacks/narayanan-zero3-530b-640.yaml")
    peak = max(build_plan(row).memory(s).total for s in range(row.parallelism.pipeline))
    assert 60 * 2**30 < peak < 80 * 2**30
