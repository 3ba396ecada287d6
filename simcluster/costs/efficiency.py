"""Fitted efficiency curves: how far below the datasheet a kernel runs, by shape.

Every constant here was fitted to the H100 calibration tables in
``simcluster/data/calibration`` (see that folder's README) by
``python -m simcluster.costs.calibration``, which refits them and prints the
errors; ``tests/costs/test_calibration.py`` checks that a refit still lands on
these numbers. The curves are *fractions of a device's own datasheet figures*;
other devices rescale them by published like-for-like measurements
(:mod:`simcluster.costs.devices`), which :class:`simcluster.costs.compute.ComputeModel`
applies.

Launch floor
    Every timed kernel, however small, took about 28–31 µs in the calibration
    (e.g. a 512×1024×128 GEMM: 0.134 GFLOP, 29.7 µs, while its arithmetic
    needs < 1 µs). This floor is the launch latency of an isolated,
    individually timed PyTorch op (host dispatch + launch + CUDA-event
    granularity); it partly overlaps the kernel body, so the fit combines the
    two as a soft maximum, an L^p norm:

        t = (t_floor^p + t_body^p)^(1/p),      t_floor = 31.3 µs, p = 1.52

    (p = 1 would be additive, p → ∞ a hard max). Fitted jointly with the GEMM
    curve; an additive form (p = 1) fits worse (median error 6.8 % vs 5.3 %).

GEMM curve (Y[m,n] = X[m,k]·W[k,n], 2mnk FLOPs)
    Efficiency of the body against the precision's peak is a saturating
    function of the harmonic mean x of the three dimensions:

        e(m, n, k) = e_max · x / (x + x_half),   x = 3 / (1/m + 1/n + 1/k)
        e_max = 0.729,  x_half = 289

    The harmonic mean is dominated by the smallest dimension, which sets the
    tile utilisation and the prologue/epilogue share of a tiled product. The
    body is max(2mnk / (peak·e), bytes / (bandwidth·f_copy)) (a roofline, so
    skinny products become bandwidth-bound), then the launch floor is applied.
    Fit errors on the 720 rows (|predicted/measured − 1|): median 5.3 %,
    90th percentile 14.4 %, max 44 % (the worst rows are ~30 µs launches whose
    medians are noisy: ms_max up to 3× ms_min). The data's best rows reach
    748 TFLOP/s (0.76 of peak); the curve's ceiling is e_max = 0.73 of peak
    and 8192³ is predicted at 0.70 (the README quotes 750–800 for that
    square product, which is not among the rows). Wave quantisation was
    tried (tiles of 128×256 over 132 SMs) and did not lower the error, so it
    is left out.

Bandwidth-bound kernels
    Achieved fraction of datasheet bandwidth, after removing the launch
    floor: copy 0.88, elementwise (gelu) 0.84, normalization (layernorm,
    also used for softmax) 0.54.

Flash attention (causal, forward and backward fitted separately)
    A power law in sequence length, parallel heads and head dimension,

        e = exp(c0) · s^cs · (b·a)^cba · d^cd   (capped, see FLASH_*_CAP)

    fitted by least squares in log space to the six rows (four coefficients,
    six points: interpolate, extrapolate with care). Backward FLOPs are taken
    as 2.5× the forward FLOPs (two GEMM-pairs for dQ/dK/dV plus the
    recomputed scores), and its time is ``fwd_bwd_ms − fwd_ms``. The caps
    stop extrapolation at 1.1× the best measured efficiency.
"""

from __future__ import annotations

from typing import overload

import numpy as np
import numpy.typing as npt

#: The arrays these curves take and return (calibration fits whole tables at once).
FloatArray = npt.NDArray[np.float64]

# --- launch floor (fitted with the GEMM curve) -------------------------------
LAUNCH_FLOOR_S: float = 31.26e-6
LAUNCH_SOFTNESS: float = 1.515

# --- GEMM body efficiency ----------------------------------------------------
GEMM_EFF_MAX: float = 0.7289
GEMM_SIZE_HALF: float = 288.7

# --- bandwidth-bound kernels: fraction of datasheet bandwidth ----------------
BANDWIDTH_FRACTION: dict[str, float] = {
    "copy": 0.882,
    "elementwise": 0.838,
    "normalization": 0.539,
}
KERNEL_KIND_ALIASES: dict[str, str] = {
    "gelu": "elementwise",
    "dropout": "elementwise",
    "add": "elementwise",
    "swiglu": "elementwise",
    "layernorm": "normalization",
    "rmsnorm": "normalization",
    "softmax": "normalization",
}

