"""Per-device calibration: each device's own kernel-efficiency curves, with sources and uncertainty.

The curves of :mod:`simcluster.costs.efficiency` were fitted to one H100. Every other device
gets them *rescaled by published measurements that were taken the same way on both devices*
(a like-for-like ratio), so the H100 fit's shape is kept and only the level moves:

    e_max(dev)        = e_max(H100) · r_gemm,    r_gemm = (best GEMM / peak)_dev / (best GEMM / peak)_H100
    f_kind(dev)       = f_kind(H100) · r_mem,    r_mem  = (copy / datasheet bandwidth)_dev / (same)_H100
    e_flash(dev, ...) = r_flash · e_flash(H100, ...)   (cap scaled alike), forward and backward apart

x_half (the GEMM half-efficiency size), the launch floor and the kernel-kind pattern of the
bandwidth fractions are the H100's on every device (no like-for-like data on shape dependence;
with it, the A100 cuBLASLt sizes of [AZURE] are reproduced within 7 % for harmonic-mean size
x ≥ 2048 and for a skinny 802816×192×768 product; 1024³-class products run 40 % below any such
curve on both devices: too few output tiles to fill the SMs). Where a device has no data for a curve its ratio is 1 — the H100 curve
at that device's own datasheet peak, the assumption the model made everywhere before — and the
record says so (``Curve.measured`` False, source ``NO_DATA``).

Sustained clock (H100, H200)
    The H100 calibration timed millisecond bursts at "clocks as found (SM 1980 MHz)"; NVIDIA rates the
    H100's (and H200's) 989.4 TFLOP/s at a 1,830 MHz compute clock [H100CLK], the clock a part at its
    power limit is specified to hold. A training run keeps the GPU at its power limit for hours, so a
    run's compute-bound kernels (GEMM, attention) take the curves at 1830/1980 of their speed
    (:data:`H100_SUSTAINED_CLOCK_RATIO`, applied by :class:`simcluster.costs.compute.ComputeModel`;
    the curves themselves, and every comparison with a microbenchmark, stay at the bursts' clock);
    memory-bound kernels keep the HBM's bandwidth (its clock is separate). The A100 and V100 are rated at
    their boost clocks, which their measurements ran at: factor 1. The assumption's σ, |ln r|/√12 = 0.023
    (:func:`simcluster.metrics.uncertainty.clock_sigma`), widens a run's compute interval.

TPU v3 and v4 (128×128 MXUs, XLA)
    No matmul benchmark of v3 or v4 was found. Their GEMM ratio comes from XLA matmuls on the
    generations either side with the same 128×128 MXU and compiler: TPU v2 (a profiled per-core
    bf16[8192,8192]·[8192,16384] at 99.6 % of peak [SCALEBOOK]) and TPU v5e (jnp.matmul 8192³ at
    92.3 % [PALLAS]); r_gemm = 0.959 / 0.802 = 1.195, e_max = 0.871, sigma_ratio their full log
    spread 0.076. A systolic array also pays for padding: every GEMM efficiency is multiplied by
    :meth:`Calibration.mxu_fill` (operands padded to (8, 128) and (128, 128) tiles [SCALEBOOK]),
    the flash curve by d/⌈d⌉₁₂₈. No HBM-copy or attention-kernel measurement on a TPU was found:
    those curves stay the H100's (``measured`` False, a run warns).

Sources: :data:`SOURCES` (tag → citation, :mod:`simcluster.costs.device_sources`; the figures used are
restated beside each constant).

Uncertainty (for error bars)
----------------------------
Each curve carries ``sigma``: the standard deviation of log(predicted / measured) kernel time.
H100: the RMS log residual of its own fit (GEMM 720 rows, memory-bound 7, flash 12).
Calibrated devices: sqrt(sigma_H100² + sigma_ratio²), sigma_ratio from the spread of the
ratio's inputs (stated per device). Uncalibrated curves: sigma_ratio = ``UNCALIBRATED_SIGMA``
= ln(0.869 / 0.664) = 0.27, the spread of best-GEMM fractions of peak across the NVIDIA
generations above (V100 0.664 [MARK] to A100 0.869 [MAMF]): how far a curve carried over
from another device can plausibly be off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from simcluster.catalogue import DEVICES
from simcluster.costs import efficiency as eff
from simcluster.costs.device_sources import SOURCES as SOURCES  # re-exported: devices.SOURCES


NO_DATA = "no data: H100 curve at this device's datasheet peak"
H100_FIT = "fitted to the H100 calibration (simcluster/data/calibration)"

# --- H100's own fit residuals: RMS of log(predicted / measured) (python -m simcluster.costs.calibration)
SIGMA_H100_GEMM: float = 0.096  # 720 GEMM rows
SIGMA_H100_MEMORY: float = 0.042  # 7 memory-bound rows
SIGMA_H100_ATTENTION: float = 0.060  # 6 forward + 6 backward flash rows
#: Extra log-sigma of a curve carried over with no data of its own (see module docstring).
UNCALIBRATED_SIGMA: float = round(math.log(0.869 / 0.664), 2)
#: Least log-sigma of a ratio from one source (run-to-run spread of one benchmark is ~3 %).
MIN_SIGMA_RATIO: float = 0.03

# --- [MAMF] best BF16 matmul, TFLOP/s (two table versions each) ---------------------------------
MAMF_A100_TFLOPS: tuple[float, float] = (271.2, 267.9)
MAMF_H100_TFLOPS: tuple[float, float] = (794.5, 792.1)
# --- [MARK] best cuBLAS mixed-precision GEMM on V100, TFLOP/s -------------------------------------
MARKIDIS_V100_TFLOPS: float = 83.0
# --- [AZURE]/[BABEL] achieved copy bandwidth, bytes/s ---------------------------------------------
COPY_H100_AZURE: float = 2.90e12
COPY_H200_AZURE: float = 4.01e12
COPY_A100_80GB: tuple[float, float] = (1.61e12, 1709.4e9)  # [AZURE], [BABEL] Tursa
COPY_A100_40GB: tuple[float, float] = (1400.3e9, 1394.6e9)  # [BABEL] Polaris
COPY_V100: float = 811.7e9  # [BABEL] Isambard
# --- [AZURE] FlashAttention-2, head dim 128, batch 2, seq 8192, TFLOP/s --------------------------
FA2_H100_AZURE: float = 327.9
FA2_H200_AZURE: float = 329.3
#: [AZURE] FlashAttention-2 on A100-SXM4-80GB, head dim 64, batch 2, seq 8192 (model dim 2048: 32 heads),
#: causal, forward + backward, TFLOP/s (the A100 run of the same benchmark used head dim 64, not 128).
FA2_A100_AZURE_D64: float = 179.5
FA2_A100_AZURE_SHAPE: tuple[int, int, int, int] = (2, 32, 8192, 64)
#: The head dimension the FA2 paper's best figures (and the A100 ratio) refer to; the curve is scaled below it.
FLASH_FULL_HEAD_DIM: int = 128
# --- [FA2] best fraction of A100 peak over the paper's grid, forward and backward -----------------
FA2_A100_FWD_BEST: float = 0.73
FA2_A100_BWD_BEST: float = 0.63
#: [FA2FIG] FlashAttention-2 forward + backward on A100 80GB SXM4 with the causal mask, head dim 128, at the
#: grid's longest sequence (16k, batch 1, 16 heads): TFLOP/s, causal FLOPs (half the non-causal count).
FA2_A100_CAUSAL_D128_16K: float = 189.0
# --- [PALLAS]/[SCALEBOOK] XLA matmuls on 128x128-MXU TPUs: best fraction of the bf16 peak --------
#: [PALLAS] TPU v5e, jnp.matmul 8192^3 bf16: 181.8 of 197 TFLOP/s (timed with host dispatch: a lower bound).
XLA_V5E_MATMUL_FRACTION: float = 0.9230
#: [SCALEBOOK] TPU v2, per-core bf16[8192,8192] x [8192,16384]: 95.6 ms at 23 TFLOP/s/core, 96 ms measured.
XLA_V2_MATMUL_FRACTION: float = round(95.6 / 96.0, 4)
#: [SCALEBOOK] MXU operand tile: bf16[8,128] (LHS rows x contraction) @ bf16[128,128] (contraction x output).
MXU_TILE: int = 128
MXU_ROWS: int = 8
#: Where the ratio is taken: the grid's longest sequence (batch, heads, seq, head_dim). The paper
#: does not say at which grid point the maxima fell; the H100 curve sits at its caps for every
#: grid point with seq >= 8192 (either head dim), so the ratio is the same for any of them.
FA2_BEST_SHAPE: tuple[int, int, int, int] = (1, 16, 16384, 128)


def _peak(name: str) -> float:
    return DEVICES.get(name).peak_flops


def _bw(name: str) -> float:
    return DEVICES.get(name).memory_bandwidth


def geomean(xs: tuple[float, ...]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def half_log_spread(xs: tuple[float, ...]) -> float:
    """Half the log range of equivalent estimates: the sigma contributed by their disagreement."""
    return 0.5 * math.log(max(xs) / min(xs))


def _fill(x: float, tile: int) -> float:
    """x over x rounded up to a whole number of tiles (1 for x <= 0: nothing to pad)."""
    return x / (math.ceil(x / tile) * tile) if x > 0 else 1.0


def combine_sigmas(sigma_h100: float, sigma_ratio: float) -> float:
    return round(math.hypot(sigma_h100, sigma_ratio), 3)


@dataclass(frozen=True)
class Curve:
    """One curve's scale against the H100 fit, whether it rests on data, its source and log-sigma."""

    ratio: float
    measured: bool
    source: str
    sigma: float


