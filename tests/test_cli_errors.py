"""Bad input: exit status 2, one line per problem (file, line, dotted key, reason), no traceback.

Each test copies ``workloads/toy-8gpu.yaml`` into ``tmp_path``, breaks one thing, and runs
``simcluster.cli.main`` in-process (the real ``python -m simcluster`` is exercised once, in
``test_cli_run.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from simcluster.cli import main

ROOT = Path(__file__).resolve().parent.parent
TOY = ROOT / "workloads" / "toy-8gpu.yaml"
PRESET = ROOT / "topologies" / "dgx-a100-80gb.yaml"

# ``file[:line]: [dotted.key: ]reason`` -- the key has no spaces, so "YAML syntax error: ..." is a reason.
_LINE = re.compile(r"^(?P<file>[^:]+?)(?::(?P<line>\d+))?: (?:(?P<key>[A-Za-z0-9_][A-Za-z0-9_.\-]*): )?(?P<reason>\S.*)$")


@dataclass(frozen=True)
class Shown:
    """One problem line as printed on stderr."""

    file: str
    line: int | None
    key: str | None
    reason: str


def _same_file(shown: str, expected: Path | str) -> bool:
    if isinstance(expected, str):
        return shown == expected
    return Path(shown).resolve() == expected.resolve()


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``main(argv)``; return (exit status, stdout, stderr)."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def bad_input(capsys, *argv: str, files: tuple[Path | str, ...]) -> list[Shown]:
    """Run the CLI, check it failed as bad input should, and return the parsed problem lines.

    Every stderr line must be a one-line problem that names one of ``files``.
    """
    rc, out, err = cli(capsys, *argv)
    assert rc == 2, f"expected exit status 2, got {rc}\nstdout:\n{out}\nstderr:\n{err}"
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "no problem printed on stderr"
    shown: list[Shown] = []
    for line in lines:
        m = _LINE.match(line)
        assert m, f"not a one-line problem 'file[:line]: [key: ]reason': {line!r}"
        assert any(_same_file(m["file"], f) for f in files), f"problem does not name {files}: {line!r}"
        shown.append(Shown(m["file"], int(m["line"]) if m["line"] else None, m["key"], m["reason"]))
    return shown


def find(shown: list[Shown], key: str | None, line: int | None = ..., *words: str) -> Shown:
    """The problem about ``key`` (at ``line`` unless ``...``) whose reason mentions every word."""
    for s in shown:
        if s.key == key and (line is ... or s.line == line) and all(w.lower() in s.reason.lower() for w in words):
            return s
    raise AssertionError(f"no problem with key={key!r} line={line!r} mentioning {words!r} in:\n"
                         + "\n".join(map(str, shown)))


def broken(tmp_path: Path, old: str, new: str, name: str = "work.yaml") -> Path:
    """A copy of toy-8gpu.yaml with the one line ``old`` replaced by ``new``."""
    text = TOY.read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in {TOY}"
    path = tmp_path / name
    path.write_text(text.replace(old, new))
    return path


def line_of(path: Path, fragment: str) -> int:
    """1-based line of the only line of ``path`` containing ``fragment``."""
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if fragment in line]
    assert len(hits) == 1, (fragment, hits)
    return hits[0]


def test_missing_workload_file(capsys, tmp_path):
    path = tmp_path / "nowhere.yaml"
    shown = bad_input(capsys, "run", path, "--out", tmp_path / "out", files=(path,))
    assert len(shown) == 1
    assert "not found" in shown[0].reason.lower() or "no such" in shown[0].reason.lower()
    assert not (tmp_path / "out").exists()


def test_yaml_syntax_error_names_line(capsys, tmp_path):
    path = broken(tmp_path, "  heads: 16\n", "  heads: 16: 3\n")
    shown = bad_input(capsys, "run", path, "--out", tmp_path / "out", files=(path,))
    assert len(shown) == 1
    assert shown[0].line == 6 == line_of(path, "heads: 16: 3")
    assert "yaml" in shown[0].reason.lower()


def test_yaml_tab_indentation_names_line(capsys, tmp_path):
    path = broken(tmp_path, "  vocab: 32000\n", "  vocab: 32000\n\tbad: 1\n")
    shown = bad_input(capsys, "validate", path, files=(path,))
    assert [s.line for s in shown] == [9]


def test_unknown_key_lists_known_keys(capsys, tmp_path):
    path = broken(tmp_path, "  vocab: 32000\n", "  vocab: 32000\n  layerz: 3\n")
    shown = bad_input(capsys, "run", path, "--out", tmp_path / "out", files=(path,))
    problem = find(shown, "model.layerz", 9, "unknown")
    assert line_of(path, "layerz") == 9
    for known in ("layers", "hidden", "heads", "seq_len", "vocab"):
        assert known in problem.reason


def test_unknown_top_level_section(capsys, tmp_path):
    path = broken(tmp_path, "parallelism:\n", "paralelism:\n")
    shown = bad_input(capsys, "validate", path, files=(path,))
    problem = find(shown, "paralelism", 14, "unknown")
    assert "parallelism" in problem.reason


def test_wrong_type(capsys, tmp_path):
    path = broken(tmp_path, "  layers: 4\n", "  layers: many\n")
    shown = bad_input(capsys, "run", path, "--out", tmp_path / "out", files=(path,))
    problem = find(shown, "model.layers", 4, "integer")
    assert "many" in problem.reason


def test_tensor_does_not_divide_heads(capsys, tmp_path):
    # tensor 3 x pipeline 1 x data 2 = 6 GPUs: fits the node, but 16 heads do not split 3 ways.
    path = broken(tmp_path, "  tensor: 2\n  pipeline: 2\n", "  tensor: 3\n  pipeline: 1\n")
    shown = bad_input(capsys, "run", path, "--out", tmp_path / "out", files=(path,))
    find(shown, "parallelism.tensor", 15, "heads", "16")


def test_more_pipeline_stages_than_layers(capsys, tmp_path):
    # 1 x 8 x 1 = 8 GPUs: fits the node, but the model has 4 layers.
    path = broken(tmp_path, "  tensor: 2\n  pipeline: 2\n  data: 2\n", "  tensor: 1\n  pipeline: 8\n  data: 1\n")
    shown = bad_input(capsys, "run", path, "--out", tmp_path / "out", files=(path,))
    assert len(shown) == 1
    find(shown, "parallelism.pipeline", 16, "layers")


def test_more_gpus_than_the_cluster_has(capsys, tmp_path):
    path = broken(tmp_path, "  data: 2\n", "  data: 4\n")
    shown = bad_input(capsys, "run", path, "--out", tmp_path / "out", files=(path,))
    assert len(shown) == 1
    find(shown, "parallelism.data", 17, "16", "8")


def test_global_batch_not_divisible(capsys, tmp_path):
    path = broken(tmp_path, "  global_batch: 16\n", "  global_batch: 18\n")
    shown = bad_input(capsys, "run", path, "--out", tmp_path / "out", files=(path,))
    assert len(shown) == 1
    find(shown, "training.global_batch", 10, "18", "multiple")


def test_unknown_preset(capsys, tmp_path):
    path = broken(tmp_path, "  preset: dgx-a100-80gb\n", "  preset: dgx-nope\n")
    shown = bad_input(capsys, "run", path, "--out", tmp_path / "out", files=(path,))
    problem = find(shown, "cluster.preset", 20, "dgx-nope")
    assert "dgx-a100-80gb" in problem.reason  # lists the known presets


def _bad_cluster(tmp_path: Path) -> Path:
    text = PRESET.read_text()
    assert text.count('bandwidth: "300 GB/s"') == 1
    path = tmp_path / "cluster.yaml"
    path.write_text(text.replace('bandwidth: "300 GB/s"', 'bandwidth: "300 furlongs"'))
    return path


def test_bad_unit_in_cluster_file_validate(capsys, tmp_path):
    cluster = _bad_cluster(tmp_path)
    shown = bad_input(capsys, "validate", cluster, files=(cluster,))
    find(shown, "intra_node.bandwidth", line_of(cluster, "furlongs"), "furlongs")


def test_bad_unit_in_cluster_file_used_by_workload(capsys, tmp_path):
    cluster = _bad_cluster(tmp_path)
    path = broken(tmp_path, "  preset: dgx-a100-80gb\n", "  path: cluster.yaml\n")
    shown = bad_input(capsys, "run", path, "--out", tmp_path / "out", files=(cluster, path))
    hits = [s for s in shown if s.key and s.key.endswith("intra_node.bandwidth") and "furlongs" in s.reason]
    assert hits, shown
    assert _same_file(hits[0].file, cluster)  # the problem is in the cluster file, and says so
    assert hits[0].line == line_of(cluster, "furlongs")


def test_set_without_equals(capsys, tmp_path):
    shown = bad_input(capsys, "run", TOY, "--out", tmp_path / "out", "--set", "parallelism.tensor",
                      files=("--set",))
    problem = find(shown, "parallelism.tensor", None)
    assert "=" in problem.reason
    assert not (tmp_path / "out").exists()


def test_set_unknown_key(capsys, tmp_path):
    shown = bad_input(capsys, "run", TOY, "--out", tmp_path / "out", "--set", "parallelism.tensorx=2",
                      files=("--set",))
    problem = find(shown, "parallelism.tensorx", None, "unknown")
    for known in ("tensor", "pipeline", "data"):
        assert known in problem.reason


def test_set_impossible_value_names_set(capsys, tmp_path):
    shown = bad_input(capsys, "run", TOY, "--out", tmp_path / "out", "--set", "parallelism.data=4",
                      files=("--set",))
    find(shown, "parallelism.data", None, "16")


def test_validate_bad_file(capsys, tmp_path):
    path = broken(tmp_path, "  layers: 4\n", "  layers: many\n")
    shown = bad_input(capsys, "validate", path, files=(path,))
    find(shown, "model.layers", 4, "integer")


def test_validate_reports_every_problem(capsys, tmp_path):
    text = TOY.read_text().replace("  layers: 4\n", "  layers: many\n").replace("  vocab: 32000\n", "  vocab: 32000\n  layerz: 3\n")
    path = tmp_path / "two.yaml"
    path.write_text(text)
    shown = bad_input(capsys, "validate", path, files=(path,))
    find(shown, "model.layers", 4)
    find(shown, "model.layerz", 9)


def test_validate_good_file(capsys, tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(TOY.read_text())
    rc, out, err = cli(capsys, "validate", path)
    assert rc == 0, err
    assert "ok" in out.lower()
    assert "Traceback" not in out + err


@pytest.mark.parametrize("preset", ["dgx-a100-80gb", "tpu-v4-pod"])
def test_validate_good_cluster_file(capsys, preset):
    rc, out, err = cli(capsys, "validate", ROOT / "topologies" / f"{preset}.yaml")
    assert rc == 0, err
    assert "ok" in out.lower()


def test_report_on_a_folder_that_is_not_a_run(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("not a run")
    rc, out, err = cli(capsys, "report", tmp_path)
    assert rc == 2
    assert "Traceback" not in out + err
    assert str(tmp_path) in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1


def test_report_on_a_missing_folder(capsys, tmp_path):
    rc, out, err = cli(capsys, "report", tmp_path / "nowhere")
    assert rc == 2
    assert "Traceback" not in out + err
    assert "nowhere" in err
