"""The simulator against closed forms (docs/validation.md, "Checks against closed forms")."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.collectives import plan_collective
from simcluster.costs.compute import ComputeModel
from simcluster.costs.flops import hardware_flops_per_iteration, model_flops_per_iteration
from simcluster.engine import simulate
from simcluster.plan.costing import op_time
from simcluster.lowering.lower import LoweringOptions
from simcluster.lowering.task import TaskGraph
from simcluster.metrics import check_invariants
from simcluster.run import simulate_workload
from simcluster.topology.build import build_topology
from simcluster.workload import model_ops


US = 1e-6
#: NCCL's ring latency per protocol (src/graph/tuning.cc v2.8-v2.12): (baseLat, NVLink step, network step)
#: and the protocol's share of the bus bandwidth for all-reduce (LL 1/4, LL128 0.92, Simple 1).
NCCL_RING = {"LL": (3.6 * US, 0.47 * US, 2.7 * US, 1 / 4), "LL128": (10.0 * US, 1.9 * US, 4.0 * US, 0.92),
             "Simple": (8.4 * US, 3.4 * US, 9.6 * US, 1.0)}


def nccl_ring_all_reduce(n: int, k: int, S: float, B: float) -> float:
    """NCCL's ring all-reduce time on n ranks over k nodes, its fastest protocol:
    min_p base_p + (2(n-1) - 2(k-1)) nvl_p + 2(k-1) net_p + 2(n-1)/n S / (B f_p) (LL's NVLink step x1.8 if k > 1)."""
    return min(base + (2 * (n - 1) - 2 * (k - 1)) * nvl * (1.8 if p == "LL" and k > 1 else 1) + 2 * (k - 1) * net
               + 2 * (n - 1) / n * S / (B * f) for p, (base, nvl, net, f) in NCCL_RING.items())


def _run_collective(topo, op, group, nbytes, algorithm="ring", mirrors=()):
    tg = TaskGraph()
    tr = plan_collective(op, group, nbytes, topo, algorithm=algorithm, mirror_offsets=mirrors)
    tg.add(kind="collective", name=op, ranks=(group[0],), stream="dp", transfers=tr, nbytes=nbytes)
    res = simulate(tg, topo)
    check_invariants(tg, res.start, res.end, res.released_by)
    return res.end[0]


@pytest.mark.parametrize("n", [2, 4, 8])
@pytest.mark.parametrize("S", [1e6, 256e6])
def test_ring_all_reduce_in_a_node_matches_closed_form(tmp_path, n, S):
    spec = make_spec(tmp_path)
    topo = build_topology(spec.cluster)
    group = tuple(range(n))
    B = min(topo.link_bandwidth[l] for l in topo.route(0, 1))
    expected = nccl_ring_all_reduce(n, 1, S, B)
    assert _run_collective(topo, "all_reduce", group, S) == pytest.approx(expected, rel=1e-9)


def test_ring_all_reduce_across_nodes_matches_closed_form(tmp_path):
    # one GPU per node on a fat tree: every hop crosses NIC, leaf (and maybe spine)
    spec = make_spec(tmp_path, "cluster.nodes=4")
    topo = build_topology(spec.cluster)
    group = (0, 8, 16, 24)
    n, S = 4, 64e6
    hops = list(zip(group, group[1:] + group[:1]))
    B = min(topo.link_bandwidth[l] for a, b in hops for l in topo.route(a, b))
    expected = nccl_ring_all_reduce(n, n, S, B)
    assert _run_collective(topo, "all_reduce", group, S) == pytest.approx(expected, rel=0.01)


def test_mirrored_groups_contend_for_a_shared_nic(tmp_path):
    # 8 identical 2-member groups (one GPU on each of 2 nodes) leave through the node's NICs:
    # with 8 NICs each has its own, with 1 NIC they share it and the bandwidth term is 8x.
    S = 256e6
    times = {}
    for nics in (8, 1):
        spec = make_spec(tmp_path, "cluster.nodes=2", f"cluster.inter_node.nics_per_node={nics}")
        topo = build_topology(spec.cluster)
        times[nics] = _run_collective(topo, "all_reduce", (0, 8), S, mirrors=tuple(range(1, 8)))
    assert times[1] / times[8] == pytest.approx(8.0, rel=0.05)


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
@pytest.mark.parametrize("p,m", [(2, 4), (4, 8), (4, 16), (8, 8)])
def test_bubble_fraction_equals_closed_form(tmp_path, schedule, p, m):
    spec = make_spec(tmp_path, f"parallelism.pipeline={p}", f"training.global_batch={m}",
                     f"parallelism.schedule={schedule}", "model.layers=8")
    opts = LoweringOptions(ideal_network=True, include_optimizer=False, include_embedding_head=False)
    out = simulate_workload(spec, opts)
    assert out.summary["bubble_fraction"] == pytest.approx((p - 1) / (m + p - 1), rel=0.01)


@pytest.mark.parametrize("p,m,v", [(2, 4, 2), (4, 8, 2), (4, 4, 4)])
def test_interleaved_bubble_fraction_equals_closed_form(tmp_path, p, m, v):
    spec = make_spec(tmp_path, f"parallelism.pipeline={p}", f"training.global_batch={m}",
                     "parallelism.schedule=interleaved", f"parallelism.virtual_stages={v}",
                     "model.layers=16")
    opts = LoweringOptions(ideal_network=True, include_optimizer=False, include_embedding_head=False)
    out = simulate_workload(spec, opts)
    assert out.summary["bubble_fraction"] == pytest.approx((p - 1) / (v * m + p - 1), rel=0.01)


def test_single_op_time_is_its_roofline(tmp_path):
    """An operator costs one kernel of its closed-form shape, never less than the datasheet roofline."""
    spec = make_spec(tmp_path)
    cm = ComputeModel(build_topology(spec.cluster).device, "bf16", kernel_overhead_s=0.0)
    ops = model_ops(spec.model, spec.training).by_name()
    b, s, h = spec.training.micro_batch, spec.model.seq_len, spec.model.hidden
    peak, hbm = 312e12, 2039e9  # A100 SXM4 80 GB datasheet (the dgx-a100-80gb preset's GPU)
    # the MLP's up projection (Shoeybi et al. 2019 §3): Y[b·s, 4h] = X[b·s, h]·W, 2·b·s·h·4h FLOPs
    fc1 = ops["fc1"]
    assert fc1.gemm == (b * s, 4 * h, h) and fc1.fwd_flops == 2 * b * s * h * 4 * h
    t_fc1 = op_time(fc1, cm, 1, 1, False, True, False)
    assert t_fc1 == pytest.approx(cm.gemm_time(b * s, 4 * h, h), rel=1e-12)
    moved = 2 * (b * s * h + h * 4 * h + b * s * 4 * h)  # read X and W, write Y (bf16)
    assert t_fc1 >= max(fc1.fwd_flops / peak, moved / hbm)
    # a layernorm reads and writes the b·s·h activations once
    ln = ops["ln1"]
    assert ln.fwd_bytes == 2 * 2 * b * s * h
    t_ln = op_time(ln, cm, 1, 1, False, True, False)
    assert t_ln == pytest.approx(cm.memory_time(ln.fwd_bytes, "layernorm"), rel=1e-12)
    assert t_ln >= ln.fwd_bytes / hbm
    # and the engine runs a lone compute task for exactly its duration
    tg = TaskGraph()
    tg.add(kind="compute", name="fc1", ranks=(0,), stream="compute", duration=t_fc1)
    assert simulate(tg, build_topology(spec.cluster)).end[0] == pytest.approx(t_fc1, rel=1e-15)


@pytest.mark.parametrize("recompute", ["none", "selective", "full"])
@pytest.mark.parametrize("layout", [("1", "1", "1"), ("2", "2", "2"), ("4", "2", "1")])
def test_simulated_flops_match_closed_form(tmp_path, recompute, layout):
    t, p, d = layout
    spec = make_spec(tmp_path, f"parallelism.tensor={t}", f"parallelism.pipeline={p}",
                     f"parallelism.data={d}", f"training.recompute={recompute}")
    out = simulate_workload(spec)
    T = out.summary["iteration_time_s"]
    n = spec.num_gpus
    assert out.summary["model_tflops_per_gpu"] * 1e12 * T * n == pytest.approx(
        model_flops_per_iteration(spec.model, spec.training), rel=1e-9)
    assert out.summary["hardware_tflops_per_gpu"] * 1e12 * T * n == pytest.approx(
        hardware_flops_per_iteration(spec.model, spec.training), rel=1e-9)


def test_invariant_checker_catches_a_task_before_its_dependency(tmp_path):
    from simcluster.metrics import InvariantError

    out = simulate_workload(make_spec(tmp_path, "parallelism.pipeline=2"))
    start, end = list(out.result.start), list(out.result.end)
    victim = next(t for t in out.tasks.tasks if t.deps)
    start[victim.id] = end[victim.deps[0]] - 1e-3
    with pytest.raises(InvariantError):
        check_invariants(out.tasks, start, end)


def test_zero_bubble_has_a_smaller_bubble_than_1f1b(tmp_path):
    opts = LoweringOptions(ideal_network=True, include_optimizer=False, include_embedding_head=False)
    out = {}
    for schedule in ("1f1b", "zero-bubble"):
        spec = make_spec(tmp_path, "parallelism.pipeline=4", "training.global_batch=8",
                         f"parallelism.schedule={schedule}", "model.layers=8")
        out[schedule] = simulate_workload(spec, opts)
    ob, zb = out["1f1b"].summary, out["zero-bubble"].summary
    # ZB-H1 (Qi et al., "Zero Bubble (Almost) Pipeline Parallelism", ICLR 2024, §2): the same peak
    # memory as 1F1B, its bubble (p-1)(F+B+W) cut to (p-1)(F+B-W) by W passes filling it
    assert zb["bubble_fraction"] < 0.85 * ob["bubble_fraction"]
    assert zb["iteration_time_s"] < ob["iteration_time_s"]
    assert zb["model_flops_per_iteration"] == pytest.approx(ob["model_flops_per_iteration"], rel=1e-9)
    assert zb["peak_memory_bytes"] == ob["peak_memory_bytes"]
