"""The H100 calibration tables and the fits that produce ``efficiency.py``'s constants.

The CSVs ship inside the package (``simcluster/data/calibration``, measured on
one H100 SXM 80GB, 2026-11-22, PyTorch 2.11, CUDA 13.0) and are read with
:mod:`importlib.resources`. Run ``python -m simcluster.costs.calibration`` to
refit every constant and print the fit errors; the fit is deterministic
(Nelder–Mead from fixed starts, numpy only).

GEMM rows are mapped to the product each pass really runs (the CSV lists the
forward shape M, N, K): fwd Y[M,N] = X[M,K]·W → (m, n, k) = (M, N, K);
dgrad dX[M,K] = dY[M,N]·W → (M, K, N); wgrad dW[N,K] = dYᵀ[N,M]·X → (N, K, M).
"""

from __future__ import annotations

from importlib import resources
from typing import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd

from simcluster.costs import efficiency as eff
from simcluster.costs.compute import ComputeModel
from simcluster.costs.efficiency import FloatArray
from simcluster.topology.devices import DEVICES

H100 = DEVICES.get("h100")
GEMM_CSV = "h100_gemm_bf16.csv"
MEMORY_CSV = "h100_memory_bound_bf16.csv"
FLASH_CSV = "h100_flash_attention_bf16.csv"


def load_csv(name: str) -> pd.DataFrame:
    """One calibration table by file name, read from the installed package."""
    path = resources.files("simcluster").joinpath("data", "calibration", name)
    with path.open("r") as fh:
        return pd.read_csv(fh)


def gemm_table() -> pd.DataFrame:
    """The 720 GEMM rows with the executed product's (m, n, k) and time in seconds."""
    d = load_csv(GEMM_CSV)
    fwd, dgrad = d["pass"] == "fwd", d["pass"] == "dgrad"
    d["m"] = np.where(fwd | dgrad, d.M, d.N)
    d["n"] = np.where(fwd, d.N, d.K)
    d["k"] = np.where(fwd, d.K, np.where(dgrad, d.N, d.M))
    d["time_s"] = d.ms_median * 1e-3
    return d


def nelder_mead(f: Callable[[FloatArray], float], x0: npt.ArrayLike, iters: int = 3000) -> tuple[FloatArray, float]:
    """Minimise f from x0 with the Nelder–Mead simplex (standard coefficients)."""
    x0 = np.asarray(x0, dtype=float)
    n = len(x0)
    simplex = np.array([x0] + [x0 + np.eye(n)[i] * (0.1 * abs(x0[i]) + 0.05) for i in range(n)])
    fs = np.array([f(s) for s in simplex])
    for _ in range(iters):
        order = np.argsort(fs, kind="stable")
        simplex, fs = simplex[order], fs[order]
        c = simplex[:-1].mean(axis=0)
        xr = c + (c - simplex[-1])
        fr = f(xr)
        if fr < fs[0]:
            xe = c + 2.0 * (c - simplex[-1])
            fe = f(xe)
            simplex[-1], fs[-1] = (xe, fe) if fe < fr else (xr, fr)
        elif fr < fs[-2]:
            simplex[-1], fs[-1] = xr, fr
        else:
            xc = c + 0.5 * (simplex[-1] - c)
            fc = f(xc)
            if fc < fs[-1]:
                simplex[-1], fs[-1] = xc, fc
            else:
                simplex[1:] = simplex[0] + 0.5 * (simplex[1:] - simplex[0])
                fs[1:] = [f(s) for s in simplex[1:]]
    best = int(np.argmin(fs))
    return simplex[best], float(fs[best])


def _gemm_predict(params: FloatArray, m: FloatArray, n: FloatArray, k: FloatArray, bw_fraction: float) -> FloatArray:
    floor_us, e_max, log_half, log_p = params
    flops = 2.0 * m * n * k
    body = np.maximum(
        flops / (H100.peak_flops * eff.gemm_body_efficiency(m, n, k, e_max, np.exp(log_half))),
        2.0 * (m * k + k * n + m * n) / (H100.memory_bandwidth * bw_fraction),
    )
    return eff.soft_floor(body, floor_us * 1e-6, np.exp(log_p))


def fit_gemm(d: pd.DataFrame | None = None) -> dict[str, float]:
    """Fit floor, softness, e_max, x_half by least squares on log(predicted/measured)."""
    d = gemm_table() if d is None else d
    m, n, k, t = (d[c].to_numpy(float) for c in ("m", "n", "k", "time_s"))
    copy = load_csv(MEMORY_CSV).query("kernel == 'copy'")
    bw_fraction = float((copy.gb_per_s * 1e9 / H100.memory_bandwidth).median())  # raw, pre-floor

    def loss(x: FloatArray) -> float:
        if x[0] <= 0 or not 0 < x[1] <= 1:
            return np.inf
        return float(np.mean(np.log(_gemm_predict(x, m, n, k, bw_fraction) / t) ** 2))

    best = min((nelder_mead(loss, x0) for x0 in ([25, 0.8, 5, 0.5], [35, 0.7, 6, 0.2])), key=lambda r: r[1])
    floor_us, e_max, log_half, log_p = best[0]
    return {"floor_s": floor_us * 1e-6, "softness": float(np.exp(log_p)),
            "e_max": float(e_max), "x_half": float(np.exp(log_half))}


def fit_bandwidth(floor_s: float = eff.LAUNCH_FLOOR_S, p: float = eff.LAUNCH_SOFTNESS) -> dict[str, float]:
    """Median achieved fraction of datasheet bandwidth per kernel kind, launch floor removed."""
    d = load_csv(MEMORY_CSV)
    body = eff.remove_floor(d.ms_median.to_numpy(float) * 1e-3, floor_s, p)
    d["fraction"] = d.bytes_moved / body / H100.memory_bandwidth
    kinds = d.kernel.map(lambda k: eff.KERNEL_KIND_ALIASES.get(k, k))
    return {str(k): float(v) for k, v in d.groupby(kinds).fraction.median().items()}


