"""Stragglers and degraded links: rank symmetry no longer holds for the replicas they touch, which
are simulated GPU by GPU (partial fidelity; every GPU where that cannot be confined)."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.cli import main
from simcluster.errors import SpecError
from simcluster.lowering.lower import LoweringOptions
from simcluster.run import simulate_workload

LAYOUT = ("parallelism.tensor=2", "parallelism.pipeline=2", "parallelism.data=2")


def test_a_straggler_switches_to_partial_fidelity_and_slows_the_iteration(tmp_path):
    # without contention, so that compute times compare exactly (it slows each rank by its own overlap)
    calm = LoweringOptions(contention=False)
    base = simulate_workload(make_spec(tmp_path, *LAYOUT), calm)
    slow = simulate_workload(make_spec(tmp_path, *LAYOUT, "cluster.stragglers={5: 1.5}"), calm)
    assert base.tasks.meta["fidelity"] == "symmetric"
    # GPU 5 is tp 1, dp 0, pp 1: replica 0's four GPUs explicit, replica 1 one representative per stage
    assert slow.tasks.meta["fidelity"] == "partial" and sorted(slow.tasks.ranks) == [0, 1, 2, 4, 5, 6]
    assert [slow.tasks.multiplicity[r] for r in (0, 1, 2, 6)] == [1, 1, 2, 2]
    T0, T1 = base.summary["iteration_time_s"], slow.summary["iteration_time_s"]
    assert 1.2 * T0 < T1 < 1.5 * T0  # the whole pipeline waits for the slow GPU's stage
    # the straggler's compute is 1.5x its peers'
    tl = slow.result.timeline
    busy = lambda r: float((tl[(tl["rank"] == r) & (tl["stream"] == "compute")].eval("end_s - start_s")).sum())
    assert busy(5) == pytest.approx(1.5 * busy(4), rel=1e-6)


def test_a_degraded_link_slows_the_collectives_that_cross_it(tmp_path):
    layout = ("parallelism.tensor=8", "parallelism.pipeline=1", "parallelism.data=2", "cluster.nodes=2")
    base = simulate_workload(make_spec(tmp_path, *layout))
    names = [n for n in base.topo.link_names if n.startswith("gpu0->")]
    bad = simulate_workload(make_spec(tmp_path, *layout, f"cluster.degraded_links={{'{names[0]}': 0.25}}"))
    assert bad.tasks.meta["fidelity"] == "partial"  # node 0 = replica 0 explicit, replica 1 representative
    tp = lambda o: float(o.result.timeline.query("rank == 0 and stream == 'tp'").eval("end_s - start_s").sum())
    # the link moves bytes at a quarter of its rate; NCCL's latency term (base + 14 NVLink steps, about
    # 56 us per all-reduce, src/graph/tuning.cc) does not change, and is ~2/3 of this small model's TP time
    assert tp(bad) > 1.5 * tp(base)


def test_unknown_degraded_link_and_missing_straggler_are_input_errors(tmp_path, capsys):
    with pytest.raises(SpecError, match="cluster.degraded_links"):
        simulate_workload(make_spec(tmp_path, *LAYOUT, "cluster.degraded_links={'nope': 0.5}"))
    f = tmp_path / "w.yaml"
    assert main(["run", str(f), "--set", "cluster.stragglers={99: 2.0}", "--out", str(tmp_path / "o")]) == 2
    assert "stragglers" in capsys.readouterr().err


def test_mixed_devices_run_every_rank_at_its_own_speed(tmp_path):
    layout = ("parallelism.tensor=8", "parallelism.pipeline=2", "parallelism.data=1", "cluster.nodes=2")
    same = simulate_workload(make_spec(tmp_path, *layout))
    mixed = simulate_workload(make_spec(tmp_path, *layout, "cluster.node_devices={1: v100}"))
    assert mixed.tasks.meta["fidelity"] == "full"
    tl = mixed.result.timeline
    busy = lambda r: float(tl.query(f"rank == {r} and stream == 'compute'").eval("end_s - start_s").sum())
    # a V100 stage computes its (equal) share far slower than an A100: 125 against 312 TFLOP/s dense 16-bit
    # (datasheets), 2.5x at equal efficiency; at least 1.8x
    assert busy(8) > 2 * busy(0) * 0.9
    assert mixed.summary["iteration_time_s"] > 1.5 * same.summary["iteration_time_s"]
    assert mixed.summary["memory_capacity_bytes"] == 32 * 2**30  # the smaller device (V100 32 GB) decides
    # MFU is against the mean peak of the GPUs used: 8 A100 (312) and 8 V100 (125 TFLOP/s; NVIDIA datasheets)
    assert mixed.summary["mfu"] == pytest.approx(
        mixed.summary["model_tflops_per_gpu"] * 1e12 / ((312e12 + 125e12) / 2), rel=1e-12)


def test_node_devices_must_name_existing_nodes_and_devices(tmp_path):
    with pytest.raises(SpecError, match="node_devices"):
        make_spec(tmp_path, *LAYOUT, "cluster.node_devices={3: v100}")
    with pytest.raises(SpecError, match="unknown device"):
        make_spec(tmp_path, *LAYOUT, "cluster.node_devices={0: tpu-v9}")


EXPLICIT = """\
name: t
model: {layers: 4, hidden: 1024, heads: 16, seq_len: 1024, vocab: 32000}
training: {global_batch: 8, micro_batch: 1, precision: bf16}
parallelism: {tensor: 4, pipeline: 1, data: 2}
cluster: {path: %s}
"""


def test_a_failed_link_of_an_explicit_graph_is_routed_around(tmp_path):
    from pathlib import Path

    graph = Path(__file__).resolve().parent.parent / "topologies" / "examples" / "two-nodes-explicit.yaml"
    base = make_spec(tmp_path, base=EXPLICIT % graph)
    ok = simulate_workload(base)
    dead = simulate_workload(make_spec(tmp_path, "cluster.failed_links=['nic0.0->leaf', 'leaf->nic0.0']",
                                       base=EXPLICIT % graph))
    assert dead.tasks.meta["fidelity"] == "full"
    route = dead.topo.route(0, 4)
    names = [dead.topo.link_names[l] for l in route]
    assert "nic0.0->leaf" not in names and "nic0.1->leaf" in names  # around the dead NIC uplink
    # the data-parallel all-reduces now share nic0.1's uplink: slower
    dp = lambda o: float(o.result.timeline.query("stream == 'dp'").eval("end_s - start_s").sum())
    assert dp(dead) > 1.2 * dp(ok)


def test_failed_links_need_an_explicit_graph_and_a_connected_one(tmp_path):
    with pytest.raises(SpecError, match="explicit graph"):
        simulate_workload(make_spec(tmp_path, *LAYOUT, "cluster.failed_links=['gpu0->nvsw0']"))
    from pathlib import Path

    graph = Path(__file__).resolve().parent.parent / "topologies" / "examples" / "two-nodes-explicit.yaml"
    cut = "cluster.failed_links=['nic0.0->leaf', 'nic0.1->leaf']"
    with pytest.raises(SpecError, match="cannot reach"):
        simulate_workload(make_spec(tmp_path, cut, base=EXPLICIT % graph))
