"""Helpers for the sweep tests: small sweep files over the toy workload, worker functions
that fail on purpose (module-level, so worker processes can import them)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pandas as pd

from simcluster.spec.sweep import load_sweep
from simcluster.sweep.worker import simulate_point

ROOT = Path(__file__).resolve().parent.parent.parent
TOY = ROOT / "workloads" / "toy-8gpu.yaml"
EXAMPLES = ROOT / "workloads" / "sweeps"

#: 4 × 3 = 12 points on the toy (pipeline 2 from the base): tensor 8 needs 16 GPUs (3 invalid).
SMALL = """\
name: small
base: {base}
set:
  parallelism.data: null
grid:
  parallelism.tensor: [1, 2, 4, 8]
  training.micro_batch: [1, 2, 4]
"""


def write_sweep(folder: Path, text: str = SMALL, name: str = "sweep.yaml", base: Path = TOY) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).replace("{base}", str(base)))
    return path


def small_sweep(folder: Path, text: str = SMALL):
    return load_sweep(write_sweep(folder, text))


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    """A results table without what may differ between two runs of one sweep (wall time)."""
    return table.drop(columns=["wall_s"]).reset_index(drop=True)


def _is(spec, tensor: int, micro_batch: int) -> bool:
    return spec.parallelism.tensor == tensor and spec.training.micro_batch == micro_batch


def die_once(marker: str, spec):
    """Kill this worker process the first time it gets tensor 2, micro batch 2."""
    if _is(spec, 2, 2) and not os.path.exists(marker):
        Path(marker).write_text("died")
        os._exit(3)
    return simulate_point(spec)


def always_die(spec):
    """Kill this worker process whenever it gets tensor 4, micro batch 1."""
    if _is(spec, 4, 1):
        os._exit(3)
    return simulate_point(spec)


def raise_at_tensor_4(spec):
    """An exception escaping the worker function for tensor 4."""
    if spec.parallelism.tensor == 4:
        raise RuntimeError("boom at tensor 4")
    return simulate_point(spec)
