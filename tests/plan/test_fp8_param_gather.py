"""FP8 weights gathered in FP8 (``training.fp8_param_gather``; Megatron-LM's ``--fp8-param-gather``: "keep the
compute param in fp8 ... and perform the param all-gather in fp8"): the distributed optimizer's and ZeRO-3's weight
all-gathers move 1 byte per parameter instead of 2, nothing else changes."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.errors import SpecError
from simcluster.plan.stack_bytes import spec_stack, weight_bytes
from simcluster.run import simulate_workload

FP8 = ("cluster.preset=dgx-h100", "training.precision=fp8", "parallelism.data=8", "parallelism.zero_stage=1",
       "model.layers=4", "training.global_batch=16")


def _gathers(out):
    return [t for t in out.tasks.tasks if t.name.startswith("zero.all_gather") and 0 in t.ranks]


@pytest.mark.parametrize("extra", [(), ("parallelism.overlap_param_gather=true",), ("parallelism.zero_stage=3",)])
def test_the_weight_gathers_move_half_the_bytes_and_nothing_else_changes(tmp_path, extra):
    bf16 = simulate_workload(make_spec(tmp_path, *FP8, *extra))
    fp8 = simulate_workload(make_spec(tmp_path, *FP8, *extra, "training.fp8_param_gather=true"))
    assert weight_bytes("fp8", spec_stack(fp8.spec)) == (1, 4)
    a, b = _gathers(bf16), _gathers(fp8)
    assert a and [t.name for t in a] == [t.name for t in b]
    assert sum(t.nbytes for t in b) == pytest.approx(sum(t.nbytes for t in a) / 2)
    reduce_bytes = [t.nbytes for t in bf16.tasks.tasks if t.name.startswith(("dp.", "zero.reduce"))]
    assert reduce_bytes == [t.nbytes for t in fp8.tasks.tasks if t.name.startswith(("dp.", "zero.reduce"))]
    assert fp8.summary["peak_memory_bytes"] == bf16.summary["peak_memory_bytes"]
    assert fp8.summary["iteration_time_s"] <= bf16.summary["iteration_time_s"]


@pytest.mark.parametrize("bad", [("training.precision=bf16",), ("parallelism.zero_stage=0",)])
def test_needs_fp8_and_a_sharded_optimizer(tmp_path, bad):
    with pytest.raises(SpecError, match="training.fp8_param_gather: gathers FP8 weights"):
        make_spec(tmp_path, *FP8, "training.fp8_param_gather=true", *bad)
