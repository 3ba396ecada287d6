"""The caching-allocator model (simcluster.costs.allocator) on constructed sequences, the replayed
reserve (simcluster.costs.reserve), and the memory model's moments (simcluster.costs.memory).

The allocator's rules are PyTorch's ``c10/cuda/CUDACachingAllocator.cpp`` (kMinBlockSize 512 B,
kSmallSize 1 MiB, kSmallBuffer 2 MiB, kLargeBuffer 20 MiB, kMinLargeAlloc 10 MiB, kRoundLarge
2 MiB, best fit per stream and pool, split above 1 MiB of rest in the large pool, segments never
released); every expected figure below is worked out by hand from those rules.
"""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.costs import params as P
from simcluster.costs.allocator import CachingAllocator, round_size, segment_size
from simcluster.costs.memory import (WORKSPACE_BYTES, activation_bytes_per_layer, loss_transient_bytes,
                                     stage_extra_activation_bytes, stage_memory)
from simcluster.costs.reserve import replay_reserve
from simcluster.metrics.summary import _warnings

MiB = 2**20


def test_requests_round_to_512_bytes_and_segments_by_pool():
    assert [round_size(n) for n in (1, 512, 513, 1000)] == [512, 512, 1024, 1024]
    assert segment_size(round_size(1000)) == 2 * MiB  # small pool
    assert segment_size(1 * MiB) == 2 * MiB  # 1 MiB is still small
    assert segment_size(1 * MiB + 512) == 20 * MiB  # 1-10 MiB: a 20 MiB segment
    assert segment_size(10 * MiB - 512) == 20 * MiB
    assert segment_size(10 * MiB) == 10 * MiB  # from 10 MiB: rounded to 2 MiB
    assert segment_size(10 * MiB + 512) == 12 * MiB


def test_best_fit_split_and_a_new_segment_when_only_fragments_are_free():
    a = CachingAllocator()
    a.malloc("A", 3 * MiB)  # a 20 MiB segment: A 3, free 17
    a.malloc("B", 3 * MiB)  # split from it: A 3, B 3, free 14
    assert (a.reserved, a.allocated) == (20 * MiB, 6 * MiB)
    a.free("A")  # a 3 MiB hole before B
    a.malloc("C", 5 * MiB)  # the hole is too small: the 14 MiB tail
    assert a.reserved == 20 * MiB
    a.malloc("D", 4 * MiB)  # 3 MiB hole, 9 MiB tail: the tail; 3 + 5 MiB free in fragments
    a.malloc("E", 6 * MiB)  # 8 MiB free in total, no block of 6: a new 20 MiB segment
    assert a.reserved == 40 * MiB
    a.malloc("F", 15 * MiB)  # ≥ 10 MiB: its own segment rounded to 2 MiB (16 MiB)
    assert a.reserved == 56 * MiB
    # the 1 MiB left of F's segment is not split off (the large pool splits above 1 MiB): F's block is
    # 16 MiB, and PyTorch counts a block's size as allocated
    assert a.peak_allocated == (3 + 5 + 4 + 6 + 16) * MiB


def test_freed_neighbours_merge_into_one_block():
    a = CachingAllocator()
    for k in "XYZ":
        a.malloc(k, 6 * MiB)  # 18 MiB of one 20 MiB segment
    for k in "XZY":
        a.free(k)
    a.malloc("W", 19 * MiB)  # fits only in the merged 20 MiB block
    assert a.reserved == 20 * MiB and len(a.segments) == 1


def test_blocks_are_per_stream_and_small_requests_share_2_mib_segments():
    a = CachingAllocator()
    a.malloc("x", 12 * MiB, "s1")
    a.free("x")
    a.malloc("y", 12 * MiB, "s2")  # the cached block is s1's
    assert a.reserved == 24 * MiB
    for i in range(4):
        a.malloc(("small", i), 512 * 1024)  # four 512 KiB tensors in one 2 MiB segment
    assert a.reserved == 26 * MiB


def test_a_long_lived_tensor_between_freed_ones_grows_the_reserve():
    """The fragmentation of a training step: large temporaries freed, a persistent tensor placed in
    their cached block, the temporaries again: a new segment."""
    a = CachingAllocator()
    a.malloc("t", 100 * MiB)
    a.free("t")
    a.malloc("state", 40 * MiB)  # best fit: the cached 100 MiB block, split
    a.malloc("t", 100 * MiB)  # 60 MiB left there: a new 100 MiB segment
    assert a.reserved == 200 * MiB and a.peak_allocated == 140 * MiB


def _torchtitan_like(tmp_path, **over):
    """helpers_spec's base (8 layers, h 1024, s 1024, V 32000) as torchtitan runs Llama: FSDP2 over 8,
    full recompute, one microbatch a step; ``over`` replaces keys by section."""
    keys = {"model": {"mlp": "swiglu", "ffn_hidden": 2816, "tied_embeddings": "false"},
            "training": {"framework": "pytorch", "recompute": "full", "flash_attention": "true",
                         "global_batch": 8, "micro_batch": 1},
            "parallelism": {"data": 8, "zero_stage": 3}}
    for k, v in over.items():
        keys[k] = {**keys[k], **v}
    return make_spec(tmp_path, *(f"{sec}.{k}={v}" for sec, kv in keys.items() for k, v in kv.items()))


