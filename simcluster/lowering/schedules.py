"""Pipeline schedules (registry; workload key ``parallelism.schedule``). STUB, filled by lowering."""

from __future__ import annotations

from simcluster.registry import Registry

SCHEDULES: Registry = Registry("schedule")
for _name in ("gpipe", "1f1b", "interleaved"):
    SCHEDULES.add(_name, None)
