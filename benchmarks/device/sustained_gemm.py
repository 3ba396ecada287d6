"""Sustained against burst GEMM rate on one GPU: the measurement the H100 calibration lacks.

The H100 calibration (``../shared/calibration/README.md``) times each product as the median of 10-25 runs
after 3 warm-ups, "clocks as found (SM 1980 MHz)": a burst of milliseconds. NVIDIA rates the H100's
989 TFLOP/s at a 1,830 MHz compute clock, and a training run keeps the GPU at its power limit for hours,
hot. This script runs one training-shaped bf16 product back to back for ``--seconds`` and prints, per
second, the achieved TFLOP/s beside the SM clock, board power and temperature ``nvidia-smi`` reports, then
the first second's rate over the last ten seconds' median: the factor between the calibration's bursts and
a sustained run.

Needs PyTorch with CUDA and ``nvidia-smi`` (not a dependency of simcluster; run it on the GPU machine)::

    python benchmarks/device/sustained_gemm.py --seconds 90 --m 8192 --n 12288 --k 12288
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def _smi() -> tuple[float, float, float]:
    """(SM clock MHz, board power W, temperature C) of GPU 0."""
    out = subprocess.run(["nvidia-smi", "--query-gpu=clocks.sm,power.draw,temperature.gpu",
                          "--format=csv,noheader,nounits", "-i", "0"], capture_output=True, text=True, check=True)
    clock, power, temp = (float(x) for x in out.stdout.strip().split(","))
    return clock, power, temp


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=90.0)
    ap.add_argument("--m", type=int, default=8192)
    ap.add_argument("--n", type=int, default=12288)
    ap.add_argument("--k", type=int, default=12288)
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("sustained_gemm: needs PyTorch with CUDA (pip install torch), run on the GPU machine", file=sys.stderr)
        return 2
    if not torch.cuda.is_available() or shutil.which("nvidia-smi") is None:
        print("sustained_gemm: no CUDA device or no nvidia-smi here", file=sys.stderr)
        return 2
    a = torch.randn(args.m, args.k, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(args.n, args.k, device="cuda", dtype=torch.bfloat16)
    flops = 2.0 * args.m * args.n * args.k
    for _ in range(3):
        torch.nn.functional.linear(a, b)
    torch.cuda.synchronize()
    print(f"bf16 product M={args.m} N={args.n} K={args.k}, {args.seconds:g} s back to back")
    print(f"{'second':>6} {'TFLOP/s':>8} {'SM MHz':>7} {'power W':>8} {'temp C':>7}")
    rates: list[float] = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        start, count = time.perf_counter(), 0
        while time.perf_counter() - start < 1.0:
            for _ in range(10):
                torch.nn.functional.linear(a, b)
            torch.cuda.synchronize()
            count += 10
        rate = count * flops / (time.perf_counter() - start) / 1e12
        rates.append(rate)
        clock, power, temp = _smi()
        print(f"{len(rates):6d} {rate:8.1f} {clock:7.0f} {power:8.0f} {temp:7.0f}", flush=True)
    tail = statistics.median(rates[-10:])
    print(f"first second {rates[0]:.1f} TFLOP/s, last ten seconds' median {tail:.1f}: sustained/burst "
          f"{tail / rates[0]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
