"""FP8 GEMM ceilings on Hopper (``training.precision: fp8``): which GEMM kernels a recipe runs and how close to
the FP8 peak they come, relative to the BF16 ceiling the device's calibration measured.

Sources ([FP8GEMM], [MAMF], [MAMF8], [TEGEMM]): :data:`simcluster.costs.device_sources.SOURCES`.
"""

from __future__ import annotations

from simcluster.catalogue import FP8_PEAK_FLOPS
from simcluster.costs.devices import H100_MAMF_FRACTION, SIGMA_H100_GEMM, Curve, combine_sigmas, half_log_spread

# --- [FP8GEMM] best FP8 GEMM, TFLOP/s: the best large shape, and DeepGEMM's headline ------------------
FP8_GEMM_BEST_TFLOPS: tuple[float, float] = (1523.0, 1350.0)
# --- [MAMF8] cuBLASLt FP8 GEMM (torch._scaled_mm, per-tensor scales), MAMF, TFLOP/s -----------------------
#: [MAMF8] H100 SXM 1402.6 (torch 2.7.0+cu126, the BF16 row's own release), H200 SXM 1453.4 (2.7.1+cu128).
MAMF_FP8_TFLOPS: dict[str, float] = {"h100": 1402.6, "h200": 1453.4}
#: Transformer Engine's FP8 recipes (``training.fp8_recipe``): per-tensor scales (delayed, current), whose GEMMs
#: are cuBLASLt's; DeepSeek-V3's fine-grained blocks (§3.3.2), whose GEMMs are DeepGEMM-style kernels; Transformer
#: Engine's Float8BlockScaling (te_blockwise: the same blocks on cuBLASLt's block-scaled GEMMs, Megatron-Core's
#: --fp8-recipe blockwise).
FP8_RECIPES: tuple[str, ...] = ("delayed", "current", "blockwise", "te_blockwise")
# --- [TEGEMM] Transformer Engine's GEMM profiling guide, H200 NVL, a 5B model's 12 GEMMs, autocast, ms a layer ---
#: BF16 32.014, FP8CurrentScaling 20.285, FP8DelayedScaling 18.978, FP8 Block Scaling 22.882 (fprop, dgrad, wgrad of
#: QKV, attention out, MLP up and down at 15,872 tokens, hidden 4,096, FFN 16,384).
TE_GEMM_PROFILE_MS: dict[str, float] = {"bf16": 32.014, "current": 20.285, "delayed": 18.978, "te_blockwise": 22.882}
#: r_fp8 of Transformer Engine's block-scaled GEMMs on Hopper: the ratio at which this module's model of [TEGEMM]'s
#: layer (its GEMMs on this curve, each tensor quantized once in both layouts, 2 + 2·(1 + 4/128) B an element) takes
#: 22.882/32.014 of its BF16 time (``tests/costs/test_fp8_gemm.py`` re-derives it; the same model gives the per-tensor
#: recipes 1.682× and 1.575× over BF16 where [TEGEMM] measured 1.69× and 1.58×). Pre-quantized timings of the
#: block-scaled GEMM alone do not exist (Hopper's cuBLASLt has no 2D-by-2D block-scaled GEMM, [TEGEMM]), so the
#: quantize kernels are the model's and the GEMM carries the rest.
TE_BLOCKWISE_RATIO: float = 0.751


def fp8_gemm_curve(name: str, recipe: str = "delayed") -> Curve | None:
    """The FP8 GEMM curve of a device with FP8 tensor cores (None without): the BF16 curve's shape at the FP8
    peak, its ceiling scaled by r_fp8 = (best FP8 GEMM / FP8 peak) / (best BF16 / BF16 peak).

    Per-tensor scaling (``delayed``, ``current``): cuBLASLt's FP8 GEMM, which Transformer Engine calls, measured by
    the same tool and release as the BF16 ceiling ([MAMF8]: ``torch._scaled_mm``): r_fp8 = (1402.6 / 1979) / 0.802
    = 0.884 on H100 (H200: its own row, 1453.4, 0.916); sigma adds half the log spread of the two rows'
    efficiencies, ln(1453.4 / 1402.6) / 2 = 0.018. Fine-grained blocks (``blockwise``, DeepSeek-V3's 1x128 /
    128x128): r_fp8 = (1523 / 1979) / 0.802 = 0.96 ([FP8GEMM] against [MAMF]); sigma adds half the log spread
    of its two figures, ln(1523 / 1350) / 2 = 0.06. The half-efficiency size is the BF16 fit's (no FP8 shape
    sweep with the same tool: an assumption)."""
    if recipe not in FP8_RECIPES:
        raise ValueError(f"unknown FP8 recipe {recipe!r}; known: {', '.join(FP8_RECIPES)}")
    peak = FP8_PEAK_FLOPS.get(name)
    if peak is None:
        return None
    if recipe == "te_blockwise":
        return Curve(TE_BLOCKWISE_RATIO, True, f"[TEGEMM] FP8 Block Scaling {TE_GEMM_PROFILE_MS['te_blockwise']} vs BF16 "
                     f"{TE_GEMM_PROFILE_MS['bf16']} ms a layer (autocast, H200 NVL)",
                     combine_sigmas(SIGMA_H100_GEMM, half_log_spread(tuple(MAMF_FP8_TFLOPS.values()))))
    if recipe == "blockwise":
        ratio = max(FP8_GEMM_BEST_TFLOPS) * 1e12 / peak / H100_MAMF_FRACTION
        return Curve(ratio, True, f"[FP8GEMM] {max(FP8_GEMM_BEST_TFLOPS):.0f} of {peak / 1e12:.0f} TFLOP/s FP8 vs "
                     f"[MAMF] BF16 {H100_MAMF_FRACTION:.1%}",
                     combine_sigmas(SIGMA_H100_GEMM, half_log_spread(FP8_GEMM_BEST_TFLOPS)))
    best = MAMF_FP8_TFLOPS.get(name, MAMF_FP8_TFLOPS["h100"])
    ratio = best * 1e12 / peak / H100_MAMF_FRACTION
    return Curve(ratio, True, f"[MAMF8] cuBLASLt FP8 {best:.1f} of {peak / 1e12:.0f} TFLOP/s vs [MAMF] BF16 "
                 f"{H100_MAMF_FRACTION:.1%}",
                 combine_sigmas(SIGMA_H100_GEMM, half_log_spread(tuple(MAMF_FP8_TFLOPS.values()))))