def _no_data(sigma_h100: float) -> Curve:
    return Curve(1.0, False, NO_DATA, combine_sigmas(sigma_h100, UNCALIBRATED_SIGMA))


@dataclass(frozen=True)
class Calibration:
    """A device's kernel-efficiency curves: the H100 fit scaled per curve (see module docstring)."""

    device: str
    gemm: Curve
    memory: Curve
    attention_fwd: Curve
    attention_bwd: Curve
    notes: tuple[str, ...] = field(default=())
    #: Systolic-array tile of a TPU's MXU (0: no padding model, the GPUs); see :meth:`mxu_fill`.
    mxu_tile: int = 0
    #: Head-dimension exponent of the flash curve below d = 128: efficiency × (d/128)^exponent (0: none;
    #: the A100's from [AZURE]'s head-dim-64 FlashAttention-2 figure, :func:`_a100_head_dim_exponent`).
    flash_head_dim_exponent: float = 0.0
    #: Sustained over measured SM clock: the factor on the compute-bound curves (GEMM, attention) of a training
    #: run on a device whose measurements ran above the clock it sustains (:data:`H100_SUSTAINED_CLOCK_RATIO`; 1
    #: elsewhere). The curves themselves stay at the measurements' clock; :class:`ComputeModel` applies it.
    clock_ratio: float = 1.0

    # --- the curves' constants -----------------------------------------------------------
    @property
    def gemm_eff_max(self) -> float:
        """GEMM efficiency ceiling e_max = e_max(H100) · r_gemm."""
        return eff.GEMM_EFF_MAX if self.gemm.ratio == 1.0 else eff.GEMM_EFF_MAX * self.gemm.ratio

    @property
    def gemm_size_half(self) -> float:
        """GEMM half-efficiency size x_half (the H100's on every device)."""
        return eff.GEMM_SIZE_HALF

    def bandwidth_fraction(self, kind: str) -> float:
        """Achieved fraction of datasheet bandwidth for a kernel kind: f_kind(H100) · r_mem."""
        f = eff.bandwidth_fraction(kind)
        return f if self.memory.ratio == 1.0 else f * self.memory.ratio

    def flash_efficiency(self, batch: float, heads: float, seq: float, head_dim: float, *,
                         backward: bool = False) -> float:
        """Flash-attention body efficiency: r_flash · e_flash(H100) (the cap scales alike)."""
        e = eff.flash_efficiency(batch, heads, seq, head_dim, backward=backward)
        r = (self.attention_bwd if backward else self.attention_fwd).ratio
        e = e if r == 1.0 else min(1.0, e * r)
        if self.flash_head_dim_exponent and head_dim < FLASH_FULL_HEAD_DIM:
            e *= (head_dim / FLASH_FULL_HEAD_DIM) ** self.flash_head_dim_exponent
        return e * _fill(head_dim, self.mxu_tile) if self.mxu_tile else e  # QKᵀ contracts d, A·V outputs d

    def mxu_fill(self, m: float, n: float, k: float) -> float:
        """Fraction of MXU work that is not padding, for Y[m,n] = X[m,k]·W[k,n] on a TPU (1 elsewhere).

        XLA pads the MXU operands to whole tiles [SCALEBOOK]: X to (8, 128) blocks, W to (128, 128):

            fill = m/⌈m⌉₈ · k/⌈k⌉₁₂₈ · n/⌈n⌉₁₂₈        (⌈x⌉_t: x rounded up to a multiple of t)

        e.g. a head dimension of 64 in QKᵀ (k = 64) fills half the array; multiples of 128 fill it all.
        """
        if not self.mxu_tile:
            return 1.0
        return _fill(m, MXU_ROWS) * _fill(k, self.mxu_tile) * _fill(n, self.mxu_tile)

    # --- what error bars read ----------------------------------------------------------------
    @property
    def sigma_gemm(self) -> float:
        """Log-space sigma of GEMM kernel times."""
        return self.gemm.sigma

    @property
    def sigma_memory(self) -> float:
        """Log-space sigma of bandwidth-bound kernel times."""
        return self.memory.sigma

    @property
    def sigma_attention(self) -> float:
        """Log-space sigma of flash-attention kernel times (the wider of forward and backward)."""
        return max(self.attention_fwd.sigma, self.attention_bwd.sigma)

    @property
    def measured(self) -> bool:
        """True when every curve rests on data for this device."""
        return all(c.measured for c in self.curves().values())

    def curves(self) -> dict[str, Curve]:
        """The curves by name: gemm, memory, attention_fwd, attention_bwd."""
        return {"gemm": self.gemm, "memory": self.memory,
                "attention_fwd": self.attention_fwd, "attention_bwd": self.attention_bwd}


