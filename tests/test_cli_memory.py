"""A layout that does not fit: GPT-3 175B with neither tensor nor pipeline parallelism on one
DGX A100 80GB node. ``run`` still simulates it (exit 0), summary.json says
``fits_in_memory: false``, details.json holds the per-category breakdown and the terminal
summary says so plainly.

The published layout has 1,536 sequences per iteration; here the global batch is 8 (one
microbatch per data-parallel GPU) so the test runs in ~3 s. Memory does not depend on it:
without pipelining one microbatch is in flight whatever the batch.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from simcluster.cli import main
from simcluster.reporting.text import memory_verdict, print_summary

ROOT = Path(__file__).resolve().parent.parent
GPT3 = ROOT / "workloads" / "gpt3-175b.yaml"
NO_MODEL_PARALLEL = ("parallelism.tensor=1", "parallelism.pipeline=1", "parallelism.data=8", "cluster.nodes=1",
                     "training.global_batch=8")
l, h, V, s = 96, 12288, 51200, 2048
PSI = 12 * l * h * h + 13 * l * h + V * h + s * h + 2 * h  # GPT-3 175B, tied embeddings


def test_gpt3_without_model_parallelism_does_not_fit(tmp_path):
    argv = ["run", str(GPT3), "--out", str(tmp_path)]
    for o in NO_MODEL_PARALLEL:
        argv += ["--set", o]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    assert rc == 0, err.getvalue()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["fits_in_memory"] is False
    assert summary["peak_memory_bytes"] > summary["memory_capacity_bytes"] == 80 * 2**30
    (mem,) = json.loads((tmp_path / "details.json").read_text())["memory"]
    assert (mem["weights"], mem["gradients"], mem["optimizer_states"]) == pytest.approx(
        (2 * PSI, 2 * PSI, 16 * PSI), rel=1e-12)  # fp16 under Megatron: 20 bytes per parameter (its optimizer's
    # fp32 copy of the gradients; Megatron-Core's dist_optimizer.md), 3.5 TB
    assert mem["total"] == summary["peak_memory_bytes"]
    text = out.getvalue()
    GiB = 2**30
    assert "fits in memory   no" in text
    need = summary["peak_memory_bytes"] / GiB
    assert f"DOES NOT FIT     needs {need:.2f} GiB per GPU, the device has 80.00 GiB" in text
    assert (f"stage 0 memory   weights {2 * PSI / GiB:.2f} GiB, gradients {2 * PSI / GiB:.2f} GiB, "
            f"optimizer states {16 * PSI / GiB:.2f} GiB") in text  # 325.25, 325.25, 2601.97 GiB


def test_a_layout_that_fits_prints_no_verdict():
    s = {"fits_in_memory": True, "peak_memory_bytes": 1.0, "memory_capacity_bytes": 2.0}
    assert memory_verdict(s, {"memory": [{"stage": 0, "total": 1.0}]}) == []
    assert "DOES NOT FIT" not in print_summary(s, {})
    assert "DOES NOT FIT" in print_summary({**s, "fits_in_memory": False}, {})  # no details: still said
