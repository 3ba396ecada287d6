"""Fixtures of the reporting tests: the synthetic run of :mod:`reporting_synthetic`."""

from __future__ import annotations

import pytest

from reporting_synthetic import make_config, make_details, make_summary, make_timeline


@pytest.fixture
def run_inputs():
    """``(timeline, summary, config, details)`` of the synthetic run."""
    tl = make_timeline()
    return tl, make_summary(tl), make_config(), make_details()


@pytest.fixture(scope="session")
def written_run(tmp_path_factory):
    """A folder with the synthetic run written once (for tests that only read it) and its inputs."""
    from simcluster.reporting import write_run

    d = tmp_path_factory.mktemp("run")
    tl = make_timeline()
    inputs = (tl, make_summary(tl), make_config(), make_details())
    write_run(d, *inputs)
    return d, inputs
