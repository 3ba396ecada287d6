"""The discrete-event engine (the only package that imports simpy)."""

from simcluster.engine.errors import DeadlockError, RunawayError, SimulationError
from simcluster.engine.simulate import SimResult, simulate

__all__ = ["DeadlockError", "RunawayError", "SimResult", "SimulationError", "simulate"]
