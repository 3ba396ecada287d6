"""The discrete-event engine (the only package that imports simpy)."""

from simcluster.engine.simulate import SimResult, simulate

__all__ = ["SimResult", "simulate"]
