"""Every constant the predictions rest on, its value and its source: the table in docs/constants.md.

    python -m simcluster.validation.constants > docs/constants.md

``tests/validation/test_constants.py`` fails when docs/constants.md differs from this output, so
the table cannot go stale. Values are read from the modules that use them (never restated here);
the sources are those modules' documented ones.
"""

from __future__ import annotations

from simcluster.catalogue import DEVICES, HOPPER_DEVICES
from simcluster.collectives import nccl
from simcluster.costs import devices as dev
from simcluster.costs.attention_kernels import with_attention_kernel
from simcluster.costs import efficiency as eff
from simcluster.costs import contention as cont
from simcluster.costs import eager
from simcluster.costs import deepspeed_zero3 as dz3
from simcluster.costs import frameworks as fw
from simcluster.costs import torch_step
from simcluster.costs import fp8_gemm as fp8g
from simcluster.costs import fp16_optimizer as fp16opt
from simcluster.costs import megatron_optimizer as mopt
from simcluster.costs import rng_state
from simcluster.costs import allocator as alloc
from simcluster.costs import memory as mem
from simcluster.costs import optimizer_states as ost
from simcluster.costs import reserve
from simcluster.plan import costing
from simcluster.plan import tp_overlap as tpo
from simcluster.topology import efficiency as links

MEASURED = "fitted to the H100 calibration in simcluster/data/calibration (python -m simcluster.costs.calibration)"


