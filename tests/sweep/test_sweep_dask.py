"""The dask executor (a LocalCluster) gives the same results as the local one.

Needs the optional extra ``simcluster[dask]`` (the packages dask and distributed); skipped,
with the reason shown in pytest's summary, when it is not installed.
"""

from __future__ import annotations

import pandas as pd
import pytest

from sweep_helpers import comparable

pytest.importorskip("distributed", reason="the dask extra is not installed: pip install 'simcluster[dask]'")

from simcluster.sweep import DaskExecutor, run_sweep  # noqa: E402


def test_dask_local_cluster_equals_local(small_run, tmp_path):
    sweep, local = small_run
    outcome = run_sweep(sweep, tmp_path / "dask", DaskExecutor(jobs=2), progress=False, reports=False)
    assert outcome.simulated == local.simulated == 9
    pd.testing.assert_frame_equal(comparable(outcome.table), comparable(local.table))
    assert (tmp_path / "dask" / "results.csv").read_text().count("\n") == 13
