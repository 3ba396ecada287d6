"""The held-out MLPerf Training Llama 3.1 submissions on H100 and H200 (``benchmarks/validation/mlperf_llama31.py``):
every row builds its submission's layout, and the 405B runs, NVIDIA's on H100 and Nebius's on H200, stay within the
corpus' ±10 % (the full script, 10 rows, about 45 s, is run by hand: 405B MAPE 2.3 %, 7 of 7 inside their 80 %
intervals; HPE's 8B on H200 −3.6 %; Cisco's 8B on H100 +23 % and +53 %, unexplained). Here about 15 s."""

from __future__ import annotations

import pytest

from helpers_bench import load_benchmark
from simcluster import api

ML = load_benchmark("mlperf_llama31")


def test_every_row_builds_its_submissions_layout():
    assert len(ML.ROWS) == 10 and len({r.system for r in ML.ROWS}) == 10
    for row in ML.ROWS:
        spec = api.load(ML.workload(row), ML.overrides(row))
        par, tr = spec.parallelism, spec.training
        assert spec.num_gpus == 8 * row.nodes == par.tensor * par.pipeline * par.context * par.data
        assert (par.tensor, par.context, par.pipeline) == (row.tensor, row.context, 8 if row.model == "405b" else 1)
        assert spec.num_microbatches * tr.micro_batch * par.data == tr.global_batch == row.global_batch
        assert spec.cluster.device.name == row.device and spec.model.seq_len == 8192 and tr.precision == "fp8"
        assert spec.model.vocab % (128 * par.tensor) == 0
        if row.model == "405b":  # the embedding and the loss counted as one layer each in the split
            assert par.virtual_stages == 8 and list(par.stage_layers) == [1] + [2] * 62 + [1]


@pytest.mark.parametrize("row", [r for r in ML.ROWS if r.model == "405b" and r.nodes in (128, 1024)],
                         ids=lambda r: f"{r.submitter}-{r.nodes}")
def test_405b_runs_within_ten_percent(row):
    error = float(ML.predict(row)["tokens_per_s"]) / ML.published_tokens_per_s(row) - 1
    assert abs(error) <= 0.10, (row.system, error)
