"""The corpus groups of issue 12 (megatron, stacks, memory) and the corpus as a whole (no simulation).

Each row's workload is package data (``simcluster/data/validation/<folder>/<key>.yaml``) whose top
comment names its source, layout and assumptions; these tests check that every row loads, its
workload validates and agrees with the row (stack, device), and that the corpus spans what
issue 12 asks: ≥ 30 rows, ≥ 4 device generations, ≥ 3 software stacks, ≥ 3 peak-memory rows,
sizes from ~100M to ~1T parameters. Running the rows: ``python -m simcluster validate-published
--group stacks`` (and megatron, memory), a few seconds each.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

from simcluster.costs.params import total_params
from simcluster.spec import load_workload, validate_file
from simcluster.validation import corpus
from simcluster.validation.corpus import MEMORY_METRICS

ROOT = Path(__file__).resolve().parents[2]
ALL = corpus.load_corpus()
NEW = [r for g in ALL if g.name in ("megatron", "stacks", "memory") for r in g.rows]
ROWS = [r for g in ALL for r in g.rows]
#: catalogue device -> generation (issue 12: "V100, A100, H100/H200, TPU v3/v4")
GENERATION = {"v100": "volta", "a100-40gb": "ampere", "a100-80gb": "ampere", "h100": "hopper",
              "h200": "hopper", "tpu-v3": "tpu", "tpu-v4": "tpu"}


@pytest.mark.parametrize("row", NEW, ids=lambda r: r.key)
def test_new_rows_are_package_data_that_validate_and_agree_with_their_row(row):
    assert not row.in_repository and row.path.is_file()
    assert validate_file(str(row.path)) == []
    spec = load_workload(row.path, overrides=list(row.overrides) or None)
    assert spec.training.framework == row.framework
    assert spec.cluster.device.name == row.device
    comment = "".join(line for line in row.path.read_text().splitlines(keepends=True) if line.startswith("#"))
    assert "Source" in comment and "Assumed" in comment, "the top comment gives the source and the assumptions"
    assert row.source and row.paper and row.system
    if row.metric in MEMORY:  # a published peak is a real GPU's: it fits the device
        assert 2**30 < row.published <= spec.cluster.device.memory_bytes


#: The memory metrics: the tensors' peak, and the peak the caching allocator reserves (issue 12 item 4), each also as
#: PyTorch's statistics count it (without the CUDA context and NCCL's buffers).
MEMORY = set(MEMORY_METRICS)


def test_package_data_ships_every_corpus_workload():
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["simcluster"]
    for row in ROWS:
        if not row.in_repository:
            rel = f"data/validation/{row.workload}"
            assert any(fnmatch.fnmatch(rel, g) for g in globs), f"{rel} is not package data"


def test_the_corpus_spans_what_issue_12_asks():
    assert len(ROWS) >= 30
    assert len({GENERATION[r.device] for r in ROWS}) >= 4
    assert {"megatron", "deepspeed", "pytorch", "jax"} <= {r.framework for r in ROWS}
    assert sum(r.metric in MEMORY for r in ROWS) >= 3
    kinds = {"time": {"iteration_time_s", "tokens_per_s", "hardware_tflops_per_gpu", "model_tflops_per_gpu"},
             "mfu": {"mfu"}, "memory": MEMORY}
    assert all(any(r.metric in m for r in ROWS) for m in kinds.values())
    sizes = [total_params(load_workload(r.path, overrides=list(r.overrides) or None).model)
             for r in ROWS if not r.in_repository or (ROOT / "workloads").is_dir()]
    assert min(sizes) < 0.2e9 and max(sizes) > 0.9e12


def test_memory_rows_reuse_the_throughput_rows_workloads():
    throughput = {r.workload for r in corpus.load_group("stacks").rows}
    assert all(r.workload in throughput for r in corpus.load_group("memory").rows)


def _neox_counted_params(spec) -> tuple[int, int]:
    """GPT-NeoX's ``utils.get_total_params`` for a gpt_j_residual model with two norms per layer and an untied head:
    (unique parameters, the count with the tensor-replicated LayerNorms, row-parallel biases and final norm t times)."""
    m, t = spec.model, spec.parallelism.tensor
    h, L, V = m.hidden, m.layers, m.vocab
    unique = L * (12 * h * h + 13 * h) + 2 * V * h + 2 * h
    return unique, unique + (t - 1) * (L * 6 * h + 2 * h)  # 4h of norms + 2h of row-parallel biases per layer


def test_gpt_neox_20b_row_is_117_tflops_through_gpt_neoxs_own_flop_counter():
    """GPT-NeoX logged TFLOP/s as train_batch · s · (6 · total_params + 60 · s · h · L) / (time · GPUs)
    (megatron/logging.py ``get_flops``, 2021-04 to 2023-09), ``total_params`` summing the parameters of
    every tensor and pipeline rank (``utils.get_total_params``: tensor-replicated LayerNorms, row-parallel
    biases and the final norm counted t times). From the workload's layout that count is the 20B weights'
    README figure, 20,556,201,984, and the row's published tokens/s is 117 TFLOP/s per GPU through it."""
    row = next(r for r in ROWS if r.key == "gpt-neox-20b")
    spec = load_workload(row.path)
    m = spec.model
    unique, counted = _neox_counted_params(spec)
    assert unique == 20_554_567_680 and counted == 20_556_201_984
    per_token = 6 * counted + 60 * m.seq_len * m.hidden * m.layers
    gpus = spec.parallelism.tensor * spec.parallelism.pipeline * spec.parallelism.data
    assert row.metric == "tokens_per_s"
    assert row.published == pytest.approx(117e12 * gpus / per_token, abs=1.0)
    assert total_params(m) == pytest.approx(unique, rel=1e-3)  # the simulator's own count, to its position table


