"""Validated workload and cluster files (the only package that reads YAML).

```python
spec = load_workload("workloads/x.yaml", overrides=["parallelism.tensor=4"])  # WorkloadSpec
cluster = load_cluster("dgx-a100-80gb")                                       # ClusterSpec
problems = validate_file("workloads/x.yaml")                                  # [] when fine
```

Every user mistake is raised as :class:`simcluster.errors.SpecError`, one
:class:`~simcluster.errors.Problem` (file, line, dotted key, reason) per mistake.
"""

from simcluster.spec.checks import check_workload
from simcluster.spec.cluster import (
    PRESETS_DIR,
    ClusterSpec,
    InterNodeSpec,
    IntraNodeSpec,
    list_presets,
    load_cluster,
)
from simcluster.spec.device import DeviceMapping
from simcluster.spec.overrides import parse_override
from simcluster.spec.parallelism import ParallelismSpec
from simcluster.spec.training import TrainingSpec
from simcluster.spec.validate import validate_file
from simcluster.spec.workload import (
    ModelSpec,
    WorkloadSpec,
    load_workload,
    workload_from_data,
)

__all__ = [
    "PRESETS_DIR",
    "ClusterSpec",
    "DeviceMapping",
    "InterNodeSpec",
    "IntraNodeSpec",
    "ModelSpec",
    "ParallelismSpec",
    "TrainingSpec",
    "WorkloadSpec",
    "check_workload",
    "list_presets",
    "load_cluster",
    "load_workload",
    "parse_override",
    "validate_file",
    "workload_from_data",
]
