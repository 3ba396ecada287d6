"""The published measurements behind the per-device calibration, by the tag its records cite.

:mod:`simcluster.costs.devices` restates each figure it uses beside its constant and cites it as
``[TAG]``; the full citation is here (re-exported as ``devices.SOURCES``). The constants table in
``docs/constants.md`` lists them (``python -m simcluster.validation.constants``).
"""

from __future__ import annotations

#: The published measurements behind the ratios, by the tag the records cite.
SOURCES: dict[str, str] = {
    "MAMF": "S. Bekman, Machine Learning Engineering, compute/accelerator/README.md, 'Maximum Achievable Matmul "
            "FLOPS comparison table' (mamf-finder.py: brute-force shape search, mean of 100 iterations), BF16: "
            "A100 SXM 271.2 TFLOP/s (torch 2.6) and 267.9 (CUDA 12.1); H100 SXM 794.5 (torch 2.7) and 792.1 "
            "(CUDA 12.1), noted 'H200 is the same'",
    "H100CLK": "NVIDIA H100 datasheet: 989.4 TFLOP/s dense BF16 (H100 SXM) = 528 tensor cores x 1,024 FLOP per "
               "clock x 1,830 MHz, the compute clock it is rated at (S. Bekman, Machine Learning Engineering "
               "744d01e, compute/accelerator/README.md: '1830MHz is NVIDIA's official compute clock for H200 and "
               "H100', the 1,980 MHz max boost gives 1,070); the A100's 312 TFLOP/s is rated at its 1,410 MHz boost "
               "clock (NVIDIA A100 whitepaper)",
    "MARK": "Markidis et al., 'NVIDIA Tensor Core Programmability, Performance & Precision', IPDPSW 2018, "
            "abstract: cuBLAS GEMM on Tesla V100 tensor cores up to 83 Tflops/s (of 125) in mixed precision",
    "AZURE": "Azure/AI-benchmarking-guide, Azure_Results/ND_A100_v4, ND_H100_v5, ND_H200_v5 results: HBM copy "
             "(BabelStream kernels) A100-SXM4-80GB 1.61 TB/s, H100 SXM 2.90, H200 4.01; FlashAttention-2 "
             "(head dim 128, batch 2, seq 8192) H100 327.9, H200 329.3 TFLOP/s; A100 fp16 cuBLASLt TFLOP/s "
             "1024^3 119.4, 2048^3 221.8, 4096^3 228.0, 8192^3 253.7, 16384^3 256.5, 6144x12288x12288 250.8, "
             "802816x192x768 157.8, 1024x2145x1024 132.8",
    "BABEL": "BabelStream (Deakin et al.) CUDA runs posted publicly, copy kernel, fp64, 268 MB arrays: "
             "A100-SXM4-80GB 1709.4 GB/s (Tursa, NERSC-10 BabelStream benchmark README); A100-SXM4-40GB "
             "1400.3 and 1394.6 GB/s (ALCF Polaris, ALCF Beginners Guide, BabelStream 5.0 and 4.0); Tesla "
             "V100 16 GB 811.7 GB/s (Isambard, BabelStream 4.0; same 900 GB/s HBM2 as the SXM2 part)",
    "FA2": "T. Dao, 'FlashAttention-2' (arXiv:2307.08691), section 1: 'up to 73% of the theoretical max "
           "throughput in the forward pass, and up to 63% ... in the backward pass' on A100 80GB SXM4; the "
           "benchmark grid (section 4.1): sequence 512-16k, batch x sequence = 16k tokens, hidden 2048, head "
           "dim 64 or 128, with and without causal mask",
    "FA2FIG": "T. Dao, 'FlashAttention-2' (arXiv:2307.08691), Figure 4 (Dao-AILab/flash-attention "
              "assets/flash2_a100_fwd_bwd_benchmark.png, 2023-07-17): attention forward + backward on A100 80GB "
              "SXM4, TFLOP/s as labelled, FlashAttention-2, causal, head dim 128, sequence 512-16k: 99, 133, "
              "155, 173, 182, 189; without the mask: 187, 196, 201, 203 from 2k to 16k; causal head dim 64: 88, "
              "119, 140, 156, 165, 171",
    "PALLAS": "JAX documentation, Pallas TPU guide 'Matrix Multiplication' (docs/pallas/tpu/matmul.ipynb, "
              "jax-ml/jax), cell 'XLA matmul': jnp.matmul bf16 on TPU v5e (197 TFLOP/s, four 128x128 MXUs per "
              "core), mean of 100 timeit calls including host dispatch: 8192^3 6.047 ms = 181.8 TFLOP/s = "
              "92.30 % of peak; 4096^3 84.33 %; 1024^3 9.13 % (dispatch-bound)",
    "SCALEBOOK": "J. Austin et al., 'How to Scale Your Model' (jax-ml/scaling-book, 2025): tpus.md, 'Weight "
                 "matrices need to be padded to at least size 128 ... smaller axes are padded to 128' and the MXU "
                 "op bf16[8,128] @ bf16[128,128] (128x128 MXU on every generation before v6e); profiling.md, "
                 "'Looking at a real(ish) example profile': on TPU v2 the per-core product bf16[8192,8192] x "
                 "[8192,16384] (a 4-way data, 2-way model sharding of [32x1024, 8192] x [8192, 32768]) takes 96 ms "
                 "in the profile against 95.6 ms at the book's 23 TFLOP/s per core",
    "SDPA": "pytorch/pytorch issue #142132 (2024-12-05, torch 2.6.0.dev20241204+cu124, H100): tritonbench "
            "flash_attention (batch 1, 24 heads, seq 4608, head dim 128), TFLOP/s: torch SDPA as dispatched "
            "329.483, cuDNN 9.1 631.338, FlashAttention-3 631.827; 'This is expected' (maintainer, pointing to "
            "#141133: the cuDNN backend deprioritized). pytorch/pytorch issue #138907 (2024-10-25) quotes the "
            "fixed priority order flash_attention, efficient_attention, math, cudnn_attention; huggingface/"
            "transformers PR #48163 (2026-08-20): SDPA 'picks its backend by a fixed priority that puts "
            "FlashAttention first', cuDNN '1.7-2.3x faster' on Hopper for training shapes; KempnerInstitute/"
            "KempnerForge issue #41 (2026-04-19): 'SDPA currently dispatches to FA2, not FA3' (FA3 is opt-in, "
            "torch.nn.attention.activate_flash_attention_impl, pytorch issue #131309)",
    "FA2FIGH100": "T. Dao, 'FlashAttention-2' (arXiv:2307.08691), Figure 7 (Dao-AILab/flash-attention "
                  "assets/flash2_h100_fwd_bwd_benchmark.png, 2023-07-17): attention forward + backward on H100 80GB "
                  "SXM5, TFLOP/s as labelled, causal, head dim 128, sequence 512-16k: FlashAttention 98, 109, 108, "
                  "126, 135, 137; FlashAttention-2 163, 221, 265, 294, 308, 328. [FA2FIG] (A100), same panel: "
                  "FlashAttention 55, 62, 69, 76, 80, 83",
    "FA2H100": "T. Dao, 'FlashAttention-2' (arXiv:2307.08691), section 4.1: 'running the same implementation on "
               "H100 GPUs (using no special instructions ...) we obtain up to 335 TFLOPs/s' (forward + backward, "
               "Fig. 7)",
    "FA2TRITON": "T. Dao, 'FlashAttention-2' (arXiv:2307.08691), section 4.1, A100 80GB SXM4: 'FlashAttention-2 "
                 "is around 1.3-1.5x faster than FlashAttention in Triton in the forward pass and around 2x faster in "
                 "the backward pass' (FlashAttention in Triton: flash_attn/flash_attn_triton.py of the same repository, "
                 "which llm-foundry's attn_impl: triton copies)",
    "TTPEAK": "pytorch/torchtitan benchmarks/llama3_h100_202412_torchtitan.md, Hardware: 'H100 GPU ... 96GB HBM2e ... "
              "the default 500W power limit'; footnote 2: 'HBM2e-based SXM H100 with lower TDP, the actual peak "
              "TFLOPs number is between SXM and NVL, and we don't know its exact value'; torchtitan/utils.py "
              "get_peak_flops at 9dec370 (data from NVIDIA's H100 page, dense): SXM 989e12, NVL 835e12, PCIe 756e12",
    "FP8GEMM": "FP8 GEMM on H800 SXM (same tensor cores as H100 SXM, 1,979 TFLOP/s dense FP8): TileLang "
               "benchmark/matmul_fp8/README.md (GitHub xwhzz/tilelang, a copy of tile-ai/tilelang), M = N = 8192, K = 16384: 1,523 TFLOP/s (K = 4096: 1,378); "
               "deepseek-ai/DeepGEMM release (Feb 2025): 'up to 1350+ FP8 TFLOPS' on Hopper with fine-grained "
               "(1x128 / 128x128) scaling",
    "MAMF8": "S. Bekman, Machine Learning Engineering, compute/accelerator/README.md (744d01e, 2026-08), 'Maximum "
             "Achievable Matmul FLOPS comparison table', FP8 (float8_e4m3fn, torch._scaled_mm with per-tensor scales, "
             "i.e. cuBLASLt): H100 SXM 1402.6 of 1979 TFLOP/s, 70.9 % (torch 2.7.0+cu126, best shape "
             "1024x9216x14336); H200 SXM 1453.4, 73.4 % (torch 2.7.1+cu128)",
    "TEGEMM": "NVIDIA/TransformerEngine docs/examples/gemm_profiling/gemm_profiling.rst (PR #2863, 2026-06-01), 'Worked "
              "Example: 5B Model on H200': H200 NVL, hidden 4096, FFN 16384, 31 x 512 tokens, the 12 GEMMs of a layer "
              "(fprop, dgrad, wgrad of QKV, attention out, MLP up and down), autocast (quantization included), ms a "
              "layer: BF16 32.014, FP8CurrentScaling 20.285, FP8DelayedScaling 18.978, FP8 Block Scaling 22.882",
}
