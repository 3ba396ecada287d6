"""Rank symmetry: simulating one rank per stage agrees with simulating every rank."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.lowering.lower import LoweringOptions
from simcluster.run import simulate_workload

LAYOUTS = [
    ("parallelism.tensor=2", "parallelism.pipeline=2", "parallelism.data=2"),
    ("parallelism.tensor=1", "parallelism.pipeline=2", "parallelism.data=4", "training.recompute=full"),
    ("parallelism.tensor=4", "parallelism.pipeline=1", "parallelism.data=2", "parallelism.sequence_parallel=true"),
    ("parallelism.tensor=8", "parallelism.pipeline=1", "parallelism.data=2", "cluster.nodes=2",
     "parallelism.zero_stage=1"),
    ("parallelism.tensor=2", "parallelism.pipeline=4", "parallelism.data=2", "cluster.nodes=2",
     "parallelism.schedule=interleaved", "parallelism.virtual_stages=2"),
    # the embedding's and the head's weight gathers both carry "L-1": full fidelity's replicas joined the head's to
    # the embedding's (a cycle: every task of the iteration waited)
    ("parallelism.tensor=2", "parallelism.pipeline=1", "parallelism.data=4", "parallelism.zero_stage=1",
     "parallelism.overlap_param_gather=true"),
]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: ",".join(x.split("=")[0].split(".")[-1] + "=" + x.split("=")[1] for x in l))
def test_symmetric_and_full_fidelity_agree(tmp_path, layout):
    spec = make_spec(tmp_path, *layout)
    sym = simulate_workload(spec, LoweringOptions(fidelity="symmetric"))
    full = simulate_workload(spec, LoweringOptions(fidelity="full"))
    assert len(full.tasks.ranks) == spec.num_gpus
    assert len(sym.tasks.ranks) == spec.parallelism.pipeline
    assert sym.summary["iteration_time_s"] == pytest.approx(full.summary["iteration_time_s"], rel=0.01)
    assert sym.summary["comm_bytes_per_iteration"] == pytest.approx(
        full.summary["comm_bytes_per_iteration"], rel=1e-3)
    assert sym.summary["model_flops_per_iteration"] == pytest.approx(
        full.summary["model_flops_per_iteration"], rel=1e-9)


def test_fusion_does_not_change_the_figures(tmp_path):
    # stages on different nodes: pipeline sends leave through NICs, the tensor groups' NVLink
    # ports carry nothing else, so all but the last microbatch's units may be fused
    spec = make_spec(tmp_path, "parallelism.tensor=2", "parallelism.pipeline=2", "parallelism.data=4",
                     "training.global_batch=32", "cluster.nodes=2")
    fused = simulate_workload(spec, LoweringOptions(fuse=True))
    plain = simulate_workload(spec, LoweringOptions(fuse=False))
    assert len(fused.tasks.tasks) < len(plain.tasks.tasks) / 2
    for key in ("iteration_time_s", "bubble_fraction", "exposed_comm_fraction", "comm_bytes_per_iteration"):
        assert fused.summary[key] == pytest.approx(plain.summary[key], rel=1e-6, abs=1e-12)
    a, b = fused.result.timeline, plain.result.timeline
    gpu = lambda t: t[t["rank"] >= 0].sort_values(["rank", "stream", "start_s"]).reset_index(drop=True)
    assert len(gpu(a)) == len(gpu(b))
    assert (gpu(a)["task"] == gpu(b)["task"]).all()


@pytest.mark.parametrize("zero", [2, 3])
def test_deepspeed_zero_under_full_fidelity_agrees_with_symmetric(tmp_path, zero):
    # DeepSpeed's ZeRO-3 fetch waits for the rank's last gradient reduce-scatter: under full fidelity the
    # reduce-scatter task is shared by the replicas, and a replica lowered later waited for the last one of
    # the iteration before it could issue it (a deadlock)
    spec = make_spec(tmp_path, "parallelism.tensor=2", "parallelism.pipeline=1", "parallelism.data=4",
                     "training.framework=deepspeed", f"parallelism.zero_stage={zero}")
    sym = simulate_workload(spec, LoweringOptions(fidelity="symmetric")).summary
    full = simulate_workload(spec, LoweringOptions(fidelity="full")).summary
    assert full["iteration_time_s"] == pytest.approx(sym["iteration_time_s"], rel=1e-9)
    assert full["host_wait_fraction"] == pytest.approx(sym["host_wait_fraction"], rel=1e-9)


def test_an_uneven_node_is_simulated_gpu_by_gpu(tmp_path):
    """DGX-1's hybrid cube-mesh links GPU pairs with 1 or 2 NVLinks (GPU 0 → 4: two, GPU 3 → 7: one): stage 0's
    first GPU cannot stand for its peers, so ``auto`` simulates every GPU and ``symmetric`` is refused."""
    from simcluster.errors import SpecError
    from simcluster.lowering.lower import resolve_fidelity
    from simcluster.topology.intra import DGX1_NVLINKS

    layout = ("parallelism.tensor=1", "parallelism.pipeline=2", "parallelism.data=4", "cluster.preset=dgx1-v100")
    spec = make_spec(tmp_path, *layout)
    assert spec.cluster.uneven_node and len(set(DGX1_NVLINKS.values())) > 1
    assert resolve_fidelity(spec, LoweringOptions()) == "full"
    auto = simulate_workload(spec)
    assert len(auto.tasks.ranks) == spec.num_gpus
    full = simulate_workload(spec, LoweringOptions(fidelity="full"))
    assert auto.summary["iteration_time_s"] == full.summary["iteration_time_s"]
    with pytest.raises(SpecError, match="nvlink-mesh"):
        make_spec(tmp_path, *layout, "fidelity=symmetric")
    with pytest.raises(ValueError, match="unevenly"):
        resolve_fidelity(spec, LoweringOptions(fidelity="partial"))
    # a node of NVSwitch (or a mesh of another size) is even: one GPU per stage stands for its peers
    assert not make_spec(tmp_path, *layout[:3]).cluster.uneven_node