def _rows() -> list[tuple[str, str, str, str]]:
    """(constant, value, where, source)."""
    fwd = ", ".join(f"{c:g}" for c in eff.FLASH_FWD_COEF)
    bwd = ", ".join(f"{c:g}" for c in eff.FLASH_BWD_COEF)
    rows = [
        ("launch floor t_floor", f"{eff.LAUNCH_FLOOR_S * 1e6:.2f} µs", "costs/efficiency.py", MEASURED),
        ("launch softness p", f"{eff.LAUNCH_SOFTNESS:g}", "costs/efficiency.py", MEASURED),
        ("GEMM efficiency ceiling e_max", f"{eff.GEMM_EFF_MAX:g}", "costs/efficiency.py", MEASURED),
        ("GEMM half-efficiency size x_half", f"{eff.GEMM_SIZE_HALF:g}", "costs/efficiency.py", MEASURED),
    ]
    rows += [(f"bandwidth fraction, {kind}", f"{v:g}", "costs/efficiency.py", MEASURED)
             for kind, v in eff.BANDWIDTH_FRACTION.items()]
    rows += [
        ("flash attention forward coefficients", fwd, "costs/efficiency.py", MEASURED),
        ("flash attention backward coefficients", bwd, "costs/efficiency.py", MEASURED),
        ("flash attention caps (forward, backward)", f"{eff.FLASH_FWD_CAP:g}, {eff.FLASH_BWD_CAP:g}",
         "costs/efficiency.py", "1.1 × the best measured efficiency (stops extrapolation)"),
        ("TPU MXU padding tiles (rows, contraction and output)", f"{dev.MXU_ROWS}, {dev.MXU_TILE}",
         "costs/devices.py", "How to Scale Your Model, tpus.md: bf16[8,128] @ bf16[128,128] MXU op; axes "
         "padded to 128 (tpu-v3, tpu-v4)"),
        ("A100 flash efficiency below head dim 128: × (d/128)^α, α", f"{dev.A100_HEAD_DIM_EXPONENT:.3f}",
         "costs/devices.py", f"[AZURE] FlashAttention-2 on A100 at head dim 64, (2, 32, 8192, 64): "
         f"{dev.FA2_A100_AZURE_D64:g} TFLOP/s forward + backward, against the A100 curve there"),
        ("H100/H200 sustained over measured SM clock (GEMM, attention in a run)", f"{dev.H100_SUSTAINED_CLOCK_RATIO:.4f}",
         "costs/devices.py", "[H100CLK] 989.4 TFLOP/s rated at 1,830 MHz, over the calibration's 1,980 MHz bursts "
         "(calibration README)"),
        ("bf16 optimizer states: weights, gradients, Adam states; step bytes (training.optimizer_dtype)",
         f"{'/'.join(str(x) for x in ost.BF16_STATE_BYTES['adam'])} B, {ost.BF16_STEP_BYTES['adam']:g} B",
         "costs/optimizer_states.py", "NeMo megatron_base_model.py (24.09): store_params False when the optimizer "
         "dtype is the model's; Apex DistributedFusedAdam bf16 m, v and gradient buffer"),
        ("userbuffers' pipelined reduce-scatter chunks (the last exposed)", f"{tpo.TE_PIPELINE_SPLITS}",
         "plan/tp_overlap.py", "TransformerEngine v1.12 initialize_ub default num_splits; NeMo recipes' proj_fprop, "
         "fc2_fprop"),
        ("16-bit peak of the 500 W HBM2e H100 (torchtitan's benchmarks)", f"{dev.H100_500W_PEAK_FLOPS / 1e12:.0f} TFLOP/s",
         "costs/devices.py", "[TTPEAK] 'between SXM and NVL': geometric middle of torchtitan's 989 and 835 TFLOP/s"),
        ("flash backward / forward FLOPs", f"{eff.FLASH_BWD_FLOP_RATIO:g}", "costs/efficiency.py",
         "Dao 2023 (FlashAttention-2): two GEMM pairs for dQ/dK/dV plus recomputed scores"),
        ("kernel gap in a training loop", f"{costing.TRAINING_LOOP_KERNEL_GAP_S * 1e6:g} µs", "plan/costing.py",
         "set, not fitted: the host runs ahead of the GPU (results move < 1 % between 0 and 31 µs)"),
        ("optimizer bytes per parameter (adam, sgd)",
         ", ".join(f"{v:g}" for v in costing.OPTIMIZER_BYTES.values()), "plan/costing.py",
         "Adam reads master, gradient, m, v (16 B), writes master, m, v, 16-bit copy (14 B)"),
        ("optimizer kernels a step", f"{costing.OPTIMIZER_KERNELS}", "plan/costing.py",
         "multi-tensor apply: one launch per tensor group (set)"),
        ("Transformer Engine's block-scaled FP8 GEMM ceiling over the BF16 curve at the FP8 peak (te_blockwise)",
         f"{fp8g.TE_BLOCKWISE_RATIO:g}", "costs/fp8_gemm.py", "[TEGEMM] FP8 Block Scaling 22.882 vs BF16 32.014 ms a "
         "layer on H200 NVL, the model's quantize kernels held (the same model gives its per-tensor recipes 1.682× "
         "and 1.575× where TE measured 1.69× and 1.58×)"),
        ("host dispatch per eager op", f"{fw.HOST_OP_S * 1e6:g} µs", "costs/frameworks.py",
         "the 5–25 µs per-op host path of eager PyTorch (Python, autograd, dispatcher, launch); jax: 0"),
        ("DeepSpeed ZeRO-3 stage3_max_reuse_distance", f"{dz3.DEEPSPEED_MAX_REUSE_DISTANCE:g} parameters",
         "costs/deepspeed_zero3.py", "DeepSpeed v0.3.13–v0.4.x zero/constants.py default: kept weights past it are fetched again"),
        ("DeepSpeed ZeRO-3 stage3_param_persistence_threshold", f"{dz3.DEEPSPEED_PERSISTENCE_THRESHOLD:g} elements",
         "costs/deepspeed_zero3.py", "DeepSpeed v0.3.13–v0.4.x zero/constants.py default: smaller tensors (biases, "
         "layernorms) reduce-scattered one by one and re-gathered rank by rank after every step (_allgather_params)"),
        ("DeepSpeed ZeRO-3 host ops per rank of a collective", f"{dz3.DEEPSPEED_HOST_OPS_PER_RANK:g}",
         "costs/deepspeed_zero3.py", "v0.3.13 partition_parameters.py: a narrow view per rank, c10d's copy_ per rank "
         "(ProcessGroupNCCL list all_gather/reduce_scatter), each × the host dispatch per eager op"),
        ("DeepSpeed ZeRO-3 bytes per gathered weight", f"{dz3.DEEPSPEED_ZERO3_GATHER_BYTES:g}", "costs/deepspeed_zero3.py",
         "torch.zeros of the weight (2) and c10d's copy of the flat all-gather output into N views (2 + 2)"),
        ("DeepSpeed ZeRO-3 gradient bytes per weight before the reduce-scatter",
         f"{dz3.DEEPSPEED_ZERO3_GRAD_BYTES:g}", "costs/deepspeed_zero3.py",
         "bucket copy, div_ by N, c10d's flattening copy of the N views (4 B each; stage3.py v0.3.13)"),
        ("foreach Adam bytes per parameter", f"{torch_step.FOREACH_ADAM_BYTES:g}", "costs/torch_step.py",
         "torch.optim.AdamW's multi-tensor path: eight fp32 passes (module docstring lists them)"),
        ("clip_grad_norm_ bytes per gradient element (pytorch)", f"{torch_step.CLIP_GRAD_BYTES:g}", "costs/torch_step.py",
         "torch.nn.utils.clip_grad_norm_: _foreach_norm (read 4) and the unconditional _foreach_mul_ (4 + 4)"),
        ("autocast cast bytes per weight and forward", f"{costing.CAST_FWD_BYTES:g}", "plan/costing.py",
         "read the fp32 weight, write its bf16 copy (torch.autocast)"),
        ("FSDP2 all-gather copy-out bytes per weight", f"{fw.FSDP_COPY_OUT_BYTES:g}", "costs/frameworks.py",
         "split_with_sizes_copy of the bf16 gather buffer on the compute stream (torch FSDP2 _fsdp_collectives.py)"),
        ("eager RMSNorm extra bytes per element of x (forward, backward)",
         f"{eager.inventory_bytes('rmsnorm', False, 'x'):g}, {eager.inventory_bytes('rmsnorm', True, 'x'):g}",
         "costs/eager.py", "torchtitan RMSNorm's fp32 chain and its autograd derivatives, beyond a fused norm"),
        ("eager RoPE bytes per element of q or k (forward, backward)",
         f"{eager.inventory_bytes('rope.q', False, 'q'):g}, {eager.inventory_bytes('rope.q', True, 'q'):g}",
         "costs/eager.py", "torchtitan apply_rotary_emb: cast to fp32, complex multiply, cast back"),
        ("eager GPT/MPT backward: QKV split cat, bias-gradient sums (B per element of q; of a linear's output)",
         f"{eager.inventory_bytes('qkv.bwd.split_cat', True, 'q', kernels=eager.GPT_EAGER):g}, "
         f"{eager.inventory_bytes('qkv.bwd.bias_grad', True, 'q', kernels=eager.GPT_EAGER):g}",
         "costs/eager.py", "autograd's cat of dq, dk, dv (split_with_sizes_backward); addmm's bias gradient "
         "summed to [N] (llm-foundry MPT: no_bias false)"),
        ("Megatron-LM Adam step: bytes per updated weight (bf16, fp16; gradient buffer element bf16, fp16)",
         f"{mopt.UPDATED_BYTES['bf16']:g}, {mopt.UPDATED_BYTES['fp16']:g}; "
         f"{mopt.GRAD_BUFFER_BYTES['bf16']:g}, {mopt.GRAD_BUFFER_BYTES['fp16']:g} × {mopt.HELD_PASSES} per held weight",
         "costs/megatron_optimizer.py", "Megatron-LM 7fccd6a (2022) optimizer.py MixedPrecisionOptimizer.step: norm 4, "
         "FusedAdam 16+12, main-to-model copy 4+2 (fp16: cast 2+4, unscale 4+4); zero_grad_buffer and /= d"),
        ("Megatron-LM 2019 FP16_Optimizer per-tensor loops: bytes per parameter (waiting, queued)",
         f"{fp16opt.SYNC_BYTES:g}, {fp16opt.ASYNC_BYTES:g}", "costs/fp16_optimizer.py",
         "Megatron-LM abe36e2 (2019) fp16/: overflow check float(x.float().sum()) 2+4+4 and clip norm 4; "
         "master-grad copy 6, unscale mul_ 8, zero_grad 4+2, master-to-model copy's read 4"),
        ("Megatron-LM 2019 FP16_Optimizer host ops per tensor (waiting, queued)",
         f"{fp16opt.SYNC_OPS}, {fp16opt.ASYNC_OPS}", "costs/fp16_optimizer.py",
         "the per-tensor Python loops of fp16/fp16.py, loss_scaler.py, fp16util.py, mpu/grads.py at abe36e2"),
        ("Megatron-LM 2019 GPT-2 parameter tensors (per layer, outside the layers)",
         f"{fp16opt.TENSORS_PER_LAYER}, {fp16opt.OTHER_TENSORS}", "costs/fp16_optimizer.py",
         "mpu/transformer.py: 2 LayerNorms and 4 linears, weight and bias; word, position embeddings, final LayerNorm"),
        ("CUDA RNG-state copy (Megatron-LM 2019's fork and CheckpointFunction)", f"{rng_state.STATE_BYTES:,} B",
         "costs/rng_state.py", "PyTorch THCTensorRandom.cu THCRandom_get/setRNGState: cudaMemcpy of 200 MTGP32 "
         "states of 4,120 B"),
        ("RNG-state copies per layer (fork per forward; checkpoint per step)",
         f"{rng_state.FORK_COPIES}, {rng_state.CHECKPOINT_COPIES}", "costs/rng_state.py",
         "Megatron-LM abe36e2 mpu/random.py: fork 2 reads + 2 writes; CheckpointFunction 1 + 1 reads, 2 writes"),
        ("PCIe 3.0 x16 host link, one direction", f"{rng_state.PCIE3_X16_BYTES_PER_S / 1e9:.2f} GB/s",
         "costs/rng_state.py", "PCIe 3.0: 16 lanes × 8 GT/s × 128b/130b; pageable copies reach less (lower bound)"),
        ("gradient accumulation bytes per weight and microbatch", f"{fw.GRAD_ACCUM_BYTES:g}", "costs/frameworks.py",
         "cast the 16-bit gradient to fp32 and add it (autocast's .grad; DeepSpeed's update_hp_grads)"),
        ("compute slowdown beside communication", f"{cont.OVERLAP_COMPUTE_SLOWDOWN:g}", "costs/contention.py",
         "Lee et al. 2025 (arXiv:2507.03114): mean compute slowdown under overlapped collectives, A100/H100/MI250/MI210"),
        ("CUDA context", f"{mem.CUDA_CONTEXT_BYTES / 2**20:g} MiB", "costs/memory.py",
         "a PyTorch process's context and kernel images (~0.5 GiB on H100)"),
        ("cuBLAS workspace", f"{mem.CUBLAS_WORKSPACE_BYTES / 2**20:g} MiB", "costs/memory.py",
         "PyTorch's default on Hopper (:4096:8 = 8 × 4 MiB)"),
        ("NCCL buffers", f"{mem.NCCL_BUFFER_BYTES / 2**20:g} MiB", "costs/memory.py",
         "NCCL_BUFFSIZE 4 MiB × channels × peers over the TP/DP/PP communicators"),
        ("caching allocator: block rounding, small-request limit, small segment",
         f"{alloc.MIN_BLOCK} B, {alloc.SMALL_SIZE / 2**20:g} MiB, {alloc.SMALL_BUFFER / 2**20:g} MiB",
         "costs/allocator.py", "PyTorch c10/cuda/CUDACachingAllocator.cpp: kMinBlockSize, kSmallSize, kSmallBuffer"),
        ("caching allocator: 1–10 MiB segment, large threshold, large rounding",
         f"{alloc.LARGE_BUFFER / 2**20:g} MiB, {alloc.MIN_LARGE_ALLOC / 2**20:g} MiB, {alloc.ROUND_LARGE / 2**20:g} MiB",
         "costs/allocator.py", "PyTorch c10/cuda/CUDACachingAllocator.cpp: kLargeBuffer, kMinLargeAlloc, kRoundLarge"),
        ("allocator replay: steps, most tensors of a layer's transients", f"{reserve.STEPS}, {reserve.PIECES}",
         "costs/reserve.py", "set, not fitted: the first step allocates the optimizer states, later ones reuse "
         "their fragments; a layer's transients as [s, b, h] tensors"),
    ]
    src = "NCCL v2.8–v2.12 src/graph/tuning.cc (baseLat, hwLat)"
    rows += [(f"NCCL base latency, {algo}/{p}", f"{v * 1e6:g} µs", "collectives/nccl.py", src)
             for algo, by in nccl.BASE_LATENCY.items() for p, v in by.items()]
    rows += [(f"NCCL step latency, {cls} {algo}/{p}", f"{v * 1e6:g} µs", "collectives/nccl.py", src)
             for cls, by_algo in nccl.STEP_LATENCY.items() for algo, by in by_algo.items() for p, v in by.items()]
    rows += [("NCCL LL intra-node step factor across nodes", f"{nccl.LL_INTRA_FACTOR_MULTINODE:g}",
              "collectives/nccl.py", "NCCL v2.8–v2.12 src/graph/tuning.cc (intraLat *= 1.8)")]
    rows += [(f"link efficiency, {cls} (generic)", f"{v:g}", "topology/efficiency.py",
              "fitted to NCCL's published bus bandwidths where known; a generic factor otherwise")
             for cls, v in links.GENERIC.items()]
    rows += [(f"NVLink efficiency, {dev}", f"{v:.3f}", "topology/efficiency.py",
              "NCCL all-reduce bus bandwidth / NVLink bandwidth" if dev != "v100" else "estimate, not calibrated")
             for dev, v in links.NVLINK_BY_DEVICE.items()]
    rows += [(f"InfiniBand efficiency at {rate * 8 / 1e9:g} Gb/s", f"{v:g}", "topology/efficiency.py",
              "nccl-tests bus bandwidth across nodes / line rate") for rate, v in links.NIC_BY_RATE]
    rows += [(f"NIC efficiency measured, {name}, {rate * 8 / 1e9:g} Gb/s", f"{v:g}", "topology/efficiency.py", src)
             for name, (rate, v, src) in links.MEASURED_NICS.items()]
    return rows


