"""The validation scripts' summary line (simcluster.validation.stats)."""

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