# --- the ratios, from the figures above ------------------------------------------------------------
H100_MAMF_FRACTION: float = geomean(MAMF_H100_TFLOPS) * 1e12 / _peak("h100")
H100_COPY_FRACTION: float = COPY_H100_AZURE / _bw("h100")


def _gemm_vs_h100(fractions: tuple[float, ...], source: str, sigma_ratio: float) -> Curve:
    ratio = geomean(fractions) / H100_MAMF_FRACTION
    return Curve(ratio, True, source, combine_sigmas(SIGMA_H100_GEMM, sigma_ratio))


def _memory_vs_h100(copies: tuple[float, ...], device: str, source: str) -> Curve:
    fractions = tuple(c / _bw(device) for c in copies)
    ratio = geomean(fractions) / H100_COPY_FRACTION
    spread = max(half_log_spread(fractions), MIN_SIGMA_RATIO)
    return Curve(ratio, True, source, combine_sigmas(SIGMA_H100_MEMORY, spread))


def _flash_a100(best: float, backward: bool) -> Curve:
    """The A100's FlashAttention-2 curve over the H100's, forward or backward: the text's best fractions
    (73 % forward, 63 % backward [FA2]) set their proportion, and the paper's causal figure at the grid's
    longest sequence ([FA2FIG], 189 TFLOP/s forward + backward, head dim 128) their level, since the H100
    curve they scale is causal (the calibration's flash rows all are): the text's maxima are non-causal
    runs (the same figure: 203 TFLOP/s without the mask, 189 with it), and a causal curve anchored on them
    runs 8 % fast at 16k, up to 18 % at 4k, against the figure's causal bars.

        r = q · best / e_H100(shape),   q = 189 TFLOP/s / (forward + backward FLOP/s of the curve with q = 1)
    """
    fwd0, bwd0 = (FA2_A100_FWD_BEST / eff.flash_efficiency(*FA2_BEST_SHAPE),
                  FA2_A100_BWD_BEST / eff.flash_efficiency(*FA2_BEST_SHAPE, backward=True))
    q = FA2_A100_CAUSAL_D128_16K * 1e12 / flash_fwd_bwd_flops("a100-80gb", FA2_BEST_SHAPE, fwd0, bwd0)
    ratio = q * (bwd0 if backward else fwd0)
    which = "backward" if backward else "forward"
    # sigma_ratio: the FA2 paper's range (50–73 % of peak) against its best, a wide band
    return Curve(ratio, True, f"[FA2] A100 {which} best {best:.0%} of peak over the H100 curve at that shape, "
                 f"x {q:.3f} to [FA2FIG]'s causal {FA2_A100_CAUSAL_D128_16K:g} TFLOP/s forward + backward",
                 combine_sigmas(SIGMA_H100_ATTENTION, math.log(0.73 / 0.50) / 2))