def _devices() -> list[str]:
    out = ["| device | dense 16-bit peak | fp32 peak | memory | memory bandwidth | compute curves |",
           "|---|---|---|---|---|---|"]
    for name in DEVICES.names():
        d = DEVICES.get(name)
        cal = dev.device_calibration(name)
        curves = "measured (H100 calibration)" if name == "h100" else (
            "own calibration (below)" if cal.measured else
            "partly calibrated (below)" if any(c.measured for c in cal.curves().values()) else
            "H100's, at this device's datasheet peak and bandwidth (no data of its own)")
        out.append(f"| `{name}` | {d.peak_flops / 1e12:g} TFLOP/s | {d.peak_flops_fp32 / 1e12:g} TFLOP/s | "
                   f"{round(d.memory_bytes / 2**30, 1):g} GiB | {d.memory_bandwidth / 1e9:g} GB/s | {curves} |")
    return out


def _calibrations() -> list[str]:
    """One row per device and curve: ratio to the H100 fit, the resulting constant, sigma, source."""
    out = ["| device | curve | ratio to H100 | resulting constant | log-sigma | data? | source |",
           "|---|---|---|---|---|---|---|"]
    for name in DEVICES.names():
        cal = dev.device_calibration(name)
        value = {"gemm": f"e_max {cal.gemm_eff_max:.4f}, x_half {cal.gemm_size_half:g}",
                 "memory": f"copy {cal.bandwidth_fraction('copy'):.3f}, elementwise "
                           f"{cal.bandwidth_fraction('elementwise'):.3f}, normalization "
                           f"{cal.bandwidth_fraction('normalization'):.3f}",
                 "attention_fwd": f"cap {cal.flash_efficiency(*dev.FA2_BEST_SHAPE):.3f}",
                 "attention_bwd": f"cap {cal.flash_efficiency(*dev.FA2_BEST_SHAPE, backward=True):.3f}"}
        for curve, c in cal.curves().items():
            out.append(f"| `{name}` | {curve} | {c.ratio:.4g} | {value[curve]} | {c.sigma:g} | "
                       f"{'yes' if c.measured else 'no'} | {c.source} |")
        kernels = ("fa1", "fa2", "triton") if name in HOPPER_DEVICES else ("fa1", "triton") if name.startswith("a100") else ()
        for kernel in kernels:  # training.attention_kernel: the flash curves it swaps in
            k = with_attention_kernel(cal, kernel)
            for backward, c in ((False, k.attention_fwd), (True, k.attention_bwd)):
                out.append(f"| `{name}` | attention_{'bwd' if backward else 'fwd'}, {kernel} | {c.ratio:.4g} | cap "
                           f"{k.flash_efficiency(*dev.FA2_BEST_SHAPE, backward=backward):.3f} | {c.sigma:g} | yes | "
                           f"{c.source} |")
    return out