def test_gpt_neox_one_node_row_is_the_published_samples_and_agrees_with_its_tflops():
    """Lambda's single-server GPT-NeoX run publishes 6.381 samples/s and 127.2 TFLOP/s per GPU: the row is the
    samples × 2,048 tokens, and GPT-NeoX's counter on the workload's model gives the TFLOP/s back (so the workload is
    the model that ran: hidden 4,096, 44 layers, the 20B vocabulary, TP 2 × PP 4 on 8 GPUs, 128 sequences a step)."""
    row = next(r for r in ROWS if r.key == "gpt-neox-9b-a100-8")
    spec = load_workload(row.path)
    m, p = spec.model, spec.parallelism
    assert row.metric == "tokens_per_s" and row.published == round(6.381 * m.seq_len)
    assert (p.tensor, p.pipeline, p.data, spec.training.global_batch) == (2, 4, 1, 128)
    _, counted = _neox_counted_params(spec)
    tflops = row.published * (6 * counted + 60 * m.seq_len * m.hidden * m.layers) / (p.tensor * p.pipeline) / 1e12
    assert tflops == pytest.approx(127.2, abs=0.15)


def test_a_corpus_row_says_where_its_iteration_goes():
    """Every corpus row of the JSON carries its bubble and exposed-communication fractions."""
    from simcluster.validation.runner import run_row

    row = next(r for g in corpus.load_corpus() for r in g.rows if r.key == "megatron2019-8.3b-8")
    r = run_row(row)
    assert r["bubble_fraction"] >= 0.0 and r["exposed_comm_fraction"] > 0.0  # tensor parallel 8, no pipeline
    assert r["bubble_fraction"] + r["exposed_comm_fraction"] < 1.0


def test_a_deepspeed_zero3_row_says_how_long_its_gpu_waits_for_the_host():
    """The ZeRO-3 rows of Narayanan et al. Table 2 carry their host wait (DeepSpeed's per-rank loops): with the
    compute utilization and the other two fractions it makes the whole iteration."""
    from simcluster.validation.runner import run_row

    row = next(r for g in corpus.load_corpus() for r in g.rows if r.key == "narayanan-zero3-175b-384")
    r = run_row(row)
    assert 0.0 < r["host_wait_fraction"] < 1.0 and r["bubble_fraction"] == 0.0
    other = next(r for g in corpus.load_corpus() for r in g.rows if r.key == "megatron2019-8.3b-8")
    assert run_row(other)["host_wait_fraction"] == 0.0