def flash_fwd_bwd_flops(device: str, shape: tuple[int, int, int, int], fwd_ratio: float = 1.0,
                        bwd_ratio: float = 1.0) -> float:
    """FLOP/s of one forward + backward flash pass at ``shape`` (batch, heads, seq, head dim) on the H100 curve
    scaled by the ratios, at ``device``'s peak, bodies only (no launch floor, no bandwidth term):

        (1 + 2.5) · peak / (1/e_fwd + 2.5/e_bwd),   e = min(1, r · e_H100(shape))

    how the published forward + backward figures of [AZURE] are compared with a curve."""
    ef = min(1.0, eff.flash_efficiency(*shape) * fwd_ratio)
    eb = min(1.0, eff.flash_efficiency(*shape, backward=True) * bwd_ratio)
    return (1 + eff.FLASH_BWD_FLOP_RATIO) * _peak(device) / (1 / ef + eff.FLASH_BWD_FLOP_RATIO / eb)


def _a100_head_dim_exponent() -> float:
    """α with e(d) = e(128) · (d/128)^α for d < 128 on the A100: [AZURE]'s FlashAttention-2 at head dim 64
    against the A100 curve there (which, capped at [FA2]'s best, is the same at 64 and 128):

        α = ln(r64) / ln(64/128),  r64 = 179.5 TFLOP/s / (the curve's forward + backward at (2, 32, 8192, 64))

    = 0.19 (r64 = 0.878); one point, so the power law between 64 and 128 is an assumption."""
    fwd, bwd = _A100_ATTN
    r64 = FA2_A100_AZURE_D64 * 1e12 / flash_fwd_bwd_flops("a100-80gb", FA2_A100_AZURE_SHAPE, fwd.ratio, bwd.ratio)
    return math.log(r64) / math.log(FA2_A100_AZURE_SHAPE[3] / FLASH_FULL_HEAD_DIM)


