"""The closed-form sum of a pass's steps: the compute's slowdown beside communication."""

from __future__ import annotations

import pytest

from simcluster.costs.contention import OVERLAP_COMPUTE_SLOWDOWN as s
from simcluster.search.pass_time import beside


def test_screen_slows_compute_beside_communication_as_the_engine():
    """beside(c, m): the compute progresses at 1 − s while m runs, so c + s·m, or m once the compute would
    end first (the engine's contention, simcluster.costs.contention)."""
    assert beside(1.0, 0.0) == 1.0
    assert beside(1.0, 0.5) == pytest.approx(1.0 + s * 0.5)
    assert beside(1.0, 1.0 / (1 - s)) == pytest.approx(1.0 / (1 - s))  # both end together
    assert beside(1.0, 2.0) == 2.0
    assert beside(1.0, 0.5, slowdown=0.0) == 1.0
    # half the span blocked by tensor collectives on the compute stream: only the compute half is slowed
    assert beside(1.0, 0.5, blocked=0.5) == pytest.approx(1.0 + s * 0.5 * 0.5)