def flash_table() -> pd.DataFrame:
    """Flash rows with forward and backward FLOPs and times (backward = fwd_bwd − fwd)."""
    d = load_csv(FLASH_CSV)
    d["fwd_s"] = d.fwd_ms * 1e-3
    d["bwd_s"] = (d.fwd_bwd_ms - d.fwd_ms) * 1e-3
    d["fwd_flops"] = d.fwd_flops_causal.astype(float)
    d["bwd_flops"] = eff.FLASH_BWD_FLOP_RATIO * d.fwd_flops
    return d


def fit_flash(floor_s: float = eff.LAUNCH_FLOOR_S, p: float = eff.LAUNCH_SOFTNESS
              ) -> dict[str, tuple[tuple[float, ...], float]]:
    """Log-linear least squares of body efficiency on [1, log s, log(b·a), log d]; cap = 1.1 × best."""
    d = flash_table()
    x = eff.flash_features(d.batch, d.heads, d.seq, d.head_dim)
    out: dict[str, tuple[tuple[float, ...], float]] = {}
    for which in ("fwd", "bwd"):
        body = eff.remove_floor(d[f"{which}_s"].to_numpy(float), floor_s, p)
        e = d[f"{which}_flops"].to_numpy(float) / body / H100.peak_flops
        coef, *_ = np.linalg.lstsq(x, np.log(e), rcond=None)
        out[which] = (tuple(float(c) for c in coef), float(1.1 * e.max()))
    return out


def relative_errors(predicted: npt.ArrayLike, measured: npt.ArrayLike) -> FloatArray:
    """|predicted / measured − 1|, elementwise."""
    return np.abs(np.asarray(predicted, dtype=np.float64) / np.asarray(measured, dtype=np.float64) - 1.0)


def gemm_errors(model: ComputeModel) -> FloatArray:
    """Relative time errors of ``model.gemm_time`` over the 720 calibration rows."""
    d = gemm_table()
    shapes = zip(*(d[c].to_numpy(int).tolist() for c in ("m", "n", "k")))
    pred = [model.gemm_time(m, n, k) for m, n, k in shapes]
    return relative_errors(pred, d.time_s)


def flash_errors(model: ComputeModel) -> tuple[FloatArray, FloatArray]:
    """Relative errors of ``model.attention_time`` (forward, backward) over the flash rows."""
    d = flash_table()
    shapes = list(zip(*(d[c].to_numpy(int).tolist() for c in ("batch", "heads", "seq", "head_dim"))))
    fwd = [model.attention_time(b, a, s, hd) for b, a, s, hd in shapes]
    bwd = [model.attention_time(b, a, s, hd, backward=True) for b, a, s, hd in shapes]
    return relative_errors(fwd, d.fwd_s), relative_errors(bwd, d.bwd_s)


def log_sigma(predicted: npt.ArrayLike, measured: npt.ArrayLike) -> float:
    """RMS of log(predicted / measured): the log-space sigma of a fit's residuals."""
    r = np.log(np.asarray(predicted, dtype=np.float64) / np.asarray(measured, dtype=np.float64))
    return float(np.sqrt(np.mean(r**2)))


def residual_sigmas(model: ComputeModel) -> dict[str, float]:
    """Log-space residual sigma of each curve on the H100 tables: gemm, memory, attention.

    These are ``SIGMA_H100_*`` of :mod:`simcluster.costs.devices` (what error bars start from).
    """
    g = gemm_table()
    gemm = [model.gemm_time(m, n, k) for m, n, k in zip(*(g[c].to_numpy(int).tolist() for c in ("m", "n", "k")))]
    mem = load_csv(MEMORY_CSV)
    memory = [model.memory_time(b, k) for b, k in zip(mem.bytes_moved.tolist(), mem.kernel.tolist())]
    f = flash_table()
    shapes = list(zip(*(f[c].to_numpy(int).tolist() for c in ("batch", "heads", "seq", "head_dim"))))
    attn = [model.attention_time(b, a, s, d, backward=bw) for bw in (False, True) for b, a, s, d in shapes]
    return {"gemm": log_sigma(gemm, g.time_s), "memory": log_sigma(memory, mem.ms_median * 1e-3),
            "attention": log_sigma(attn, np.concatenate([f.fwd_s, f.bwd_s]))}


def main() -> None:  # pragma: no cover - a report for humans
    g = fit_gemm()
    print("gemm fit:", {k: round(float(v) * (1e6 if k == "floor_s" else 1), 4) for k, v in g.items()})
    print("bandwidth fractions:", {k: round(v, 3) for k, v in fit_bandwidth(g["floor_s"], g["softness"]).items()})
    for which, (coef, cap) in fit_flash(g["floor_s"], g["softness"]).items():
        print(f"flash {which}: coef {tuple(round(c, 4) for c in coef)} cap {cap:.3f}")
    model = ComputeModel(H100, sustained=False)  # the measurements' own (burst) clock
    e = gemm_errors(model)
    print(f"gemm |pred/meas-1| over {len(e)} rows: median {np.median(e):.2%} "
          f"p90 {np.percentile(e, 90):.2%} max {e.max():.2%}")
    f, b = flash_errors(model)
    print(f"flash fwd errors {np.round(f * 100, 1)} %; bwd {np.round(b * 100, 1)} %")
    print("log-space residual sigmas:", {k: round(v, 3) for k, v in residual_sigmas(model).items()})


if __name__ == "__main__":  # pragma: no cover
    main()
