"""Megatron-Core's ``--pipeline-model-parallel-layout`` read as ``parallelism.stage_layers`` (simcluster.spec.
pipeline_layout; Megatron-LM ``PipelineParallelLayerLayout.parse_str_to_list`` / ``validate_layer_layout``)."""

from __future__ import annotations

import pytest

from simcluster.errors import SpecError
from simcluster.spec.megatron import megatron_workload
from simcluster.spec.pipeline_layout import layout_chunks, stage_layers_of


def test_megatron_cores_own_example_unrolls():
    """parse_str_to_list's docstring: "Ettt|(tt|)*29,m|L" is [E,t,t,t] + [t,t] × 29 + [m], [L]."""
    assert layout_chunks("Ettt|(tt|)*29,m|L") == ["Ettt"] + ["tt"] * 29 + ["m", "L"]
    assert layout_chunks("Et*2|(tt|)*22t|(tt|)*7mL") == ["Ett"] + ["tt"] * 22 + ["t"] + ["tt"] * 7 + ["mL"]


def test_deepseek_v3_layouts_as_stage_layers():
    """Megatron-Bridge's and the model zoo's H100 layout (PP 8 × VP 4) and the zoo's long-context one: 61 decoder
    layers, the MTP layer and the loss in the last chunk."""
    assert stage_layers_of("Et|(tt|)*30mL", 8, 61, 1) == ([1] + [2] * 30 + [0], 4)
    assert stage_layers_of("Et*2|(tt|)*22t|(tt|)*7mL", 8, 61, 1) == ([2] + [2] * 22 + [1] + [2] * 7 + [0], 4)
    assert stage_layers_of("Ett|tL", 2, 3) == ([2, 1], 1)


@pytest.mark.parametrize("layout, pipeline, layers, mtp, why", [
    ("Et|(tt|)*30mL", 3, 61, 1, "32 model chunks do not divide over pipeline 3"),
    ("tE|(tt|)*30mL", 8, 61, 1, "embedding"),
    ("Et|(tt|)*30Lm", 8, 61, 1, "loss"),
    ("Et|(tt|)*30mL", 8, 60, 1, "holds 61 decoder layers"),
    ("Et|(tt|)*30L", 8, 61, 1, "holds 0 MTP layers"),
    ("Et|(tt|)*29tm|tL", 8, 61, 1, "must all follow the decoder layers in the last chunk"),
    ("Ex|(tt|)*30mL", 8, 61, 1, "unknown layer character 'x'"),
    ("E(t)*99999999|L", 1, 61, 0, "unrolls to more than"),
])
def test_what_the_simulator_cannot_place_is_refused(layout, pipeline, layers, mtp, why):
    with pytest.raises(ValueError, match=why):
        stage_layers_of(layout, pipeline, layers, mtp)


def test_import_megatron_reads_the_layout():
    line = ("--num-layers 7 --hidden-size 1024 --num-attention-heads 16 --seq-length 1024 --global-batch-size 64 "
            "--vocab-size 32000 --tokenizer-type NullTokenizer --bf16 --pipeline-model-parallel-size 2 "
            "--pipeline-model-parallel-layout 'Et|(tt|)*2ttL'")
    data, ignored = megatron_workload(line, gpus=8)
    p = data["parallelism"]
    assert (p["stage_layers"], p["virtual_stages"], p["schedule"]) == ([1, 2, 2, 2], 2, "interleaved")
    assert "--pipeline-model-parallel-layout" not in ignored
    with pytest.raises(SpecError, match="holds 7 decoder layers"):
        megatron_workload(line.replace("--num-layers 7", "--num-layers 8"), gpus=8)
    with pytest.raises(SpecError, match="cannot be given with"):
        megatron_workload(line + " --num-layers-per-virtual-pipeline-stage 2", gpus=8)
