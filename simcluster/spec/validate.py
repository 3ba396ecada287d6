"""``validate FILE.yaml``: check a workload, cluster or sweep file and list what is wrong."""

from __future__ import annotations

from pathlib import Path

from simcluster.errors import Problem, SpecError
from simcluster.spec.cluster import cluster_from_doc
from simcluster.spec.sweep import is_sweep_data, sweep_from_doc
from simcluster.spec.workload import workload_from_data
from simcluster.spec.yamlio import load_yaml


def validate_file(path: str | Path) -> list[Problem]:
    """Every problem in the file at ``path``; an empty list when it is fine.

    A file with a ``model`` key is a workload; one with ``gpus_per_node`` or ``device``
    is a cluster; one with ``base``, ``grid`` or ``zip`` (and no ``model``) is a sweep;
    anything else is reported as none of these.
    """
    try:
        doc = load_yaml(path)
        if "model" in doc.data:
            workload_from_data(doc.data, source=str(path), doc=doc, base_dir=Path(path).parent)
        elif "gpus_per_node" in doc.data or "device" in doc.data:
            cluster_from_doc(doc)
        elif is_sweep_data(doc.data):
            sweep_from_doc(doc)
        else:
            return [Problem(str(path), None, "", "neither a workload (no `model` key) nor a cluster file "
                            "(no `gpus_per_node` or `device` key) nor a sweep (no `base` or `grid` key)")]
    except SpecError as exc:
        return list(exc.problems)
    return []
