"""Fixtures of the sweep tests."""

from __future__ import annotations

import pytest

from sweep_helpers import small_sweep
from simcluster.sweep import LocalExecutor, run_sweep


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """The small sweep run once on 2 local workers: (sweep, outcome)."""
    folder = tmp_path_factory.mktemp("small")
    sweep = small_sweep(folder)
    return sweep, run_sweep(sweep, folder / "out", LocalExecutor(jobs=2), progress=False)
