"""The devices of a cluster: accelerators by name, with datasheet figures.

The figures (and their sources) live in the leaf :mod:`simcluster.catalogue`, which the
spec package validates device names against; this module is the same registry under the
name the topology package has always used, so there is one table, not two.
"""

from __future__ import annotations

from simcluster.catalogue import DEVICES, Device

__all__ = ["DEVICES", "Device"]
