"""Helpers for the spec tests: small YAML files written into tmp_path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

CLUSTER = """\
name: tiny
device: a100-80gb
gpus_per_node: 8
nodes: 2
intra_node: {fabric: nvswitch, bandwidth: "300 GB/s", latency: "2 us"}
inter_node: {fabric: fat-tree, nics_per_node: 8, nic_bandwidth: "200 Gb/s", latency: "5 us"}
"""

WORKLOAD = """\
name: small
model:
  layers: 8
  hidden: 1024
  heads: 16
  seq_len: 2048
  vocab: 50000
training:
  global_batch: 64
  micro_batch: 2
parallelism:
  tensor: 2
  pipeline: 2
cluster:
  path: tiny.yaml
"""


@pytest.fixture
def write(tmp_path: Path):
    """``write(name, text)`` writes dedented ``text`` into ``tmp_path/name`` and returns the path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    return _write


@pytest.fixture
def cluster_file(write) -> Path:
    """A valid 2-node cluster file ``tiny.yaml`` (16 A100-80GB)."""
    return write("tiny.yaml", CLUSTER)


@pytest.fixture
def workload(write):
    """A valid small workload (16 GPUs: tensor 2, pipeline 2, data 4) next to its cluster file."""
    write("tiny.yaml", CLUSTER)
    return write("small.yaml", WORKLOAD)

