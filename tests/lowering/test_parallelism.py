"""Sequence, context and ZeRO parallelism as the lowering builds them."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.lowering.lower import LoweringOptions
from simcluster.run import simulate_workload


def _moved(tasks, phase, layer_min=0):
    """Bytes each rank puts on links for the tasks of ``phase`` on transformer layers."""
    return sum(tr.nbytes * sum(tr.weights) for t in tasks.tasks
               if t.phase == phase and t.layer >= layer_min for tr in t.transfers)


def test_sequence_parallel_moves_the_bytes_of_the_all_reduces_it_replaces(tmp_path):
    """With blocking reductions; beside the weight gradients (tp_grad_overlap) sequence parallelism also
    all-gathers each block's saved input again in the backward: tests/plan/test_tp_grad_overlap.py."""
    base = ("parallelism.tensor=4", "parallelism.data=2", "training.global_batch=4",
            "parallelism.tp_grad_overlap=false")
    no_sp = simulate_workload(make_spec(tmp_path, *base), LoweringOptions(fuse=False))
    sp = simulate_workload(make_spec(tmp_path, *base, "parallelism.sequence_parallel=true"),
                           LoweringOptions(fuse=False))
    ops = lambda o: sorted({t.op for t in o.tasks.tasks if t.phase == "tp_comm" and t.layer >= 0})
    assert ops(no_sp) == ["all_reduce"] and ops(sp) == ["all_gather", "reduce_scatter"]
    assert _moved(sp.tasks, "tp_comm") == pytest.approx(_moved(no_sp.tasks, "tp_comm"), rel=1e-9)


@pytest.mark.parametrize("t", [2, 4, 8])
def test_sequence_parallel_cuts_activations_as_korthikanti_table_2(tmp_path, t):
    base = (f"parallelism.tensor={t}", "parallelism.data=1", "training.flash_attention=false",
            "cluster.nodes=1")
    m = lambda sp: simulate_workload(make_spec(tmp_path, *base, f"parallelism.sequence_parallel={sp}"),
                                     LoweringOptions(ideal_network=True)).details["memory"][0]
    spec = make_spec(tmp_path, *base)
    a, s, h = spec.model.heads, spec.model.seq_len, spec.model.hidden
    tp_only = 10 + 24 / t + 5 * a * s / (h * t)  # Korthikanti et al. 2022, Table 2
    tp_sp = 34 / t + 5 * a * s / (h * t)
    per_layer = lambda mem: mem["activations"]
    # the per-layer activations scale by the table's ratio (embedding/logit buffers aside)
    ratio = per_layer(m("true")) / per_layer(m("false"))
    assert ratio == pytest.approx(tp_sp / tp_only, rel=0.05)


def test_context_parallel_ring_overlaps_attention(tmp_path):
    spec = make_spec(tmp_path, "parallelism.context=2", "parallelism.tensor=2", "parallelism.data=2")
    out = simulate_workload(spec)
    tl = out.result.timeline
    g = tl[tl["rank"] == 0]
    cp = g[g["stream"] == "cp"]
    comp = g[g["stream"] == "compute"]
    assert len(cp) > 0
    overlap = 0.0
    for s0, e0 in zip(cp["start_s"], cp["end_s"]):
        c = comp[(comp["start_s"] < e0) & (comp["end_s"] > s0)]
        overlap += sum(min(e0, e) - max(s0, s) for s, e in zip(c["start_s"], c["end_s"]))
    assert overlap > 0.5 * float((cp["end_s"] - cp["start_s"]).sum())


def test_zero3_gathers_every_layer_forward_and_backward(tmp_path):
    spec = make_spec(tmp_path, "parallelism.data=8", "parallelism.zero_stage=3", "training.global_batch=16")
    out = simulate_workload(spec)
    gathers = [t for t in out.tasks.tasks if t.name.startswith("zero.all_gather L")]
    m, layers = spec.num_microbatches, spec.model.layers
    assert len(gathers) == 2 * m * layers  # each layer, each microbatch, forward and backward
    rs = [t for t in out.tasks.tasks if t.name.startswith("zero.reduce_scatter L")]
    assert len(rs) == m * layers
    z1 = simulate_workload(make_spec(tmp_path, "parallelism.data=8", "parallelism.zero_stage=1",
                                     "training.global_batch=16"))
    # ZeRO-3 moves more than ZeRO-1 (Rajbhandari et al. 2020 §7: 3Ψ against 2Ψ a step, here per
    # microbatch); whether it takes longer depends on how much of it the compute hides
    assert out.summary["comm_bytes_per_iteration"] > 1.5 * z1.summary["comm_bytes_per_iteration"]


def test_deepspeed_pipeline_zero1_all_reduces_its_gradients(tmp_path):
    """DeepSpeed's pipeline engine under ZeRO-1 all-reduces the data-parallel gradients
    (``buffered_allreduce_fallback``) and the ZeRO-1 step then all-gathers the weights: per stage it
    moves the gradients once more than Megatron's reduce-scatter + all-gather (2Ψ against 3Ψ of a ring,
    Rajbhandari et al. 2020 §7). Without a pipeline (DeepSpeed's plain engine) it reduce-scatters."""
    base = ("parallelism.data=4", "parallelism.zero_stage=1", "training.global_batch=8", "cluster.nodes=1",
            "model.tied_embeddings=false")  # no tied-embedding all-reduce beside the buckets
    pipe = ("parallelism.pipeline=2",)
    run = lambda *o: simulate_workload(make_spec(tmp_path, *base, *o), LoweringOptions(fuse=False))
    ops = lambda out, phase: sorted({t.op for t in out.tasks.tasks if t.phase == phase})
    ds_pipe = run(*pipe, "training.framework=deepspeed")
    mg_pipe = run(*pipe, "training.framework=megatron")
    ds_flat = run("training.framework=deepspeed")
    assert ops(ds_pipe, "dp_comm") == ["all_reduce"] and ops(ds_pipe, "zero_comm") == ["all_gather"]
    assert ops(mg_pipe, "dp_comm") == ["reduce_scatter"] and ops(ds_flat, "dp_comm") == ["reduce_scatter"]
    # a ring all-reduce moves twice a reduce-scatter's bytes: 2(d-1)/d of the gradients against (d-1)/d
    assert _moved(ds_pipe.tasks, "dp_comm", -1) == pytest.approx(2 * _moved(mg_pipe.tasks, "dp_comm", -1), rel=1e-6)
