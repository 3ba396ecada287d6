"""The validation scripts' summary line (simcluster.validation.stats)."""

import pytest

from simcluster.validation.stats import error_summary


def test_error_summary_closed_form():
    errors = [0.10, -0.02, 0.04, -0.08]  # MAPE (10 + 2 + 4 + 8) / 4 = 6 %, median (−0.02 + 0.04) / 2 = +1 %
    assert error_summary(errors) == "4 rows, MAPE 6.00%, median +1.0%"
    assert error_summary(errors, absolute_median=True).endswith(", median |error| 6.0%")  # (4 + 8) / 2


def test_sigma_without_stack_takes_the_stack_term_out_in_quadrature():
    import pytest

    from simcluster.validation.stats import sigma_without_stack
    assert sigma_without_stack({"iteration_time_sigma": 0.05, "stack_sigma": 0.03}) == pytest.approx(0.04)
    assert sigma_without_stack({"iteration_time_sigma": 0.01, "stack_sigma": 0.03}) == 0.0


def test_interval_holds_reads_the_summarys_interval_per_gpu():
    from simcluster.validation.stats import held_line, interval_holds
    summary = {"iteration_time_s": 10.0, "iteration_time_s_interval": [8.0, 12.5], "tokens_per_s": 800.0}
    # tokens/s scales as 1/T: its interval is [800 · 10/12.5, 800 · 10/8] = [640, 1000], per GPU over 8: [80, 125]
    assert interval_holds(summary, "tokens_per_s", 640.0) and interval_holds(summary, "tokens_per_s", 1000.0)
    assert not interval_holds(summary, "tokens_per_s", 1001.0)
    assert interval_holds(summary, "tokens_per_s", 124.0, per=8) and not interval_holds(summary, "tokens_per_s", 79.0, per=8)
    assert held_line([True, True, False, True]) == "80% intervals hold 3 of 4 published figures (75%)"
    assert held_line([]) == "80% intervals: no rows"


def test_the_corpus_coverage_is_judged_inside_its_range():
    """validate-published's exit status includes issue 12's coverage acceptance, 70–95 % inclusive, when the whole
    corpus ran (a group or a few rows say too little about it)."""
    from simcluster.validation.acceptance import COVERAGE_RANGE, coverage_accepted, coverage_line
    assert COVERAGE_RANGE == (0.70, 0.95)

    def rows(inside: int, n: int) -> list[dict[str, bool]]:
        return [{"inside": i < inside} for i in range(n)]
    assert coverage_accepted(rows(19, 20)) and coverage_accepted(rows(14, 20))  # 95 % and 70 % themselves pass
    assert not coverage_accepted(rows(77, 81)) and coverage_accepted(rows(76, 81))  # 95.06 % fails, 93.8 % passes
    assert not coverage_accepted(rows(13, 20))
    assert coverage_line(rows(77, 81), judged=True).endswith("asks 70%–95%: FAIL)")
    assert coverage_line(rows(76, 81)).startswith("Interval coverage 93.8 % (76 of 81")
    assert "PASS" not in coverage_line(rows(76, 81)) and coverage_line(rows(76, 81), judged=True).endswith("PASS)")


def test_the_whole_corpus_checks_name_each_acceptance_line_of_issue_12():
    from simcluster.validation.acceptance import acceptance_line, corpus_checks

    def row(error: float, within: bool = True, inside: bool = True) -> dict[str, object]:
        return {"error": error, "within": within, "inside": inside}
    rows = [row(0.02)] * 17 + [row(0.04, inside=False)] * 3  # MAPE 2.3 %, coverage 85 %
    assert corpus_checks(rows) == {"mape": True, "within_tolerance": True, "coverage": True}
    assert corpus_checks(rows, 0.09)["leave_one_source_out"] is False and corpus_checks(rows, 0.05)["leave_one_source_out"]
    worse = rows + [row(0.5, within=False)]  # MAPE 4.6 %: still ≤ 5 %, but one row outside its tolerance
    assert corpus_checks(worse) == {"mape": True, "within_tolerance": False, "coverage": True}
    assert corpus_checks([row(0.06)] * 20)["mape"] is False and corpus_checks([row(0.01)] * 20)["coverage"] is False
    line = acceptance_line(worse, 0.046)
    assert line.startswith("Acceptance over the whole corpus: MAPE 4.57 % ≤ 5%: PASS; every row within its tolerance "
                           "(20 of 21): FAIL; coverage 85.7 % in 70%–95%: PASS; leave-one-source-out 4.60 % ≤ 8%: PASS")


def test_step_record_and_group_lines(tmp_path):
    """A row measured in seconds per step: tokens/s published = tokens per step / step; the prediction's interval
    is the summary's; one summary line per group, then all, and the rows written as JSON."""
    import json

    from simcluster.validation.stats import group_lines, report, step_line, step_record
    summary = {"iteration_time_s": 10.0, "iteration_time_s_interval": [8.0, 12.5], "tokens_per_s": 1000.0}
    a = step_record(summary, 1000.0 * 10.0 / 11.0, 11.0, round="x", caveat="")  # measured 11 s: predicted +10 %
    b = step_record(summary, 1000.0 * 10.0 / 13.0, 13.0, round="y", caveat="slow bound")  # 13 s: outside
    assert a["error"] == pytest.approx(0.10) and a["inside"] and a["predicted_step_s"] == 10.0
    assert b["error"] == pytest.approx(0.30) and not b["inside"]
    assert step_line(a) == "step  11.000 s  predicted  10.000 s  tokens/s +10.0%  in     "
    assert step_line(b).endswith("OUTSIDE  [slow bound]")
    assert group_lines([a, b], lambda r: r["round"]) == [
        "x: 1 rows, MAPE 10.00%, median +10.0%; 80% intervals hold 1 of 1 published figures (100%)",
        "y: 1 rows, MAPE 30.00%, median +30.0%; 80% intervals hold 0 of 1 published figures (0%)",
        "all: 2 rows, MAPE 20.00%, median +20.0%; 80% intervals hold 1 of 2 published figures (50%)"]
    assert report([a, b], lambda r: r["round"], tmp_path / "rows.json") == 0
    assert [r["round"] for r in json.loads((tmp_path / "rows.json").read_text())] == ["x", "y"]
