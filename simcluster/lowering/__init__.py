"""Lowering: turn the operator graph and a parallel layout into one task graph."""
