"""Workload files: defaults, cluster resolution, overrides, and every kind of problem."""

import json
from pathlib import Path

import pytest

from simcluster.errors import Problem, SpecError
from simcluster.spec import WorkloadSpec, load_workload, workload_from_data
from simcluster.spec import cluster as cluster_module


def problems(path, overrides=()) -> list[Problem]:
    with pytest.raises(SpecError) as exc:
        load_workload(path, overrides=list(overrides))
    return exc.value.problems


def lines(path, overrides=()) -> list[str]:
    return [str(p) for p in problems(path, overrides)]


def edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


# --- valid files -------------------------------------------------------------------------


def test_defaults_filled(workload):
    spec = load_workload(workload)
    assert isinstance(spec, WorkloadSpec)
    assert spec.name == "small"
    assert spec.source == str(workload)
    m, t, p = spec.model, spec.training, spec.parallelism
    assert (m.layers, m.hidden, m.heads, m.seq_len, m.vocab) == (8, 1024, 16, 2048, 50000)
    assert (m.ffn_hidden, m.kv_heads, m.mlp, m.tied_embeddings) == (4096, 16, "gelu", True)
    assert (t.global_batch, t.micro_batch, t.precision, t.optimizer, t.recompute, t.flash_attention) == (
        64, 2, "bf16", "adam", "none", True)
    assert (p.tensor, p.pipeline, p.data, p.context) == (2, 2, 4, 1)
    assert (p.sequence_parallel, p.virtual_stages, p.stage_layers, p.schedule) == (False, 1, None, "1f1b")
    assert (p.zero_stage, p.overlap_grad_reduce, p.grad_bucket_bytes) == (0, True, 25e6)
    assert spec.collectives == {op: "auto" for op in
                                ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all", "send")}
    assert spec.fidelity == "auto"
    assert spec.cluster.name == "tiny" and spec.cluster.num_gpus == 16
    assert spec.num_gpus == 16
    assert spec.num_microbatches == 8


def test_resolved_dict(workload):
    out = load_workload(workload).resolved_dict()
    assert json.loads(json.dumps(out)) == out
    assert out["parallelism"]["data"] == 4
    assert out["model"]["ffn_hidden"] == 4096
    assert out["cluster"]["device"]["name"] == "a100-80gb"
    assert out["cluster"]["intra_node"]["bandwidth"] == 300e9
    assert out["cluster"]["num_gpus"] == 16
    assert (out["num_gpus"], out["num_microbatches"]) == (16, 8)


def test_name_defaults_to_stem(workload):
    edit(workload, "name: small\n", "")
    assert load_workload(workload).name == "small"


def test_extensions(workload):
    workload.write_text(workload.read_text() + (
        "collectives: {all_reduce: ring}\nfidelity: full\n"))
    spec = load_workload(workload, ["parallelism.grad_bucket_bytes=50 MB", "model.kv_heads=4", "model.mlp=swiglu"])
    assert spec.collectives["all_reduce"] == "ring"
    assert spec.collectives["all_gather"] == "auto"
    assert spec.fidelity == "full"
    assert spec.parallelism.grad_bucket_bytes == 50e6
    assert spec.model.kv_heads == 4 and spec.model.mlp == "swiglu"


def test_overrides(workload):
    spec = load_workload(workload, ["parallelism.tensor=4", "training.recompute=full", "cluster.nodes=4"])
    assert spec.parallelism.tensor == 4
    assert spec.training.recompute == "full"
    assert spec.cluster.nodes == 4
    assert spec.parallelism.data == 4  # 32 GPUs / (4 * 2)


def test_devices_instead_of_nodes(workload):
    spec = load_workload(workload, ["cluster.devices=64"])
    assert spec.cluster.nodes == 8 and spec.cluster.num_gpus == 64
    assert spec.parallelism.data == 16


def test_explicit_data_may_leave_gpus_idle(workload):
    spec = load_workload(workload, ["parallelism.data=2"])
    assert spec.num_gpus == 8 and spec.cluster.num_gpus == 16
    assert spec.num_microbatches == 16


def test_preset_and_cluster_overrides(workload):
    edit(workload, "  path: tiny.yaml\n", "  preset: dgx-a100-80gb\n  nodes: 2\n  intra_node: {bandwidth: 600 GB/s}\n")
    spec = load_workload(workload)
    assert spec.cluster.name == "dgx-a100-80gb"
    assert spec.cluster.nodes == 2
    assert spec.cluster.intra_node.bandwidth == 600e9
    assert spec.cluster.intra_node.latency == 2e-6  # kept from the preset
    assert spec.cluster.inter_node.nics_per_node == 8


def test_preset_shorthand(workload):
    edit(workload, "cluster:\n  path: tiny.yaml\n", "cluster: dgx-a100-80gb\n")
    spec = load_workload(workload, ["cluster.nodes=2"])
    assert spec.cluster.name == "dgx-a100-80gb" and spec.num_gpus == 16


def test_inline_cluster(workload):
    edit(workload, "  path: tiny.yaml\n", "  device: h100\n  gpus_per_node: 4\n  intra_node: {bandwidth: 450 GB/s}\n")
    spec = load_workload(workload)
    assert spec.cluster.device.name == "h100" and spec.cluster.num_gpus == 4
    assert spec.cluster.source == "<inline>"
    assert spec.parallelism.data == 1


def test_virtual_stages_select_interleaved(workload):
    spec = load_workload(workload, ["parallelism.virtual_stages=2"])
    assert spec.parallelism.schedule == "interleaved"


def test_uneven_stage_layers(workload):
    edit(workload, "  layers: 8\n", "  layers: 7\n")
    spec = load_workload(workload, ["parallelism.stage_layers=[3, 4]"])
    assert spec.parallelism.stage_layers == [3, 4]


def test_workload_from_data():
    data = {
        "model": {"layers": 2, "hidden": 64, "heads": 4, "seq_len": 128, "vocab": 100},
        "training": {"global_batch": 4},
        "cluster": {"preset": "dgx-a100-80gb"},
    }
    spec = workload_from_data(data, overrides=["parallelism.tensor=2"])
    assert spec.name == "inline"  # a name is a file name (issue 19): the source "<inline>" made one
    assert spec.parallelism.data == 4


# --- problems ----------------------------------------------------------------------------


def test_missing_file(tmp_path):
    (p,) = problems(tmp_path / "gone.yaml")
    assert str(p) == f"{tmp_path / 'gone.yaml'}: file not found"


def test_yaml_syntax_error(workload):
    edit(workload, "  heads: 16\n", "  heads: [16\n")
    (p,) = problems(workload)
    assert p.file == str(workload) and p.line is not None and p.line >= 5
    assert "YAML syntax error" in p.reason


def test_unknown_key_lists_known(workload):
    edit(workload, "  micro_batch: 2\n", "  micro_batch: 2\n  microbatch: 2\n")
    assert lines(workload) == [
        f"{workload}:11: training.microbatch: unknown key; known keys: attention_kernel, "
        "cross_entropy, data_loading_wait, distribute_saved_activations, flash_attention, fp8_param_gather, fp8_recipe, fp8_weight_cache, framework, "
        "fsdp_param_dtype, "
        "fused_kernels, global_batch, grad_reduce_in_bf16, gradient_accumulation_fusion, micro_batch, optimizer, optimizer_dtype, precision, "
        "recompute, recompute_modules, recompute_num_layers, recompute_saves, train_metrics"
    ]


def test_unknown_top_level_key(workload):
    edit(workload, "name: small\n", "name: small\nmodle: {}\n")
    (line,) = lines(workload)
    known = {"cluster", "collectives", "fidelity", "model", "name", "parallelism", "training"}
    assert line.startswith(f"{workload}:2: modle: unknown key; known keys: ")
    listed = line.split("known keys: ")[1].split(", ")
    assert known <= set(listed) and listed == sorted(listed)


def test_wrong_type(workload):
    edit(workload, "  layers: 8\n", "  layers: many\n")
    assert lines(workload) == [f"{workload}:3: model.layers: expected an integer, got 'many'"]


def test_missing_required_key(workload):
    edit(workload, "  vocab: 50000\n", "")
    assert lines(workload) == [f"{workload}:2: model.vocab: required key is missing"]


def test_bad_choice(workload):
    edit(workload, "  micro_batch: 2\n", "  micro_batch: 2\n  precision: fp4\n")
    assert lines(workload) == [f"{workload}:11: training.precision: expected 'bf16', 'fp16', 'fp32' or 'fp8', got 'fp4'"]


def test_bad_unit_string(workload):
    edit(workload, "  pipeline: 2\n", "  pipeline: 2\n  grad_bucket_bytes: 25 MB/s\n")
    assert lines(workload) == [
        f"{workload}:14: parallelism.grad_bucket_bytes: expected a size like '80 GiB', got '25 MB/s', which is a bandwidth"
    ]


def test_several_problems_at_once(workload):
    edit(workload, "  layers: 8\n", "  layers: many\n")
    edit(workload, "  tensor: 2\n", "  tensor: two\n  tensr: 2\n")
    found = lines(workload)
    assert len(found) == 3
    assert found[0].startswith(f"{workload}:3: model.layers")


def test_tensor_must_divide_heads(workload):
    assert lines(workload, ["parallelism.tensor=3", "parallelism.data=1", "model.ffn_hidden=3000"]) == [
        "--set: parallelism.tensor: tensor 3 does not divide heads 16"]
    edit(workload, "  tensor: 2\n", "  tensor: 3\n  data: 1\n")
    assert lines(workload) == [
        f"{workload}:12: parallelism.tensor: tensor 3 does not divide heads 16",
        f"{workload}:12: parallelism.tensor: tensor 3 does not divide ffn_hidden 4096",
    ]


def test_problem_caused_by_set_names_set(workload):
    # tensor is written in the file, but the offending kv_heads came from --set (fewer K/V heads
    # than tensor ranks are replicated, so they must divide tensor evenly)
    assert lines(workload, ["model.kv_heads=8", "model.heads=24", "model.hidden=1536", "parallelism.tensor=3",
                            "parallelism.data=1"]) == ["--set: parallelism.tensor: tensor 3 does not divide kv_heads 8"]


def test_tensor_must_divide_kv_heads(workload):
    # kv_heads 1 with tensor 2 is multi-query attention, the K/V head replicated: valid
    edit(workload, "  heads: 16\n", "  heads: 16\n  kv_heads: 1\n")
    assert load_workload(workload).model.kv_heads == 1
    # 4 K/V heads cannot be replicated evenly over 6 ranks (heads 24, hidden 1536: d = 64)
    assert lines(workload, ["model.heads=24", "model.hidden=1536", "model.kv_heads=4", "parallelism.tensor=6",
                            "parallelism.data=1"]) == [
        "--set: parallelism.tensor: kv_heads 4 does not divide tensor 6 (fewer K/V heads than tensor ranks "
        "are replicated evenly)"]


def test_kv_heads_must_divide_heads(workload):
    edit(workload, "  heads: 16\n", "  heads: 16\n  kv_heads: 6\n")
    assert f"{workload}:6: model.kv_heads: kv_heads 6 does not divide heads 16" in lines(workload)


def test_more_stages_than_layers(workload):
    edit(workload, "  layers: 8\n", "  layers: 3\n")
    assert lines(workload, ["parallelism.virtual_stages=2"]) == [
        "--set: parallelism.pipeline: pipeline 2 × virtual_stages 2 = 4 stages, more than the model's 3 layers"
    ]
    edit(workload, "  layers: 3\n", "  layers: 1\n")
    assert lines(workload) == [f"{workload}:13: parallelism.pipeline: pipeline 2 = 2 stages, more than the model's 1 layer"]


def test_too_many_gpus(workload):
    edit(workload, "  pipeline: 2\n", "  pipeline: 2\n  data: 8\n")
    assert lines(workload) == [
        f"{workload}:14: parallelism.data: tensor × pipeline × data × context = 2×2×8×1 = 32 GPUs, "
        "more than the cluster's 16 GPUs (2 nodes × 8)"
    ]


def test_global_batch_multiple(workload):
    edit(workload, "  global_batch: 64\n", "  global_batch: 60\n")
    assert lines(workload) == [
        f"{workload}:9: training.global_batch: 60 is not a multiple of micro_batch × data = 2×4 = 8"]


def test_stage_layers_length_and_sum(workload):
    edit(workload, "  pipeline: 2\n", "  pipeline: 2\n  stage_layers: [3, 3, 3]\n")
    assert lines(workload) == [
        f"{workload}:14: parallelism.stage_layers: has 3 entries; needs one per stage (pipeline × virtual_stages = 2)",
        f"{workload}:14: parallelism.stage_layers: sums to 9; needs model.layers = 8",
    ]


def test_stage_layers_every_stage_holds_a_layer(workload):
    (line,) = lines(workload, ["parallelism.stage_layers=[8, 0]"])
    assert line == "--set: parallelism.stage_layers: pipeline stage 1 holds no layer"
    (line,) = lines(workload, ["parallelism.stage_layers=[9, -1]"])
    assert line == "--set: parallelism.stage_layers.1: must be greater than or equal to 0, got -1"


def test_interleaved_needs_virtual_stages(workload):
    edit(workload, "  pipeline: 2\n", "  pipeline: 2\n  schedule: interleaved\n")
    assert lines(workload) == [f"{workload}:14: parallelism.schedule: interleaved needs virtual_stages >= 2, got 1"]


def test_interleaved_needs_microbatches_multiple_of_pipeline(workload):
    edit(workload, "  pipeline: 2\n", "  pipeline: 4\n  virtual_stages: 2\n")
    edit(workload, "  global_batch: 64\n", "  global_batch: 12\n")
    edit(workload, "  micro_batch: 2\n", "  micro_batch: 1\n")
    # 16 GPUs / (2 × 4) = data 2; 12 / (1 × 2) = 6 microbatches, not a multiple of 4
    assert lines(workload) == [
        f"{workload}:14: parallelism.schedule: interleaved needs the number of microbatches (6) "
        "to be a multiple of pipeline (4)"
    ]


def test_one_chunk_schedule_with_virtual_stages(workload):
    edit(workload, "  pipeline: 2\n", "  pipeline: 2\n  schedule: 1f1b\n  virtual_stages: 2\n")
    assert lines(workload) == [
        f"{workload}:15: parallelism.virtual_stages: 2 model chunks per rank need schedule interleaved, not 1f1b"]


def test_unknown_schedule(workload):
    edit(workload, "  pipeline: 2\n", "  pipeline: 2\n  schedule: zigzag\n")
    (line,) = lines(workload)
    assert line.startswith(f"{workload}:14: parallelism.schedule: unknown schedule 'zigzag'; known: 1f1b, dualpipe, gpipe, ")


def test_unknown_collective(workload):
    workload.write_text(workload.read_text() + "collectives:\n  all_reduce: magic\n  all_scatter: ring\n")
    found = lines(workload)
    assert any(s.startswith(f"{workload}:17: collectives.all_reduce: unknown collective algorithm 'magic'; known: auto,")
               for s in found)
    assert any(s.startswith(f"{workload}:18: collectives.all_scatter: unknown collective 'all_scatter'; known: all_reduce")
               for s in found)


def test_data_not_dividing(workload):
    (line,) = lines(workload, ["parallelism.tensor=1", "parallelism.pipeline=3"])
    assert line == ("--set: parallelism.data: not given, and the cluster's 16 GPUs (2 nodes × 8) do not divide "
                    "evenly by tensor × pipeline × context = 3")


def test_context_must_divide_seq_len(workload):
    assert lines(workload, ["parallelism.context=3", "parallelism.data=1"]) == [
        "--set: parallelism.context: context 3 does not divide seq_len 2048"]


def test_unknown_preset_lists_known(workload):
    edit(workload, "  path: tiny.yaml\n", "  preset: dgx-9000\n")
    (p,) = problems(workload)
    assert (p.file, p.line, p.key) == (str(workload), 15, "cluster.preset")
    assert p.reason.startswith("unknown preset 'dgx-9000'; known: ") and "dgx-a100-80gb" in p.reason


def test_unknown_device_lists_known(workload):
    edit(workload, "  path: tiny.yaml\n", "  path: tiny.yaml\n  device: b300\n")
    (p,) = problems(workload)
    assert (p.file, p.line, p.key) == (str(workload), 16, "cluster.device")
    assert p.reason.startswith("unknown device 'b300'; known: a100-40gb, a100-80gb, h100, h200")


def test_missing_cluster_file(workload):
    edit(workload, "  path: tiny.yaml\n", "  path: other.yaml\n")
    (line,) = lines(workload)
    assert line.startswith(f"{workload}:15: cluster.path: cluster file not found: ")


def test_missing_cluster_section(workload):
    edit(workload, "cluster:\n  path: tiny.yaml\n", "")
    (line,) = lines(workload)
    assert line.startswith(f"{workload}: cluster: required section is missing")


def test_unknown_cluster_key_in_workload(workload):
    edit(workload, "  path: tiny.yaml\n", "  path: tiny.yaml\n  node: 3\n")
    (line,) = lines(workload)
    assert line.startswith(f"{workload}:16: cluster.node: unknown key; known keys: ")
    listed = line.split("known keys: ")[1].split(", ")
    assert {"device", "devices", "gpus_per_node", "nodes", "path", "preset", "stragglers"} <= set(listed)
    assert listed == sorted(listed)


def test_nodes_and_devices_conflict(workload):
    edit(workload, "  path: tiny.yaml\n", "  path: tiny.yaml\n  nodes: 2\n  devices: 16\n")
    assert lines(workload) == [f"{workload}:17: cluster.devices: give nodes or devices, not both"]


def test_devices_must_fill_nodes(workload):
    assert lines(workload, ["cluster.devices=12"]) == ["--set: cluster.devices: 12 is not a whole number of nodes of 8 GPUs"]


def test_fewer_devices_than_a_node_are_part_of_one_node():
    """One H100 of a DGX: one node of one GPU, its own NIC; four: four GPUs and four NICs; a TPU host is whole."""
    base = Path(__file__).resolve().parents[2] / "workloads" / "toy-8gpu.yaml"
    one = load_workload(base, ["cluster.preset=dgx-h100", "cluster.devices=1", "parallelism.tensor=1",
                               "parallelism.pipeline=1", "parallelism.data=1"]).cluster
    assert (one.nodes, one.gpus_per_node, one.inter_node.nics_per_node, one.num_gpus) == (1, 1, 1, 1)
    assert one.intra_node.fabric == "nvswitch"
    four = load_workload(base, ["cluster.preset=dgx-h100", "cluster.devices=4", "parallelism.data=1"]).cluster
    assert (four.nodes, four.gpus_per_node, four.inter_node.nics_per_node) == (1, 4, 4)
    with pytest.raises(SpecError, match="1 is not a whole number of nodes of 4 GPUs"):
        load_workload(base, ["cluster.preset=tpu-v4-pod", "cluster.devices=1", "parallelism.tensor=1",
                             "parallelism.pipeline=1", "parallelism.data=1"])


def test_problem_in_cluster_file_names_that_file(workload, cluster_file):
    edit(cluster_file, 'bandwidth: "300 GB/s"', 'bandwidth: "300 GB"')
    assert lines(workload) == [
        f"{cluster_file}:5: intra_node.bandwidth: expected a bandwidth like '300 GB/s', got '300 GB', which is a size"]


def test_problem_in_preset_names_the_preset(workload, tmp_path, monkeypatch):
    presets = tmp_path / "topologies"
    presets.mkdir()
    (presets / "broken.yaml").write_text("device: h100\ngpus_per_node: 8\nintra_node: {bandwidth: 1e9, latency: soon}\n")
    monkeypatch.setattr(cluster_module, "PRESETS_DIR", presets)
    edit(workload, "  path: tiny.yaml\n", "  preset: broken\n")
    (p,) = problems(workload)
    assert p.file.endswith("topologies/broken.yaml")
    assert (p.line, p.key) == (3, "intra_node.latency")
    assert p.reason == "expected a time like '2 us', got 'soon'"


def test_cluster_override_problem_names_workload(workload):
    edit(workload, "  path: tiny.yaml\n", "  path: tiny.yaml\n  intra_node: {latency: 3 GB}\n")
    assert lines(workload) == [
        f"{workload}:16: cluster.intra_node.latency: expected a time like '2 us', got '3 GB', which is a size"]


def test_set_values_name_set(workload):
    assert lines(workload, ["model.layers=many"]) == ["--set: model.layers: expected an integer, got 'many'"]
    assert lines(workload, ["cluster.intra_node.bandwidth=fast"]) == [
        "--set: cluster.intra_node.bandwidth: expected a bandwidth like '300 GB/s', got 'fast'"]


def test_set_unknown_key(workload):
    (line,) = lines(workload, ["parallelism.tensr=4"])
    assert line.startswith("--set: parallelism.tensr: unknown key; known keys: context, data,")
    (line,) = lines(workload, ["trainig.micro_batch=4"])
    assert line.startswith("--set: trainig: unknown key; known keys: cluster, collectives")


def test_set_malformed(workload):
    assert lines(workload, ["parallelism.tensor"]) == [
        "--set: parallelism.tensor: expected KEY=VALUE, got 'parallelism.tensor'"]


def test_set_comma_list_is_a_string(workload):
    assert lines(workload, ["parallelism.tensor=1,2"]) == ["--set: parallelism.tensor: expected an integer, got '1,2'"]


def test_bool_is_not_an_int(workload):
    assert lines(workload, ["parallelism.tensor=true"]) == ["--set: parallelism.tensor: expected an integer, got True"]


def test_preset_and_path_conflict(workload):
    edit(workload, "  path: tiny.yaml\n", "  path: tiny.yaml\n  preset: dgx-a100-80gb\n")
    assert lines(workload) == [f"{workload}:15: cluster.path: give preset or path, not both"]


@pytest.mark.parametrize("value", ["0", "many", "true"])
def test_devices_must_be_positive_int(workload, value):
    (line,) = lines(workload, [f"cluster.devices={value}"])
    assert line.startswith("--set: cluster.devices: expected a positive integer")


def test_cluster_section_not_a_mapping(workload):
    edit(workload, "cluster:\n  path: tiny.yaml\n", "cluster: [1, 2]\n")
    (line,) = lines(workload)
    assert line.startswith(f"{workload}:14: cluster: expected a section of keys")


def test_inline_cluster_problems_name_workload(workload):
    edit(workload, "  path: tiny.yaml\n", "  gpus_per_node: 4\n  intra_node: {bandwidth: 1e9}\n")
    assert lines(workload) == [f"{workload}:14: cluster.device: required key is missing"]


def test_section_of_wrong_shape(workload):
    assert lines(workload, ["training=7"]) == ["--set: training: expected a section of keys, got 7"]


def test_sequence_parallel_needs_tensor_to_divide_seq_len(workload):
    assert lines(workload, ["model.seq_len=2047", "parallelism.sequence_parallel=true"]) == [
        "--set: parallelism.sequence_parallel: sequence parallelism needs tensor 2 to divide seq_len 2047"]


def test_hidden_divisible_by_heads(workload):
    assert lines(workload, ["model.hidden=1000"]) == ["--set: model.heads: heads 16 does not divide hidden 1000"]


def test_zero_stage_range(workload):
    assert lines(workload, ["parallelism.zero_stage=4"]) == [
        "--set: parallelism.zero_stage: must be less than or equal to 3, got 4"]


def test_fidelity_choice(workload):
    assert lines(workload, ["fidelity=fast"]) == ["--set: fidelity: expected 'auto', 'symmetric', 'partial' or 'full', got 'fast'"]


def test_model_dump_round_trip_and_pickle(workload):
    import pickle

    spec = load_workload(workload)
    assert WorkloadSpec.model_validate(spec.model_dump()) == spec
    assert pickle.loads(pickle.dumps(spec)) == spec
