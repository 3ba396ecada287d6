"""Hybrid sharding (``parallelism.zero_shard``): ZeRO within groups of z data-parallel ranks,
replicated across them (PyTorch HSDP; PaLM §4: 256-way sharding inside a pod, 2-way data
parallelism across pods)."""

from __future__ import annotations

import pytest

from simcluster.errors import SpecError
from simcluster.run import lower_workload, simulate_workload
from simcluster.spec import load_workload

TOY = "workloads/toy-8gpu.yaml"
BASE = ["parallelism.tensor=1", "parallelism.pipeline=1", "parallelism.data=8", "training.global_batch=16",
        "training.micro_batch=2"]


def _spec(zero: int, z: int | None, *more: str):
    return load_workload(TOY, BASE + [f"parallelism.zero_stage={zero}"] + ([f"parallelism.zero_shard={z}"] if z else [])
                         + list(more))


def test_weights_and_states_shard_over_the_group_only():
    """ZeRO-3 (Rajbhandari et al. 2020 §5): 2 + 2 + 12 bytes a parameter over the shard group: z, not d."""
    plan, _, _ = lower_workload(_spec(3, 2))
    mem = plan.memory(0)
    n = plan.stage_params(0)
    assert mem.weights == pytest.approx(2 * n / 2) and mem.optimizer_states == pytest.approx(12 * n / 2)
    whole, _, _ = lower_workload(_spec(3, None))
    assert whole.memory(0).weights == pytest.approx(2 * n / 8)


def test_gathers_in_the_shard_group_and_one_all_reduce_across_replicas():
    plan, _, tg = lower_workload(_spec(3, 2, "fidelity=full"))
    gathers = {t.group for t in tg.tasks if t.name.startswith("zero.all_gather L")}
    assert gathers == {(0, 1), (2, 3), (4, 5), (6, 7)}
    replicas = [t for t in tg.tasks if t.name == "dp.all_reduce shard replicas"]
    assert {t.group for t in replicas} == {(0, 2, 4, 6), (1, 3, 5, 7)}
    # each rank's gradient shard: the stage's parameters × 4 bytes (fp32 main_grad) / z
    assert all(t.nbytes == pytest.approx(plan.stage_params(0) * 4 / 2) for t in replicas)


@pytest.mark.parametrize("zero", [1, 2, 3])
def test_symmetric_and_full_fidelity_agree(zero):
    sym = simulate_workload(_spec(zero, 4, "fidelity=symmetric")).summary["iteration_time_s"]
    full = simulate_workload(_spec(zero, 4, "fidelity=full")).summary["iteration_time_s"]
    assert full == pytest.approx(sym, rel=0.01)


def test_the_shard_must_divide_data_and_needs_zero():
    with pytest.raises(SpecError, match="zero_shard 3 does not divide data 8"):
        _spec(3, 3)
    with pytest.raises(SpecError, match="needs zero_stage"):
        _spec(0, 2)


@pytest.mark.parametrize("zero, gathered", [(1, True), (2, True), (3, False)])
def test_only_zero_1_and_2_gather_the_weights_after_the_step(zero, gathered):
    """ZeRO 1 and 2 keep full 16-bit weights on every rank, so the updated shards are all-gathered
    after the step; ZeRO-3 keeps them sharded and gathers layer by layer in the next forward
    (Rajbhandari et al. 2020 §5)."""
    _, _, tg = lower_workload(_spec(zero, None))
    assert any(t.name == "zero.all_gather params" for t in tg.tasks) == gathered