_A100_GEMM = _gemm_vs_h100(tuple(t * 1e12 / _peak("a100-80gb") for t in MAMF_A100_TFLOPS),
                           "[MAMF] A100 SXM 86.9 %/85.9 % of peak vs H100 SXM 80.3 %/80.1 % (same tool)",
                           sigma_ratio=0.04)  # ln(1.077/1.037): vs [AZURE] A100 8192³ over H100's 750–800
_A100_ATTN = (_flash_a100(FA2_A100_FWD_BEST, False), _flash_a100(FA2_A100_BWD_BEST, True))
A100_HEAD_DIM_EXPONENT: float = _a100_head_dim_exponent()
_SAME_AS_H100_FLASH = Curve(1.0, True, f"[AZURE] FlashAttention-2 H200 {FA2_H200_AZURE} vs H100 "
                            f"{FA2_H100_AZURE} TFLOP/s: same SMs, same curve", SIGMA_H100_ATTENTION)


#: Sustained over measured SM clock of the H100 (and the H200, same die): NVIDIA's compute clock, the one its
#: 989.4 TFLOP/s is rated at (528 tensor cores x 1,024 FLOP per clock x 1,830 MHz) [H100CLK], over the
#: 1,980 MHz the calibration's millisecond bursts ran at ("clocks as found (SM 1980 MHz)", the calibration
#: README). The A100's and V100's rated clocks are their boost clocks (1,410 and 1,530 MHz), which their
#: measurements ran at: 1 there.
H100_SUSTAINED_CLOCK_RATIO: float = 1830.0 / 1980.0


def _h100() -> Calibration:
    return Calibration("h100", Curve(1.0, True, H100_FIT, SIGMA_H100_GEMM),
                       Curve(1.0, True, H100_FIT, SIGMA_H100_MEMORY),
                       Curve(1.0, True, H100_FIT, SIGMA_H100_ATTENTION),
                       Curve(1.0, True, H100_FIT, SIGMA_H100_ATTENTION), clock_ratio=H100_SUSTAINED_CLOCK_RATIO)


def _uncalibrated(name: str, note: str = "") -> Calibration:
    return Calibration(name, _no_data(SIGMA_H100_GEMM), _no_data(SIGMA_H100_MEMORY),
                       _no_data(SIGMA_H100_ATTENTION), _no_data(SIGMA_H100_ATTENTION),
                       (note,) if note else ())


#: TPU GEMM: XLA matmuls on the 128x128-MXU generations either side of v3/v4 (v2 [SCALEBOOK], v5e
#: [PALLAS]); sigma_ratio is their full log spread, ln(0.9958 / 0.9230) = 0.076, not half of it: neither
#: is a v3 or v4 measurement.
_TPU_GEMM = _gemm_vs_h100(
    (XLA_V5E_MATMUL_FRACTION, XLA_V2_MATMUL_FRACTION),
    f"[PALLAS] XLA 8192^3 on TPU v5e {XLA_V5E_MATMUL_FRACTION:.1%}, [SCALEBOOK] TPU v2 profile "
    f"{XLA_V2_MATMUL_FRACTION:.1%} of peak (same 128x128 MXU and compiler as v3/v4) vs [MAMF] H100 80.2 %",
    sigma_ratio=math.log(XLA_V2_MATMUL_FRACTION / XLA_V5E_MATMUL_FRACTION))