# --- flash attention ---------------------------------------------------------
FLASH_BWD_FLOP_RATIO: float = 2.5
# (c0, cs, cba, cd) for log e = c0 + cs·log s + cba·log(b·a) + cd·log d
FLASH_FWD_COEF: tuple[float, float, float, float] = (-9.9065, 0.6345, 0.4026, 0.5125)
FLASH_BWD_COEF: tuple[float, float, float, float] = (-14.4692, 1.2152, 0.7398, 0.1515)
FLASH_FWD_CAP: float = 0.600
FLASH_BWD_CAP: float = 0.499


@overload
def soft_floor(body_s: float, floor_s: float = ..., p: float = ...) -> float: ...
@overload
def soft_floor(body_s: FloatArray, floor_s: float = ..., p: float = ...) -> FloatArray: ...
def soft_floor(body_s: float | FloatArray, floor_s: float = LAUNCH_FLOOR_S,
               p: float = LAUNCH_SOFTNESS) -> float | FloatArray:
    """Kernel time from its body time: (floor^p + body^p)^(1/p). Works on arrays."""
    body = np.asarray(body_s, dtype=float)
    if floor_s <= 0.0:
        return body if body.ndim else float(body)
    out = (floor_s**p + np.maximum(body, 0.0) ** p) ** (1.0 / p)
    return out if out.ndim else float(out)


@overload
def remove_floor(t_s: float, floor_s: float = ..., p: float = ...) -> float: ...
@overload
def remove_floor(t_s: FloatArray, floor_s: float = ..., p: float = ...) -> FloatArray: ...
def remove_floor(t_s: float | FloatArray, floor_s: float = LAUNCH_FLOOR_S,
                 p: float = LAUNCH_SOFTNESS) -> float | FloatArray:
    """Inverse of :func:`soft_floor` (body time from a measured time; 0 below the floor)."""
    t = np.asarray(t_s, dtype=float)
    out = np.maximum(t**p - floor_s**p, 0.0) ** (1.0 / p)
    return out if out.ndim else float(out)


def gemm_size(m: float | FloatArray, n: float | FloatArray, k: float | FloatArray) -> FloatArray:
    """Harmonic mean of the three GEMM dimensions: 3 / (1/m + 1/n + 1/k)."""
    m, n, k = (np.asarray(v, dtype=float) for v in (m, n, k))
    return 3.0 / (1.0 / m + 1.0 / n + 1.0 / k)


@overload
def gemm_body_efficiency(m: float, n: float, k: float, e_max: float = ..., x_half: float = ...) -> float: ...
@overload
def gemm_body_efficiency(m: FloatArray, n: FloatArray, k: FloatArray, e_max: float = ...,
                         x_half: float = ...) -> FloatArray: ...
def gemm_body_efficiency(m: float | FloatArray, n: float | FloatArray, k: float | FloatArray,
                         e_max: float = GEMM_EFF_MAX, x_half: float = GEMM_SIZE_HALF) -> float | FloatArray:
    """Body efficiency e_max · x/(x + x_half), x the harmonic mean of m, n, k."""
    x = gemm_size(m, n, k)
    out = e_max * x / (x + x_half)
    return out if np.ndim(out) else float(out)


def flash_features(batch: npt.ArrayLike, heads: npt.ArrayLike, seq: npt.ArrayLike,
                   head_dim: npt.ArrayLike) -> FloatArray:
    """Regressors [1, log s, log(b·a), log d] of the flash-attention power law."""
    b, a, s, d = (np.asarray(v, dtype=float) for v in (batch, heads, seq, head_dim))
    return np.stack(np.broadcast_arrays(np.ones_like(s), np.log(s), np.log(b * a), np.log(d)), axis=-1)


def flash_efficiency(batch: float, heads: float, seq: float, head_dim: float, *, backward: bool = False) -> float:
    """Fraction of peak achieved by the flash kernel body (forward or backward)."""
    coef, cap = (FLASH_BWD_COEF, FLASH_BWD_CAP) if backward else (FLASH_FWD_COEF, FLASH_FWD_CAP)
    e = np.exp(flash_features(batch, heads, seq, head_dim) @ np.asarray(coef))
    return float(np.minimum(e, cap))


def bandwidth_fraction(kind: str) -> float:
    """Achieved fraction of datasheet bandwidth for a bandwidth-bound kernel kind."""
    key = KERNEL_KIND_ALIASES.get(kind, kind)
    try:
        return BANDWIDTH_FRACTION[key]
    except KeyError:
        known = sorted(set(BANDWIDTH_FRACTION) | set(KERNEL_KIND_ALIASES))
        raise KeyError(f"unknown memory-bound kernel kind {kind!r}; known: {', '.join(known)}") from None
