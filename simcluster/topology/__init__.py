"""What exists: devices, links, switches and the routes between GPUs (no notion of time)."""

from simcluster.topology.build import build_topology
from simcluster.topology.devices import DEVICES, Device
from simcluster.topology.fabrics import FABRICS
from simcluster.topology.topology import LINK_CLASSES, LINK_EFFICIENCY, Topology

__all__ = ["DEVICES", "Device", "FABRICS", "LINK_CLASSES", "LINK_EFFICIENCY", "Topology", "build_topology"]
