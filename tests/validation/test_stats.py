"""The validation scripts' summary line (simcluster.validation.stats)."""

from simcluster.validation.stats import error_summary


def test_error_summary_closed_form():
    errors = [0.10, -0.02, 0.04, -0.08]  # MAPE (10 + 2 + 4 + 8) / 4 = 6 %, median (−0.02 + 0.04) / 2 = +1 %
    assert error_summary(errors) == "4 rows, MAPE 6.00%, median +1.0%"
    assert error_summary(errors, absolute_median=True).endswith(", median |error| 6.0%")  # (4 + 8) / 2
