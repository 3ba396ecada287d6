"""Summary figures of signed relative errors, as the validation scripts print them.

MAPE: the mean of |predicted / published − 1| (what ``validate-published`` reports); the median of the
signed errors says whether a set of rows leans fast (+, for throughput) or slow.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def error_summary(errors: Sequence[float], *, absolute_median: bool = False) -> str:
    """``N rows, MAPE m %, median e %`` of signed relative errors, with ``, median |error| a %`` if asked."""
    line = (f"{len(errors)} rows, MAPE {statistics.fmean(abs(e) for e in errors):.2%}, "
            f"median {statistics.median(errors):+.1%}")
    if absolute_median:
        line += f", median |error| {statistics.median(abs(e) for e in errors):.1%}"
    return line
