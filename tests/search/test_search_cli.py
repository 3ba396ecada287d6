"""``python -m simcluster search`` end to end on the toy workload."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from simcluster.cli import main
from simcluster.search.layout import layout_from_values, layout_of
from simcluster.spec import load_workload
from simcluster.spec.workload import SEARCH_KEYS
from simcluster.sweep.export import CONTRACT_SUMMARY_KEYS

FAST = ["--max-simulations", "8", "--top", "3", "--jobs", "1"]


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One search of the toy workload: (workload file, output folder, printed text)."""
    from search_helpers import TOY, write

    folder = tmp_path_factory.mktemp("search")
    toy = write(folder, "toy.yaml", TOY)
    out = folder / "out"
    import contextlib
    import io

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["search", str(toy), "--out", str(out), *FAST]) == 0
    return toy, out, text.getvalue()


def test_files_and_ranking(searched):
    toy, out, text = searched
    for name in ("ranking.csv", "best.yaml", "estimates.csv", "search.json", "report.html", "agreement.png"):
        assert (out / name).is_file(), name
    assert not (out / "pareto.png").exists()  # one GPU budget, no range
    table = pd.read_csv(out / "ranking.csv")
    assert list(table.columns[:3]) == ["rank", "role", "layout"]
    assert set(SEARCH_KEYS) | set(CONTRACT_SUMMARY_KEYS) | {"est_iteration_time_s", "est_rank"} <= set(table.columns)
    assert set(table["role"]) == {"candidate", "baseline", "reference"}
    assert len(table) == 8 + 2
    ok = table[table["fits_in_memory"]]
    assert list(ok["tokens_per_s"]) == sorted(ok["tokens_per_s"], reverse=True)  # best first
    assert "top 3 by tokens_per_s" in text and "Spearman rank correlation" in text
    assert "the workload's own layout, t2 p2 d2 mb2 1f1b rc=none" in text


def test_best_yaml_is_the_winner_and_runs(searched, tmp_path):
    toy, out, _ = searched
    table = pd.read_csv(out / "ranking.csv")
    best = load_workload(out / "best.yaml")
    assert layout_of(best) == layout_from_values(table.iloc[0].to_dict())
    assert main(["run", str(out / "best.yaml"), "--out", str(tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["iteration_time_s"] == pytest.approx(table.iloc[0]["iteration_time_s"])


def test_search_json(searched):
    _, out, _ = searched
    info = json.loads((out / "search.json").read_text())
    assert info["gpus"] == [5, 8] and info["layouts"] > info["fitting"] > 0 or info["layouts"] == info["fitting"]
    assert info["budget"]["candidates"] == 8 and info["top10_of"] == 8
    assert -1 <= info["spearman"] <= 1


def test_rerun_resumes_from_the_store(searched, capsys):
    toy, out, _ = searched
    before = (out / "simulations" / "points.jsonl").read_text().count("\n")
    assert main(["search", str(toy), "--out", str(out), *FAST]) == 0
    assert (out / "simulations" / "points.jsonl").read_text().count("\n") == before


def test_range_draws_the_pareto_front(toy, tmp_path):
    out = tmp_path / "out"
    assert main(["search", str(toy), "--out", str(out), "--gpus", "1-8", *FAST]) == 0
    assert (out / "pareto.png").is_file()
    table = pd.read_csv(out / "ranking.csv")
    assert "pareto" in set(table["role"]) and table["num_gpus"].nunique() > 2


def test_fix_and_cost_objective(toy, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["search", str(toy), "--out", str(out), "--objective", "cost", "--fix", "parallelism.tensor=1,2",
                 "--fix", "cluster.price_per_gpu_hour=2.5", *FAST]) == 0
    table = pd.read_csv(out / "ranking.csv")
    cand = table[table["role"] == "candidate"]
    assert set(cand["parallelism.tensor"]) <= {1, 2}
    assert {"tokens_per_dollar", "est_tokens_per_dollar"} <= set(table.columns)
    assert (cand["tokens_per_dollar"] == cand["tokens_per_s"] * 3600 / (cand["num_gpus"] * 2.5)).all()


def test_search_section_limits_the_space(toy, tmp_path):
    toy.write_text(toy.read_text() + "search:\n  gpus: 4\n  top: 2\n  space: {parallelism.pipeline: [1]}\n")
    out = tmp_path / "out"
    assert main(["search", str(toy), "--out", str(out), "--max-simulations", "4", "--jobs", "1"]) == 0
    cand = pd.read_csv(out / "ranking.csv").query("role == 'candidate'")
    assert set(cand["parallelism.pipeline"]) == {1} and cand["num_gpus"].between(3, 4).all()


@pytest.mark.parametrize("args, message", [
    (["--objective", "cost"], "price_per_gpu_hour: needed by the cost objective"),
    (["--fix", "parallelism.tensor=two"], "--fix: "),
    (["--fix", "parallelism.tensr=2"], "parallelism.tensr: unknown key"),
    (["--gpus", "8-4"], "expected N or A-B"),
])
def test_bad_input_exits_2(toy, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) if args[0] == "--gpus" else _nothing():
        code = main(["search", str(toy), "--out", str(tmp_path / "out"), *args])
        assert code == 2
    assert message in capsys.readouterr().err


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
