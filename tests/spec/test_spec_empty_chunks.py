"""stage_layers may leave the first and last chunk empty (Llama 3 405B, §3.3.2), nothing else."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.errors import SpecError
from simcluster.run import simulate_workload

BASE = ("model.layers=6", "parallelism.pipeline=2", "parallelism.virtual_stages=4", "parallelism.schedule=interleaved",
        "training.global_batch=4")


def test_first_and_last_chunk_may_be_empty(tmp_path):
    spec = make_spec(tmp_path, *BASE, "parallelism.stage_layers=[0,1,1,1,1,1,1,0]")
    out = simulate_workload(spec)
    tl = out.result.timeline
    layers = set(tl[tl["kind"] == "compute"]["layer"]) - {-1}
    assert layers == set(range(6)) and out.summary["iteration_time_s"] > 0


@pytest.mark.parametrize("counts, reason", [("[1,0,1,1,1,1,1,0]", "entry 1 is 0"),
                                            ("[0,3,0,3,0,0,0,0]", "entry 2 is 0")])
def test_inner_empty_chunk_is_refused(tmp_path, counts, reason):
    with pytest.raises(SpecError, match=reason):
        make_spec(tmp_path, *BASE, f"parallelism.stage_layers={counts}")
