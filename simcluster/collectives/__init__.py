"""Collective algorithms: decompose a collective on a group of GPUs into transfers on links."""

from simcluster.collectives.algorithms import ALGORITHMS, OPS
from simcluster.collectives.plan import plan_collective
from simcluster.collectives.transfer import Transfer

__all__ = ["ALGORITHMS", "OPS", "Transfer", "plan_collective"]
