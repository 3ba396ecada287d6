"""Collective algorithms: decompose a collective on a group of GPUs into transfers on links."""
