"""YAML reading with the line of every dotted key."""

import pytest

from simcluster.errors import SpecError
from simcluster.spec.yamlio import load_yaml, parse_scalar, parse_yaml_text


def test_lines_of_dotted_keys(write):
    path = write("a.yaml", """\
        name: x
        model:
          layers: 4

          hidden: 8
        parallelism:
          stage_layers: [1, 3]
        """)
    doc = load_yaml(path)
    assert doc.data["model"] == {"layers": 4, "hidden": 8}
    assert doc.lines["name"] == 1
    assert doc.lines["model"] == 2
    assert doc.lines["model.layers"] == 3
    assert doc.lines["model.hidden"] == 5
    assert doc.lines["parallelism.stage_layers.1"] == 7
    assert doc.file == str(path)


def test_line_of_falls_back_to_parent(write):
    doc = load_yaml(write("a.yaml", "model:\n  layers: 4\n"))
    assert doc.line_of("model.heads") == 1
    assert doc.line_of("model.layers.x") == 2
    assert doc.line_of("other.key") is None
    assert doc.line_of("") is None


def test_missing_file(tmp_path):
    with pytest.raises(SpecError) as exc:
        load_yaml(tmp_path / "nope.yaml")
    (problem,) = exc.value.problems
    assert problem.file.endswith("nope.yaml")
    assert problem.reason == "file not found"


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(SpecError, match="not a file"):
        load_yaml(tmp_path)


def test_syntax_error_has_line(write):
    path = write("bad.yaml", "model:\n  layers: 4\n  hidden: [1, 2\nname: x\n")
    with pytest.raises(SpecError) as exc:
        load_yaml(path)
    (problem,) = exc.value.problems
    assert problem.line == 4
    assert problem.reason.startswith("YAML syntax error")
    assert str(problem).startswith(f"{path}:4: YAML syntax error")


def test_tab_indentation_error(write):
    with pytest.raises(SpecError, match="YAML syntax error"):
        load_yaml(write("bad.yaml", "model:\n\tlayers: 4\n"))


def test_top_level_must_be_mapping(write):
    with pytest.raises(SpecError, match="expected a mapping"):
        load_yaml(write("list.yaml", "- 1\n- 2\n"))


def test_empty_file_is_empty_mapping(write):
    assert load_yaml(write("empty.yaml", "# nothing\n")).data == {}


def test_duplicate_key(write):
    with pytest.raises(SpecError) as exc:
        load_yaml(write("dup.yaml", "model:\n  layers: 4\n  layers: 5\n"))
    (problem,) = exc.value.problems
    assert (problem.line, problem.key, problem.reason) == (3, "model.layers", "key written twice")


def test_parse_yaml_text_names_file():
    with pytest.raises(SpecError, match="^inline.yaml:1: "):
        parse_yaml_text("a: [", "inline.yaml")


@pytest.mark.parametrize(
    ("text", "value"),
    [("4", 4), ("full", "full"), ("true", True), ("2.5", 2.5), ("300 GB/s", "300 GB/s"),
     ("a,b,c", "a,b,c"), ("1,2,3", "1,2,3"), ("[4, 4]", [4, 4]), ("null", None), ("", None), ("none", "none")],
)
def test_parse_scalar(text, value):
    assert parse_scalar(text) == value


def test_parse_scalar_bad_yaml():
    with pytest.raises(ValueError, match="cannot read value"):
        parse_scalar("[1, 2")
