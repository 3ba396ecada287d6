"""All-reduce bus bandwidth of four reference systems, against what NCCL reaches on them.

Run: ``python benchmarks/collective_busbw.py`` (a few seconds). For each system it runs
``python -m simcluster collective --op all_reduce --min 8KiB --max 8GiB --step-factor 4``
(``--algorithm auto``: the algorithm is chosen per size) and prints one Markdown row: busbw
in GB/s at 8 KiB, 2 MiB, 32 MiB, 512 MiB and 8 GiB, and the large-message busbw NCCL's
all_reduce_perf reaches on that system (the targets of
``tests/collectives/test_collectives_nccl.py``, which holds the simulator to them within
±10 %; the link efficiencies behind them are in ``simcluster/topology/efficiency.py``).
busbw = algbw × 2(n−1)/n (nccl-tests ``doc/PERFORMANCE.md``).
"""

from __future__ import annotations

import subprocess
import sys

#: (label, preset, GPUs, NCCL busbw in GB/s)
SYSTEMS = (
    ("8× A100, NVSwitch", "dgx-a100-80gb", 8, 230),
    ("8× H100, NVSwitch", "dgx-h100", 8, 370),
    ("16 DGX A100, 8× HDR each", "dgx-a100-80gb", 128, 192),
    ("4 DGX-1, 4× EDR each", "dgx1-v100", 32, 48),
)
COLUMNS = {8 * 2**10: "8 KiB", 2 * 2**20: "2 MiB", 32 * 2**20: "32 MiB", 512 * 2**20: "512 MiB", 8 * 2**30: "8 GiB"}


def busbw(preset: str, gpus: int) -> dict[int, float]:
    """size in bytes -> busbw in GB/s, from the ``collective`` command's output."""
    out = subprocess.run(
        [sys.executable, "-m", "simcluster", "collective", "--op", "all_reduce", "--min", "8KiB", "--max", "8GiB",
         "--step-factor", "4", "--gpus", str(gpus), "--cluster", preset],
        check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        if not line.startswith("#") and line.strip():
            size, _count, _type, _time, _algbw, bus, _algorithm = line.split()
            rows[int(size)] = float(bus)
    return rows


def main() -> None:
    print("| system (`--cluster`, `--gpus`) | " + " | ".join(COLUMNS.values()) + " | NCCL |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for label, preset, gpus, nccl in SYSTEMS:
        rows = busbw(preset, gpus)
        cells = " | ".join(f"{rows[size]:.1f}" if rows[size] >= 1 else f"{rows[size]:.2f}" for size in COLUMNS)
        print(f"| {label} (`{preset}`, {gpus}) | {cells} | ~{nccl} |", flush=True)


if __name__ == "__main__":
    main()
