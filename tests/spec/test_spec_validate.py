"""``validate_file``: workload or cluster, every problem listed, empty when fine."""

from simcluster.spec import validate_file


def test_valid_workload(workload):
    assert validate_file(workload) == []


def test_valid_cluster(cluster_file):
    assert validate_file(cluster_file) == []


def test_preset_files_are_valid():
    from simcluster.spec import PRESETS_DIR

    for path in sorted(PRESETS_DIR.glob("*.yaml")):
        assert validate_file(path) == [], path


def test_workload_problems_collected(workload):
    text = workload.read_text().replace("  layers: 8\n", "  layers: many\n").replace("  tensor: 2\n", "  tensr: 2\n")
    workload.write_text(text)
    found = validate_file(workload)
    assert [(p.line, p.key) for p in found] == [(3, "model.layers"), (12, "parallelism.tensr")]


def test_cluster_problems(write):
    path = write("c.yaml", "device: h100\ngpus_per_node: 8\nintra_node: {bandwidth: 2 us}\n")
    (problem,) = validate_file(path)
    assert (problem.file, problem.line, problem.key) == (str(path), 3, "intra_node.bandwidth")


def test_missing_file(tmp_path):
    (problem,) = validate_file(tmp_path / "x.yaml")
    assert problem.reason == "file not found"


def test_syntax_error(write):
    (problem,) = validate_file(write("x.yaml", "model: {layers: 4\n"))
    assert problem.reason.startswith("YAML syntax error") and problem.line == 2


def test_neither_kind(write):
    (problem,) = validate_file(write("x.yaml", "foo: 1\n"))
    assert "neither a workload" in problem.reason


def test_pytorch_with_mla_is_exit_2_naming_the_key(tmp_path):
    """pytorch's eager kernel inventory covers standard attention: DeepSeek-V3's MLA under it is refused with one
    line (it raised StopIteration in the eager kernels' basis before)."""
    from pathlib import Path

    from helpers_spec import run_error_line
    import yaml

    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / "workloads/deepseek-v3.yaml").read_text())
    del data["training"]["recompute_modules"]  # Megatron-Core's alone: refused under pytorch too (a second line)
    plain = tmp_path / "deepseek-v3.yaml"
    plain.write_text(yaml.safe_dump(data))
    line = run_error_line(tmp_path, plain, "training.framework=pytorch")
    assert "training.framework" in line and "latent attention" in line