def render_constants() -> str:
    """The Markdown page docs/constants.md."""
    lines = ["# Calibrated and set constants", "",
             "Generated by `python -m simcluster.validation.constants` (a test keeps it current). Every",
             "constant a prediction uses, its value, the module that uses it and its source. Nothing here is",
             "fitted to a training run; what is fitted is fitted to kernel or collective measurements.", "",
             "| constant | value | where (simcluster/) | source |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | `{c}` | {d} |" for a, b, c, d in _rows()]
    lines += ["", "## Devices", "",
              "Datasheet figures (sources in `simcluster/catalogue.py`). Kernel times on a device are the",
              "H100 fit rescaled per curve by like-for-like published measurements (`simcluster/costs/devices.py`,",
              "whose docstring cites each figure); a curve with no data keeps the H100 curve at the device's own",
              "peak and says so.", ""]
    lines += _devices()
    lines += ["", "## Per-device calibration", "",
              "Ratio to the H100 fit, the constant it gives, the log-space sigma of kernel times that error bars",
              f"read (`device_calibration(name).sigma_*`; uncalibrated curves add {dev.UNCALIBRATED_SIGMA:g} in",
              "quadrature) and the source. Attention caps are the efficiencies at head dim 128, seq 16k, 16 heads.",
              ""]
    lines += _calibrations()
    lines += ["", "Sources:", ""] + [f"- [{tag}] {text}" for tag, text in dev.SOURCES.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_constants(), end="")
