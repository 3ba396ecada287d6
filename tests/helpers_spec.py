"""Build workload specs for tests from a small base workload plus overrides."""

from __future__ import annotations

from pathlib import Path

from simcluster.spec import load_workload

BASE = """\
name: t
model: {layers: 8, hidden: 1024, heads: 16, seq_len: 1024, vocab: 32000}
training: {global_batch: 16, micro_batch: 1, precision: bf16}
parallelism: {tensor: 1, pipeline: 1, data: 1}
cluster: {preset: dgx-a100-80gb, nodes: 1}
"""


def make_spec(tmp_path: Path, *overrides: str, base: str = BASE):
    f = tmp_path / "w.yaml"
    f.write_text(base)
    return load_workload(str(f), overrides=list(overrides))
