"""Cross-field checks of a cluster (:class:`~simcluster.spec.cluster.ClusterSpec`): what pydantic's
per-field validation cannot see — fabric needs, TPU pods, explicit graphs, devices that exist.

Each problem is a ``(dotted key, reason)`` pair; :mod:`simcluster.spec.cluster` turns them into
:class:`~simcluster.errors.Problem` s with the file and line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simcluster.spec.graph import graph_gpu_count, graph_problems
from simcluster.spec.limits import cluster_limits

if TYPE_CHECKING:
    from simcluster.spec.cluster import ClusterSpec


def check_cluster(spec: "ClusterSpec") -> list[tuple[str, str]]:
    """Cross-field problems of a cluster as (dotted key, reason)."""
    found = cluster_limits(spec)  # fabric combinations and sizes the builder cannot make
    intra, inter = spec.intra_node, spec.inter_node
    if spec.graph is not None:
        found += _graph_checks(spec)
    else:
        if spec.gpus_per_node > 1 and intra.fabric not in ("none", "torus") and intra.bandwidth <= 0:
            found.append(("intra_node.bandwidth", f"needed (> 0) with {spec.gpus_per_node} GPUs per node"))
        if inter.fabric == "torus":
            if not inter.torus:
                found.append(("inter_node.torus", "needed for fabric torus, e.g. [16, 16, 16]"))
            if not inter.link_bandwidth and not inter.nic_bandwidth:
                found.append(("inter_node.link_bandwidth", "needed (> 0) for fabric torus"))
            found += _pod_checks(spec)
        elif spec.nodes > 1 and inter.fabric != "none" and inter.nic_bandwidth <= 0 and not inter.link_bandwidth:
            found.append(("inter_node.nic_bandwidth", f"needed (> 0) with {spec.nodes} nodes"))
    for node in spec.node_devices:
        if node >= spec.nodes:
            found.append(("node_devices", f"node {node} does not exist: the cluster has {spec.nodes} nodes"))
    for rank in spec.stragglers:
        if rank >= spec.num_gpus:
            found.append(("stragglers", f"GPU {rank} does not exist: the cluster has {spec.num_gpus} GPUs"))
    return found


def _pod_checks(spec: "ClusterSpec") -> list[tuple[str, str]]:
    """TPU pods: the chips split evenly into pods of whole hosts that fit the torus; a DCN joins them."""
    torus = spec.inter_node.torus
    if not torus:
        return []
    full = 1
    for n in torus:
        full *= n
    pods, chips = spec.num_pods(), spec.num_gpus
    key = "pods" if spec.pods is not None else "nodes"
    if chips % pods or (chips // pods) % spec.gpus_per_node:
        return [(key, f"{chips} chips do not split into {pods} pods of whole {spec.gpus_per_node}-chip hosts")]
    if chips // pods > full:
        return [(key, f"{chips} chips in {pods} pod{'s' if pods > 1 else ''} need {chips // pods} chips a pod, "
                      f"more than a {'x'.join(map(str, torus))} torus holds ({full}); use pods: {-(-chips // full)} "
                      "or more")]
    if pods > 1 and spec.inter_node.dcn_bandwidth <= 0:
        return [("inter_node.dcn_bandwidth", f"needed (> 0) to join {pods} pods by the data-center network")]
    return []


def _graph_checks(spec: "ClusterSpec") -> list[tuple[str, str]]:
    """Problems of a cluster given as a graph: the graph's own, and GPUs the graph does not have."""
    found = graph_problems(spec.graph)
    from simcluster.spec.cluster import InterNodeSpec, IntraNodeSpec  # (defined beside ClusterSpec)

    for key, model in (("intra_node", IntraNodeSpec), ("inter_node", InterNodeSpec)):
        if getattr(spec, key) != model():
            found.append((key, "not used: the cluster's graph gives every link; remove it"))
    M, gpn = graph_gpu_count(spec.graph), spec.gpus_per_node
    have = f"the graph's links connect {M} GPUs (gpu0 .. gpu{M - 1})" if M else "the graph's links name no GPU"
    if spec.num_gpus > M:
        key = "gpus_per_node" if "nodes" not in spec.model_fields_set else "nodes"
        found.append((key, f"{spec.nodes} node{'s' if spec.nodes != 1 else ''} × {gpn} GPUs = {spec.num_gpus} GPUs, "
                           f"but {have}"))
    elif "nodes" not in spec.model_fields_set and M % gpn:
        found.append(("gpus_per_node", f"{have}, not whole nodes of {gpn}; give nodes to use fewer"))
    return found