def test_last_stage_peaks_at_the_larger_of_the_loss_and_the_first_recompute(tmp_path):
    spec = _torchtitan_like(tmp_path, training={"framework": "megatron"}, parallelism={"zero_stage": 1})
    m, tr, par = spec.model, spec.training, spec.parallelism
    L = m.layers
    per = activation_bytes_per_layer(m, tr, par)
    full = activation_bytes_per_layer(m, tr, par, recompute="none")
    extra = stage_extra_activation_bytes(m, tr, par, has_embedding=True, has_logits=True)
    logits = extra - stage_extra_activation_bytes(m, tr, par, has_embedding=True, has_logits=False)
    loss = loss_transient_bytes(m, tr, par)
    got = stage_memory(m, tr, par, layers_on_stage=L, has_embedding=True, has_logits=True, microbatches_in_flight=1)
    assert got.activations == pytest.approx(L * per + extra + max(loss, full - logits), rel=1e-12)


def test_fsdp2_gradients_wait_for_the_backward_and_the_root_stays_unsharded(tmp_path):
    one = _torchtitan_like(tmp_path)  # global 8 = micro 1 × data 8: one microbatch a step
    m, tr, par = one.model, one.training, one.parallelism
    kw = {"layers_on_stage": m.layers, "has_embedding": True, "has_logits": True, "microbatches_in_flight": 1}
    got = stage_memory(m, tr, par, **kw)
    assert got.gradients == 0.0
    n = P.layer_params(m) * m.layers + P.embedding_params(m) + P.output_params(m)
    assert got.weights == pytest.approx(4 * n / 8) and got.optimizer_states == pytest.approx(8 * n / 8)
    root = P.embedding_params(m) + P.output_params(m)
    assert got.buffers == pytest.approx(WORKSPACE_BYTES + 2 * 2 * P.layer_params(m) + 2 * root)
    acc = _torchtitan_like(tmp_path, training={"global_batch": 16})  # two microbatches: accumulated into existing grads
    assert stage_memory(acc.model, acc.training, acc.parallelism, **kw).gradients == pytest.approx(4 * n / 8)


@pytest.mark.parametrize("over", [
    {},
    {"training": {"recompute": "selective"}},
    {"training": {"framework": "megatron", "recompute": "none"}, "parallelism": {"zero_stage": 1}},
    {"parallelism": {"pipeline": 2, "data": 4}, "training": {"framework": "megatron", "global_batch": 16}},
])
def test_the_reserve_is_never_negative_and_the_reserved_peak_holds_the_tensors(tmp_path, over):
    spec = _torchtitan_like(tmp_path, **over)
    m, tr, par = spec.model, spec.training, spec.parallelism
    p = par.pipeline
    for s in range(p):
        kw = {"layers_on_stage": m.layers // p, "has_embedding": s == 0, "has_logits": s == p - 1,
              "microbatches_in_flight": p - s}
        reserve = replay_reserve(m, tr, par, **kw).bytes
        assert reserve >= 0.0
        assert stage_memory(m, tr, par, **kw).total + reserve >= stage_memory(m, tr, par, **kw).total


def test_a_device_without_room_flushes_the_whole_cached_segments_and_counts_a_retry():
    """release_cached_blocks: every free block that is a whole segment goes back (cudaFree), split segments with a
    live block stay; the retried cudaMalloc counts num_alloc_retries."""
    a = CachingAllocator(limit=60 * MiB)
    a.malloc("big", 30 * MiB)  # its own 30 MiB segment
    a.malloc("x", 3 * MiB)  # a 20 MiB segment: x 3, free 17
    a.malloc("y", 3 * MiB)  # split from it: x, y, free 14
    a.free("big")  # 30 MiB cached, whole
    a.free("y")  # merged into the tail: x 3, free 17 (split: stays)
    assert (a.reserved, a.retries) == (50 * MiB, 0)
    a.malloc("z", 16 * MiB)  # best fit: the 17 MiB tail, no new segment
    assert (a.reserved, a.retries) == (50 * MiB, 0)
    a.malloc("w", 32 * MiB)  # no cached block of 32 MiB; 50 + 32 > 60: flush the whole 30 MiB segment, retry
    assert a.retries == 1 and a.reserved == (20 + 32) * MiB and a.peak_reserved == 52 * MiB
    assert len(a.segments) == 2  # x+z's split segment and w's
    unbounded = CachingAllocator()
    for op, key, size in [("m", "big", 30), ("m", "x", 3), ("m", "y", 3), ("f", "big", 0), ("f", "y", 0),
                          ("m", "z", 16), ("m", "w", 32)]:
        unbounded.malloc(key, size * MiB) if op == "m" else unbounded.free(key)
    assert unbounded.reserved == 82 * MiB and unbounded.retries == 0  # the same sequence without a limit


