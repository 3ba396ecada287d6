"""Partial symmetry: the replicas an asymmetry touches explicit, one representative for the rest,
agrees with simulating every GPU (full fidelity)."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.lowering.lower import LoweringOptions
from simcluster.run import cluster_topology, simulate_workload
from simcluster.topology.degrade import touched_gpus

TWO_NODES = ("cluster.nodes=2", "training.global_batch=32")
T2P2D4 = ("parallelism.tensor=2", "parallelism.pipeline=2", "parallelism.data=4", *TWO_NODES)
CASES = {
    "straggler on the representative's replica": (*T2P2D4, "cluster.stragglers={0: 1.5}"),
    "straggler in the last stage, tp 1": (*T2P2D4, "cluster.stragglers={15: 2.0}"),
    "two stragglers, two replicas, recompute": (
        "parallelism.tensor=1", "parallelism.pipeline=2", "parallelism.data=4", "training.recompute=full",
        "cluster.stragglers={3: 1.3, 4: 1.1}"),
    "interleaved, straggler mid-pipeline": (
        "parallelism.tensor=2", "parallelism.pipeline=4", "parallelism.data=2", *TWO_NODES,
        "parallelism.schedule=interleaved", "parallelism.virtual_stages=2", "cluster.stragglers={9: 1.5}"),
    "ZeRO-3, straggler": (*T2P2D4, "parallelism.zero_stage=3", "cluster.stragglers={6: 1.5}"),
    "context parallel, straggler": (
        "parallelism.tensor=2", "parallelism.context=2", "parallelism.pipeline=2", "parallelism.data=2",
        *TWO_NODES, "cluster.stragglers={13: 1.5}"),
    "degraded NVLink, sequence parallel, ZeRO-1": (
        "parallelism.tensor=4", "parallelism.pipeline=1", "parallelism.data=4", *TWO_NODES,
        "parallelism.sequence_parallel=true", "parallelism.zero_stage=1",
        "cluster.degraded_links={'gpu5->nvsw0': 0.3}"),
    "degraded NIC uplink, tp 8": (
        "parallelism.tensor=8", "parallelism.pipeline=1", "parallelism.data=2", *TWO_NODES,
        "cluster.degraded_links={'nic1.3->leaf0': 0.25}"),
    "degraded GPU-NIC link, ZeRO-2, and a straggler": (
        *T2P2D4, "parallelism.zero_stage=2", "cluster.degraded_links={'gpu10->nic1.2': 0.2}",
        "cluster.stragglers={1: 1.2}"),
    # full fidelity gives the degraded group its own algorithm (a ring, not the others' hierarchical one)
    "degraded NVLink on a data-parallel hop, context parallel": (
        "parallelism.tensor=2", "parallelism.context=2", "parallelism.pipeline=1", "parallelism.data=8",
        "cluster.nodes=4", "training.global_batch=64", "cluster.degraded_links={'gpu19->nvsw2': 0.5}"),
    "a V100 node among A100s": (
        "parallelism.tensor=8", "parallelism.pipeline=1", "parallelism.data=2", *TWO_NODES,
        "cluster.node_devices={1: v100}"),
}


@pytest.mark.parametrize("layout", list(CASES.values()), ids=list(CASES))
def test_partial_and_full_fidelity_agree(tmp_path, layout):
    spec = make_spec(tmp_path, *layout)
    part = simulate_workload(spec)  # auto picks partial
    full = simulate_workload(spec, LoweringOptions(fidelity="full"))
    assert part.tasks.meta["fidelity"] == "partial" and full.tasks.meta["fidelity"] == "full"
    assert len(part.tasks.ranks) < len(full.tasks.ranks) == spec.num_gpus
    assert sum(part.tasks.multiplicity.values()) == spec.num_gpus
    a, b = part.summary, full.summary
    assert a["iteration_time_s"] == pytest.approx(b["iteration_time_s"], rel=0.01)
    assert a["compute_utilization"] == pytest.approx(b["compute_utilization"], rel=0.01)
    assert a["comm_bytes_per_iteration"] == pytest.approx(b["comm_bytes_per_iteration"], rel=1e-9)
    assert a["model_flops_per_iteration"] == pytest.approx(b["model_flops_per_iteration"], rel=1e-9)


def test_the_asymmetry_costs_time_that_partial_fidelity_sees(tmp_path):
    layout = CASES["straggler in the last stage, tp 1"]
    base = simulate_workload(make_spec(tmp_path, *layout[:-1])).summary["iteration_time_s"]
    slow = simulate_workload(make_spec(tmp_path, *layout)).summary["iteration_time_s"]
    assert slow > 1.3 * base


@pytest.mark.parametrize("why", [
    ("cluster.stragglers={0: 1.5, 2: 1.5, 4: 1.5, 6: 1.5}",),  # every replica touched: nothing to save
    ("cluster.degraded_links={'gpu0->nvsw0': 0.5, 'nvsw0->gpu3': 0.5, 'gpu4->nvsw0': 0.5, 'gpu6->nvsw0': 0.5}",),
    ("parallelism.zero_stage=1", "parallelism.zero_shard=2", "cluster.stragglers={0: 1.5}"),  # hybrid sharding
    # two GPUs a NIC: the data-parallel groups of tensor ranks 0 and 1 share NICs (partial was 6 % slow)
    ("parallelism.data=8", "parallelism.zero_stage=2", "cluster.nodes=2", "cluster.inter_node.nics_per_node=4",
     "cluster.stragglers={1: 1.3}"),
])
def test_partial_falls_back_to_full_where_it_cannot_apply(tmp_path, why):
    spec = make_spec(tmp_path, "parallelism.tensor=2", "parallelism.pipeline=1", "parallelism.data=4",
                     "training.global_batch=32", *why)
    assert simulate_workload(spec).tasks.meta["fidelity"] == "full"


def test_touched_gpus_are_the_nodes_at_the_link_ends(tmp_path):
    topo = cluster_topology(make_spec(tmp_path, "cluster.nodes=4"))
    node = lambda n: frozenset(range(8 * n, 8 * n + 8))
    assert touched_gpus(topo, ["gpu9->nvsw1"]) == {9}  # a GPU's own link
    assert touched_gpus(topo, ["nvsw2->gpu20", "gpu27->nic3.3"]) == {20, 27}
    assert touched_gpus(topo, ["nic1.3->leaf0"]) == node(1)  # a NIC's uplink carries its node only
    assert touched_gpus(topo, ["no-such-link"]) is None
    big = cluster_topology(make_spec(tmp_path, "cluster.nodes=64"))  # 512 NICs: leaves under a spine
    leaf0 = {int(n[3:].split(".")[0]) for n in big.link_names if n.startswith("nic") and n.endswith("->leaf0")}
    assert 0 < len(leaf0) < 64
    assert touched_gpus(big, ["leaf0->spine"]) == frozenset(r for n in leaf0 for r in node(n))


def test_partial_on_a_homogeneous_cluster_is_symmetric(tmp_path):
    spec = make_spec(tmp_path, *T2P2D4, "fidelity=partial")
    part = simulate_workload(spec)
    sym = simulate_workload(spec, LoweringOptions(fidelity="symmetric"))
    assert part.tasks.meta["fidelity"] == "symmetric"
    assert part.summary == sym.summary


@pytest.mark.parametrize("nics, fidelity", [(8, "partial"), (4, "full")])
def test_data_parallel_groups_that_slow_each_other_are_simulated_gpu_by_gpu(tmp_path, monkeypatch, nics, fidelity):
    """With one NIC a GPU the stage's data-parallel groups do not meet and partial symmetry holds; with two GPUs a
    NIC the straggler's group runs after the others instead of beside them (full fidelity), which partial
    symmetry's one data-parallel task a stage cannot show, so auto runs full."""
    layout = ("model.layers=1", "model.hidden=512", "model.heads=8", "model.seq_len=256", "model.vocab=4096",
              "parallelism.tensor=4", "parallelism.pipeline=1", "parallelism.data=8", "parallelism.zero_stage=2",
              "training.micro_batch=2", "cluster.nodes=4", f"cluster.inter_node.nics_per_node={nics}",
              "cluster.stragglers={1: 1.3}")
    spec = make_spec(tmp_path, *layout)
    auto = simulate_workload(spec)
    assert auto.tasks.meta["fidelity"] == fidelity
    full = simulate_workload(spec, LoweringOptions(fidelity="full")).summary
    assert auto.summary["iteration_time_s"] == pytest.approx(full["iteration_time_s"], rel=0.01)
    if nics == 4:  # what partial symmetry would have said: every group at the straggler's time, sharing NICs
        import simcluster.lowering.partial as partial

        monkeypatch.setattr(partial, "_groups_slow_each_other", lambda plan, topo: False)
        part = simulate_workload(spec)
        assert part.tasks.meta["fidelity"] == "partial"
        assert part.summary["iteration_time_s"] > 1.03 * full["iteration_time_s"]