def _tpu(name: str) -> Calibration:
    """A 128x128-MXU TPU: the XLA GEMM curve and MXU padding; no HBM-copy or attention-kernel data."""
    return Calibration(name, _TPU_GEMM, _no_data(SIGMA_H100_MEMORY), _no_data(SIGMA_H100_ATTENTION),
                       _no_data(SIGMA_H100_ATTENTION),
                       ("GEMM from TPU v2 and v5e XLA matmuls (no v3/v4 matmul benchmark found); no published "
                        "HBM-copy or attention-kernel measurement on TPU found: those curves are the H100's",),
                       mxu_tile=MXU_TILE)


#: Every catalogue device's calibration record.
CALIBRATIONS: dict[str, Calibration] = {
    "h100": _h100(),
    "h200": Calibration(
        "h200",
        Curve(1.0, True, "[MAMF] H100 SXM row: \"H200 is the same\" (same GH100 die and clocks)", SIGMA_H100_GEMM),
        _memory_vs_h100((COPY_H200_AZURE,), "h200", "[AZURE] copy 4.01 TB/s of 4.8 vs H100 2.90 of 3.35"),
        _SAME_AS_H100_FLASH, _SAME_AS_H100_FLASH, clock_ratio=H100_SUSTAINED_CLOCK_RATIO),
    "a100-80gb": Calibration(
        "a100-80gb", _A100_GEMM,
        _memory_vs_h100(COPY_A100_80GB, "a100-80gb", "[AZURE] copy 1.61 TB/s, [BABEL] 1709 GB/s, of 2039"),
        *_A100_ATTN, flash_head_dim_exponent=A100_HEAD_DIM_EXPONENT),
    "a100-40gb": Calibration(
        "a100-40gb", _A100_GEMM,
        _memory_vs_h100(COPY_A100_40GB, "a100-40gb", "[BABEL] copy 1400/1395 GB/s of 1555 (Polaris)"),
        *_A100_ATTN, ("GEMM and attention: A100 SXM figures (same GA100 chip and clocks as the 80 GB part)",),
        flash_head_dim_exponent=A100_HEAD_DIM_EXPONENT),
    "v100": Calibration(
        "v100",
        _gemm_vs_h100((MARKIDIS_V100_TFLOPS * 1e12 / _peak("v100"),),
                      "[MARK] cuBLAS 83 of 125 TFLOP/s on V100 vs [MAMF] H100 80.2 %",
                      sigma_ratio=0.10),  # one source, CUDA 9 (2018) against a 2023-25 tool: wider
        _memory_vs_h100((COPY_V100,), "v100", "[BABEL] copy 811.7 GB/s of 900 (V100 16 GB)"),
        _no_data(SIGMA_H100_ATTENTION), _no_data(SIGMA_H100_ATTENTION),
        ("no flash-attention kernel targets Volta (FlashAttention needs Turing or newer)",)),
    "tpu-v3": _tpu("tpu-v3"),
    "tpu-v4": _tpu("tpu-v4"),
}


# --- [TTPEAK] the 16-bit peak of the 500 W, HBM2e H100 of torchtitan's benchmarks ------------------------
#: Dense BF16 peaks torchtitan uses for the H100 SXM and NVL parts (get_peak_flops), FLOP/s.
H100_SXM_NVL_PEAKS: tuple[float, float] = (989e12, 835e12)
#: The 500 W part's peak lies "between SXM and NVL" [TTPEAK]: the geometric middle of that bracket,
#: sqrt(989 · 835) = 908.7 TFLOP/s, log half-range ln(989/835)/2 = 0.085 (a power limit lowers the clock
#: the tensor cores run at, so every GEMM and attention kernel scales with it; memory-bound kernels keep
#: the HBM's 2.4 TB/s). The torchtitan H100 workloads set their device's ``peak_flops`` to it.
H100_500W_PEAK_FLOPS: float = geomean(H100_SXM_NVL_PEAKS)


def device_calibration(name: str) -> Calibration:
    """The calibration record of a device by name; a device with no record (a custom one) is uncalibrated."""
    return CALIBRATIONS.get(name) or _uncalibrated(name, "not in the catalogue")
