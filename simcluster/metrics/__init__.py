"""From a simulated timeline to the contract's figures, and the invariants every timeline keeps."""

from simcluster.metrics.invariants import InvariantError, check_invariants
from simcluster.metrics.summary import summarize

__all__ = ["InvariantError", "check_invariants", "summarize"]
