"""Every corpus row runs the software stack it is labelled with."""

from __future__ import annotations

import pytest

from simcluster.spec import load_workload
from simcluster.validation.corpus import GROUPS, CorpusError, load_group


@pytest.mark.parametrize("group", GROUPS)
def test_row_framework_is_the_workloads(group):
    for row in load_group(group).rows:
        try:
            path = row.path
        except CorpusError as err:  # a workloads/ row outside a checkout
            pytest.skip(str(err))
        spec = load_workload(str(path), overrides=list(row.overrides))
        assert spec.training.framework == row.framework, row.key
