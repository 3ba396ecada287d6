"""Fixtures of the search tests."""

from __future__ import annotations

import pytest

from search_helpers import TIGHT, TOY, write


@pytest.fixture
def toy(tmp_path):
    """The toy workload file."""
    return write(tmp_path, "toy.yaml", TOY)


@pytest.fixture
def tight(tmp_path):
    """The toy model on GPUs with 0.9 GiB of memory."""
    return write(tmp_path, "tight.yaml", TIGHT)