def test_the_replayed_reserve_stays_within_the_room_the_device_leaves(tmp_path):
    """A stage whose unbounded reserve is larger than the device leaves beside its tensors: replayed with that
    limit, the reserve shrinks to fit (the allocator flushes its cache when it runs out of room) and equals the
    unbounded one whenever the room suffices."""
    spec = _torchtitan_like(tmp_path, training={"recompute": "none"})
    m, tr, par = spec.model, spec.training, spec.parallelism
    kw = {"layers_on_stage": m.layers, "has_embedding": True, "has_logits": True, "microbatches_in_flight": 1}
    free = replay_reserve(m, tr, par, **kw)
    assert free.bytes > 0 and free.retries_per_step == 0
    assert replay_reserve(m, tr, par, **kw, headroom=2 * free.bytes) == free  # room enough: the same replay
    tight = replay_reserve(m, tr, par, **kw, headroom=free.bytes / 2)
    assert tight.bytes <= free.bytes / 2
    assert replay_reserve(m, tr, par, **kw, headroom=-1.0) == free  # the tensors alone do not fit: no bound


def test_a_run_at_the_edge_of_the_device_reserves_no_more_than_the_device(tmp_path):
    """The 529.6B GPT under DeepSpeed ZeRO-3 on 640 A100 80GB (Narayanan et al. 2021, Table 2): its tensors fit
    (67.6 GiB) but the unbounded reserve (81.2 GiB) would not; the summary's reserved peak stays within the device."""
    from simcluster.run import simulate_workload
    from simcluster.spec import load_workload
    from simcluster.validation.corpus import DATA

    s = simulate_workload(load_workload(str(DATA / "stacks" / "narayanan-zero3-530b-640.yaml"))).summary
    assert s["fits_in_memory"] and s["peak_memory_bytes"] < s["memory_capacity_bytes"]
    assert s["peak_memory_bytes"] < s["peak_memory_reserved_bytes"] <= s["memory_capacity_bytes"]
    assert s["allocator_retries_per_step"] >= 0


def test_a_warning_names_the_cache_flushes():
    s = {"fits_in_memory": True, "peak_memory_bytes": 70 * 2**30, "peak_memory_reserved_bytes": 79 * 2**30,
         "memory_capacity_bytes": 80 * 2**30, "exposed_comm_fraction": 0.0, "bubble_fraction": 0.0,
         "allocator_retries_per_step": 3}
    assert any("3 cache flush" in w and "not simulated" in w for w in _warnings(s))
    assert not any("flush" in w for w in _warnings({**s, "allocator_retries_per_step": 0}))


def test_a_warning_when_the_reserve_does_not_fit_though_the_tensors_do():
    s = {"fits_in_memory": True, "peak_memory_bytes": 70 * 2**30, "peak_memory_reserved_bytes": 85 * 2**30,
         "memory_capacity_bytes": 80 * 2**30, "exposed_comm_fraction": 0.0, "bubble_fraction": 0.0}
    assert any("allocator" in w and "85.0 GiB" in w for w in _warnings(s))
    assert not any("allocator" in w for w in _warnings({**s, "peak_memory_reserved_bytes": 75 * 2**30}))


def test_pytorch_statistics_leave_out_the_context_and_nccl_buffers():
    """torch.cuda.max_memory_allocated / max_memory_reserved (what torchtitan and most training logs print) count the
    caching allocator's segments only: the summary's torch_* peaks are the peaks without the CUDA context and NCCL's
    buffers, and a jax run (XLA's own allocator) has none."""
    from pathlib import Path

    from simcluster.costs.memory import CUDA_CONTEXT_BYTES, NCCL_BUFFER_BYTES, OUTSIDE_ALLOCATOR_BYTES
    from simcluster.run import simulate_workload
    from simcluster.spec import load_workload

    assert OUTSIDE_ALLOCATOR_BYTES == CUDA_CONTEXT_BYTES + NCCL_BUFFER_BYTES < WORKSPACE_BYTES  # cuBLAS's is counted
    toy = Path(__file__).resolve().parents[2] / "workloads" / "toy-8gpu.yaml"
    s = simulate_workload(load_workload(str(toy), overrides=["training.framework=pytorch"])).summary
    assert s["torch_max_memory_allocated_bytes"] == s["peak_memory_bytes"] - OUTSIDE_ALLOCATOR_BYTES
    assert s["torch_max_memory_reserved_bytes"] == s["peak_memory_reserved_bytes"] - OUTSIDE_ALLOCATOR_BYTES
    assert s["torch_max_memory_reserved_bytes"] >= s["torch_max_memory_allocated_bytes"] > 0
    jax = simulate_workload(load_workload(str(toy), overrides=["training.framework=jax"])).summary
    assert "torch_max_memory_allocated_bytes" not in jax and "torch_max_memory_reserved_bytes" not in jax
