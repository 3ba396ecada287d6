"""Issue 12's acceptance over the whole corpus, as ``validate-published`` judges it when every group runs.

Per group (:func:`simcluster.validation.corpus.accepted`, each group file's ``acceptance``): every row within
its tolerance and the group's MAPE under its limit (Table 1 ≤ 3 %). Over the whole corpus, besides:

- the MAPE of all rows ≤ :data:`CORPUS_MAPE_LIMIT` (5 %);
- the leave-one-source-out MAPE ≤ :data:`LOSO_MAPE_LIMIT` (8 %), when ``--leave-one-source-out`` computed it;
- the share of published figures inside their row's 80 % interval within :data:`COVERAGE_RANGE` (70–95 %,
  inclusive): for intervals at level L about L when their σ are right, so far above means too wide.

A single group or a few rows (``--group``, ``--only``) say too little of these three; they are judged only
when the whole corpus ran.
"""

from __future__ import annotations

from typing import Any

from simcluster.metrics import error_bars as eb
from simcluster.validation import corpus

#: The share of published figures the 80 % intervals must hold over the whole corpus.
COVERAGE_RANGE: tuple[float, float] = (0.70, 0.95)
#: The whole corpus' MAPE limit.
CORPUS_MAPE_LIMIT: float = 0.05
#: The leave-one-source-out MAPE limit.
LOSO_MAPE_LIMIT: float = 0.08


def coverage_accepted(results: list[dict[str, Any]]) -> bool:
    """Whether the intervals' coverage over ``results`` lies in :data:`COVERAGE_RANGE` (inclusive)."""
    lo, hi = COVERAGE_RANGE
    return lo <= eb.coverage(results) <= hi


def coverage_line(results: list[dict[str, Any]], judged: bool = False) -> str:
    """One line: how many published figures lie inside their row's interval; with ``judged`` (the whole corpus
    ran) whether that passes the acceptance."""
    n = sum(1 for r in results if r["inside"])
    lo, hi = COVERAGE_RANGE
    verdict = f": {'PASS' if coverage_accepted(results) else 'FAIL'}" if judged else ""
    return (f"Interval coverage {eb.coverage(results) * 100:.1f} % ({n} of {len(results)} published figures inside "
            f"their row's {eb.LEVEL * 100:.0f} % interval; the acceptance asks {lo:.0%}–{hi:.0%}{verdict})")


def corpus_checks(rows: list[dict[str, Any]], loso_mape: float | None = None) -> dict[str, bool]:
    """The whole corpus' checks (module docstring) by name; ``loso`` only when its MAPE was computed."""
    checks = {"mape": corpus.mape(rows) <= CORPUS_MAPE_LIMIT,
              "within_tolerance": all(r["within"] for r in rows),
              "coverage": coverage_accepted(rows)}
    if loso_mape is not None:
        checks["leave_one_source_out"] = loso_mape <= LOSO_MAPE_LIMIT
    return checks


def acceptance_line(rows: list[dict[str, Any]], loso_mape: float | None = None) -> str:
    """One line: each whole-corpus check with its figure and PASS or FAIL."""
    checks = corpus_checks(rows, loso_mape)
    missed = sum(1 for r in rows if not r["within"])
    parts = [f"MAPE {corpus.mape(rows) * 100:.2f} % ≤ {CORPUS_MAPE_LIMIT:.0%}: "
             f"{'PASS' if checks['mape'] else 'FAIL'}",
             f"every row within its tolerance ({len(rows) - missed} of {len(rows)}): "
             f"{'PASS' if checks['within_tolerance'] else 'FAIL'}",
             f"coverage {eb.coverage(rows) * 100:.1f} % in {COVERAGE_RANGE[0]:.0%}–{COVERAGE_RANGE[1]:.0%}: "
             f"{'PASS' if checks['coverage'] else 'FAIL'}"]
    if loso_mape is not None:
        parts.append(f"leave-one-source-out {loso_mape * 100:.2f} % ≤ {LOSO_MAPE_LIMIT:.0%}: "
                     f"{'PASS' if checks['leave_one_source_out'] else 'FAIL'}")
    return "Acceptance over the whole corpus: " + "; ".join(parts) + "."
