"""Properties of every simulated run, on random valid layouts (hypothesis).

Profiles: ``ci`` (the default: >= 100 layouts across the suite) and ``full``
(``HYPOTHESIS_PROFILE=full pytest tests/test_properties.py``: >= 1,000). Every run also
passes the task and timeline invariants (``simulate_workload(check=True)``: every task
once, dependencies respected, no overlap on a stream, makespan >= critical path).
Counterexamples hypothesis finds are kept as ``@example`` regression cases.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from simcluster.errors import SpecError
from simcluster.run import simulate_workload
from simcluster.spec import load_workload

settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("full", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
SMALL = max(10, settings.default.max_examples // 5)  # the properties that simulate twice

TOY = "workloads/toy-8gpu.yaml"


@st.composite
def layouts(draw: st.DrawFn) -> list[str]:
    """A layout of a small GPT on 1–4 nodes (DGX A100 most often, DGX H100, DGX-1's uneven cube-mesh) under each
    stack's bundle (some invalid: those are skipped)."""
    schedule = draw(st.sampled_from(["gpipe", "1f1b", "interleaved", "zero-bubble"]))
    p = draw(st.sampled_from([1, 2, 4]))
    t = draw(st.sampled_from([1, 2, 4, 8]))
    d = draw(st.sampled_from([1, 2, 4]))
    c = draw(st.sampled_from([1, 1, 2]))
    v = draw(st.sampled_from([2, 3])) if schedule == "interleaved" else 1
    mb = draw(st.sampled_from([1, 2]))
    m = draw(st.integers(1, 3)) * max(p, 1)
    return [f"parallelism.schedule={schedule}", f"parallelism.pipeline={p}", f"parallelism.tensor={t}",
            f"parallelism.data={d}", f"parallelism.context={c}", f"parallelism.virtual_stages={v}",
            f"training.micro_batch={mb}", f"training.global_batch={m * mb * d}",
            f"model.layers={p * v * draw(st.integers(1, 2))}", "model.hidden=512", "model.heads=8",
            f"model.kv_heads={draw(st.sampled_from([8, 2, 1]))}", "model.seq_len=256", "model.vocab=4096",
            f"parallelism.sequence_parallel={str(draw(st.booleans()) and t > 1).lower()}",
            f"parallelism.zero_stage={draw(st.sampled_from([0, 1, 2, 3]))}",
            f"training.recompute={draw(st.sampled_from(['none', 'selective', 'full']))}",
            f"cluster.nodes={draw(st.sampled_from([1, 2, 4]))}",
            f"training.framework={draw(st.sampled_from(['megatron', 'megatron', 'deepspeed', 'pytorch', 'jax']))}",
            f"cluster.preset={draw(st.sampled_from(['dgx-a100-80gb', 'dgx-a100-80gb', 'dgx-h100', 'dgx1-v100']))}"]


def _spec(sets: list[str]):
    try:
        return load_workload(TOY, sets)
    except SpecError:
        assume(False)
        raise


@given(layouts())
@example(["parallelism.schedule=interleaved", "parallelism.pipeline=4", "parallelism.tensor=4",
          "parallelism.data=2", "parallelism.virtual_stages=4", "training.micro_batch=2",
          "training.global_batch=32", "model.layers=32", "parallelism.sequence_parallel=true",
          "cluster.nodes=4"])  # fused unit started before the previous unit's last TP collective ended
def test_every_run_keeps_its_figures_consistent(sets):
    spec = _spec(sets)
    s = simulate_workload(spec).summary  # raises InvariantError if the timeline breaks an invariant
    T = s["iteration_time_s"]
    assert T > 0
    assert s["tokens_per_s"] == pytest.approx(spec.training.global_batch * spec.model.seq_len / T, rel=1e-12)
    assert 0 < s["mfu"] <= 1 and 0 < s["hfu"] <= 1 and s["mfu"] <= s["hfu"] * (1 + 1e-12)
    assert 0 <= s["bubble_fraction"] < 1 and 0 <= s["exposed_comm_fraction"] < 1
    assert 0 < s["compute_utilization"] <= 1 + 1e-9
    assert s["fits_in_memory"] == (s["peak_memory_bytes"] <= s["memory_capacity_bytes"])


@settings(max_examples=SMALL)
@given(layouts())
def test_more_global_batch_never_shortens_the_iteration(sets):
    spec = _spec(sets)
    bigger = load_workload(TOY, sets + [f"training.global_batch={2 * spec.training.global_batch}"])
    t1 = simulate_workload(spec).summary["iteration_time_s"]
    t2 = simulate_workload(bigger).summary["iteration_time_s"]
    assert t2 >= t1 * (1 - 1e-9)


@settings(max_examples=SMALL)
@given(layouts())
def test_a_faster_device_never_slows_the_iteration(sets):
    device = ["cluster.device.name=a100-80gb", "cluster.device.memory=85899345920",
              "cluster.device.memory_bandwidth=2.039e12", "cluster.device.peak_flops_fp32=19.5e12"]
    spec = _spec(sets + device + ["cluster.device.peak_flops=312e12"])
    faster = load_workload(TOY, sets + device + ["cluster.device.peak_flops=624e12"])  # 2× the bf16 peak
    t1 = simulate_workload(spec).summary["iteration_time_s"]
    t2 = simulate_workload(faster).summary["iteration_time_s"]
    assert t2 <= t1 * (1 + 1e-9)


@settings(max_examples=max(5, SMALL // 2))
@given(layouts())
@example(["parallelism.schedule=gpipe", "parallelism.pipeline=1", "parallelism.tensor=1", "parallelism.data=2",
          "training.global_batch=2", "model.layers=1", "parallelism.zero_stage=2",
          "cluster.nodes=1"])  # full fidelity made one ZeRO reduce-scatter per data-parallel replica
@example(["parallelism.schedule=gpipe", "parallelism.pipeline=2", "parallelism.tensor=1", "parallelism.data=4",
          "training.global_batch=8", "model.layers=2", "parallelism.zero_stage=3",
          "cluster.nodes=1"])  # ... and joined a backward ZeRO-3 gather to the forward one (deadlock, wrong time)
@example(["parallelism.schedule=gpipe", "parallelism.pipeline=1", "parallelism.tensor=1", "parallelism.data=2",
          "training.global_batch=2", "model.layers=2", "parallelism.zero_stage=3", "cluster.nodes=1"])
@example(["parallelism.schedule=1f1b", "parallelism.pipeline=1", "parallelism.tensor=2", "parallelism.data=4",
          "training.global_batch=8", "model.layers=2", "parallelism.zero_stage=3", "cluster.nodes=1",
          "training.framework=deepspeed"])  # full fidelity deadlocked: a replica's fetch waited for the last
# reduce-scatter of a replica lowered before it (DeepSpeed's fetch sync)
@example(["parallelism.schedule=1f1b", "parallelism.pipeline=2", "parallelism.tensor=1", "parallelism.data=4",
          "training.global_batch=16", "model.layers=2", "cluster.nodes=1",
          "cluster.preset=dgx1-v100"])  # symmetric was 4 % fast: stage 0's representative sends over 2 NVLinks, GPU 3 over 1
def test_symmetric_and_full_fidelity_agree(sets):
    spec = _spec(sets)
    assume(spec.num_gpus <= 32)
    full = simulate_workload(load_workload(TOY, sets + ["fidelity=full"])).summary
    if spec.cluster.uneven_node:  # DGX-1: no GPU stands for its peers; auto simulates them all, symmetric is refused
        with pytest.raises(SpecError, match="nvlink-mesh"):
            load_workload(TOY, sets + ["fidelity=symmetric"])
        assert simulate_workload(spec).summary["iteration_time_s"] == full["iteration_time_s"]
        return
    sym = simulate_workload(load_workload(TOY, sets + ["fidelity=symmetric"])).summary
    assert full["iteration_time_s"] == pytest.approx(sym["iteration_time_s"], rel=0.01)
