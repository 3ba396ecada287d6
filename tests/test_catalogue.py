"""The catalogue of names (simcluster/catalogue.py) against the registries that own the real objects.

spec/ validates names against the catalogue only; these tests keep each list equal to its
owner's registry, so a schedule, fabric or algorithm added on one side and not the other fails here.
"""

from __future__ import annotations

import pytest

from simcluster import catalogue
from simcluster.collectives import ALGORITHMS, OPS
from simcluster.costs.optimizer_states import STATE_BYTES
from simcluster.plan.schedules import SCHEDULES
from simcluster.spec import load_cluster
from simcluster.topology.devices import DEVICES
from simcluster.topology.fabrics import FABRICS
from simcluster.workload.ops import DTYPE_BYTES


@pytest.mark.parametrize("names, registry", [
    (catalogue.SCHEDULES, SCHEDULES),
    (catalogue.FABRICS, FABRICS),
    (catalogue.COLLECTIVE_ALGORITHMS, ALGORITHMS),
], ids=["schedules", "fabrics", "collective algorithms"])
def test_catalogue_names_are_the_registry_names(names, registry):
    assert len(set(names)) == len(names)
    assert sorted(names) == registry.names()


def test_one_table_of_devices_and_collectives():
    assert DEVICES is catalogue.DEVICES and OPS is catalogue.COLLECTIVE_OPS
    assert load_cluster("dgx-a100-80gb").device is DEVICES.get("a100-80gb")


def test_training_names_are_the_cost_model_tables():
    assert set(catalogue.PRECISIONS) == set(DTYPE_BYTES)
    assert set(catalogue.OPTIMIZERS) == {optimizer for _, optimizer in STATE_BYTES}
