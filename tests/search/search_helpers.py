"""Toy workloads for the search tests: small enough that a simulation takes a few milliseconds."""

from __future__ import annotations

from pathlib import Path

TOY = """\
name: toy-search
model:
  layers: 4
  hidden: 512
  heads: 8
  seq_len: 512
  vocab: 8000
training:
  global_batch: 16
  micro_batch: 2
  precision: bf16
  recompute: none
parallelism:
  tensor: 2
  pipeline: 2
  data: 2
cluster:
  preset: dgx-a100-80gb
  nodes: 1
"""

# The same model on GPUs with a small memory: most layouts do not fit (the workspace alone is 0.78 GiB).
TIGHT = TOY.replace("name: toy-search", "name: toy-tight").replace(
    "  nodes: 1\n",
    "  nodes: 1\n  device: {name: small, peak_flops: \"312 TFLOP/s\", memory: \"0.9 GiB\", "
    "memory_bandwidth: \"2039 GB/s\"}\n")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
