"""The validation corpus: group files, rows, workload paths, tolerance and acceptance (no simulation).

The groups are ``simcluster/data/validation/<group>.yaml``; ``famous`` runs the repository's
``workloads/<name>.yaml``, one per system the field cites (issue 13), each laid out as its paper
describes with the source and the published figure in its top comment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simcluster.spec import load_workload, validate_file
from simcluster.validation import corpus
from simcluster.validation.corpus import CorpusError

ROOT = Path(__file__).resolve().parents[2]
GROUPS = {g.name: g for g in corpus.load_corpus()}
FAMOUS = GROUPS["famous"].rows
#: issue 13's systems, one workload file each
SYSTEMS = ("megatron-8.3b", "gpt3-175b", "mt-nlg-530b", "megatron-1t", "gopher-280b", "palm-540b",
           "bloom-176b", "llama3-8b", "llama3-70b", "llama3-405b")


def test_the_groups_load_with_unique_keys_and_the_acceptance_of_the_issues():
    assert list(GROUPS) == ["table1", "famous", "megatron", "stacks", "memory", "moe"]
    keys = [r.key for g in GROUPS.values() for r in g.rows]
    assert len(keys) == len(set(keys))
    # issue 12: the Table 1 suite stays <= 3 % (an earlier issue's 5 % before it)
    assert len(GROUPS["table1"].rows) == 10 and GROUPS["table1"].mape_limit == 0.03
    assert all(r.tolerance == 0.10 for r in GROUPS["table1"].rows)
    # issue 13: every famous row within 15 % of its published figure, MAPE <= 8 %
    assert GROUPS["famous"].mape_limit == 0.08 and all(r.tolerance == 0.15 for r in FAMOUS)
    # issue 12: the groups beyond them, MAPE <= 5 %, tolerance by metric (10 % time, 15 % memory)
    for name in ("megatron", "stacks", "memory"):
        assert GROUPS[name].mape_limit == 0.05
        assert all(r.tolerance == corpus.METRICS[r.metric][1] for r in GROUPS[name].rows)


@pytest.mark.parametrize("row", [r for g in GROUPS.values() for r in g.rows], ids=lambda r: r.key)
def test_every_row_names_its_figure_its_source_and_its_stack(row):
    assert row.metric in corpus.METRICS and row.published > 0
    assert row.source and row.paper and row.device and row.framework in ("megatron", "deepspeed", "pytorch", "jax")
    assert row.path.is_file()


def test_famous_has_one_workload_per_system_of_the_issue():
    first = [Path(r.workload).stem for r in FAMOUS if not r.overrides]
    assert sorted(first) == sorted(SYSTEMS)
    moe = {Path(r.workload).stem for r in GROUPS["moe"].rows}  # mixtures of experts: group moe
    shipped = {p.stem for p in (ROOT / "workloads").glob("*.yaml")} - {"toy-8gpu"} - moe
    assert shipped == set(SYSTEMS), "every shipped workload but the toy is a published run with a famous row"
    assert all(r.in_repository and r.path == ROOT / r.workload for r in FAMOUS)


@pytest.mark.parametrize("row", FAMOUS, ids=lambda r: r.key)
def test_famous_workloads_are_valid_and_say_where_their_figure_comes_from(row):
    assert validate_file(str(row.path)) == []
    spec = load_workload(row.path, overrides=list(row.overrides) or None)
    assert spec.num_gpus > 1
    comment = "".join(line for line in row.path.read_text().splitlines(keepends=True) if line.startswith("#"))
    assert "Published" in comment, "the top comment gives the published figure"
    assert row.paper.split()[0] in comment or row.paper.split()[0] in row.source


def test_published_layouts_are_the_papers():
    spec = {Path(r.workload).stem: load_workload(r.path) for r in FAMOUS if not r.overrides}
    lay = {k: (s.parallelism.tensor, s.parallelism.pipeline, s.parallelism.data, s.parallelism.context, s.num_gpus)
           for k, s in spec.items()}
    assert lay["megatron-8.3b"] == (8, 1, 64, 1, 512)
    assert lay["mt-nlg-530b"] == (8, 35, 8, 1, 2240)
    assert lay["bloom-176b"] == (4, 12, 8, 1, 384)
    assert lay["palm-540b"] == (12, 1, 512, 1, 6144) and spec["palm-540b"].parallelism.zero_stage == 3
    assert spec["palm-540b"].model.kv_heads == 1 and spec["palm-540b"].cluster.num_pods() == 2
    assert lay["gopher-280b"][1:] == (4, 1024 // lay["gopher-280b"][0], 1, 4096)
    assert spec["gopher-280b"].cluster.num_pods() == 4
    assert lay["llama3-405b"] == (8, 16, 128, 1, 16384) and spec["llama3-405b"].model.seq_len == 8192
    assert lay["llama3-70b"] == (4, 4, 2, 2, 64) and spec["llama3-70b"].parallelism.virtual_stages == 5
    assert lay["llama3-8b"] == (1, 1, 4, 2, 8)


def test_tolerance_defaults_by_metric_unless_the_group_or_row_sets_it():
    base = {"key": "x", "workload": "w.yaml", "published": 1, "source": "s", "device": "h100", "framework": "pytorch"}
    assert corpus._row("g", {**base, "metric": "mfu"}, None, "f").tolerance == 0.15
    assert corpus._row("g", {**base, "metric": "peak_memory_bytes"}, None, "f").tolerance == 0.15
    assert corpus._row("g", {**base, "metric": "tokens_per_s"}, None, "f").tolerance == 0.10
    assert corpus._row("g", {**base, "metric": "tokens_per_s"}, 0.2, "f").tolerance == 0.2
    assert corpus._row("g", {**base, "metric": "mfu", "tolerance": 0.3}, 0.2, "f").tolerance == 0.3
    with pytest.raises(CorpusError, match="unknown metric"):
        corpus._row("g", {**base, "metric": "speed"}, None, "f")
    with pytest.raises(CorpusError, match="lacks source"):
        corpus._row("g", {k: v for k, v in {**base, "metric": "mfu"}.items() if k != "source"}, None, "f")


def test_selection_keeps_the_named_rows_and_drops_empty_groups():
    groups = corpus.select(corpus.load_corpus(), "llama3-8b, 1.7b")
    assert [(g.name, [r.key for r in g.rows]) for g in groups] == [("table1", ["1.7b"]), ("famous", ["llama3-8b"])]
    with pytest.raises(CorpusError, match="unknown row nope"):
        corpus.select(corpus.load_corpus(), "1.7b,nope")
    with pytest.raises(CorpusError, match="unknown group"):
        corpus.load_corpus(("nope",))


def test_a_repository_workload_without_the_repository_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(corpus, "ROOT", tmp_path)  # an installed copy: no workloads/ beside the package
    row = next(r for r in FAMOUS if r.key == "llama3-8b")
    with pytest.raises(CorpusError) as e:
        row.path
    assert "workloads/" in str(e.value) and str(tmp_path) in str(e.value) and "--group table1" in str(e.value)
    assert GROUPS["table1"].rows[0].path.is_file()  # package data needs no checkout


def test_acceptance_needs_every_row_within_and_the_mape():
    rows = [{"error": 0.05, "within": True}, {"error": -0.09, "within": True}]
    assert corpus.mape(rows) == pytest.approx(0.07)
    assert corpus.accepted(rows, 0.08) and not corpus.accepted(rows, 0.05)
    assert not corpus.accepted([*rows, {"error": 0.0, "within": False}], 1.0)


def test_moe_group_runs_the_mixture_of_experts_workloads_within_the_issues_tolerance():
    # issue 17: DeepSeek-V3 within 20 % of its published GPU hours per trillion tokens
    moe = GROUPS["moe"]
    assert moe.mape_limit == 0.20 and all(r.tolerance == 0.20 for r in moe.rows)
    assert [r.key for r in moe.rows] == ["deepseek-v3", "mixtral-8x7b"]
    for row in moe.rows:
        assert validate_file(str(row.path)) == []
        spec = load_workload(row.path)
        assert spec.model.moe is not None and spec.parallelism.expert > 1
        assert "Published" in row.path.read_text()
