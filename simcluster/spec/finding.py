"""One cross-field problem of a workload (:mod:`simcluster.spec.checks`)."""

from __future__ import annotations

from typing import NamedTuple


class Finding(NamedTuple):
    """One cross-field problem: the key it is about, why, and other keys it involves.

    The loader prints ``key``; it takes the line from the first of ``key, *near`` that
    the user actually wrote (so a problem caused by ``--set`` names ``--set``).
    """

    key: str
    reason: str
    near: tuple[str, ...] = ()
