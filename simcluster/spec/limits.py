"""Checks that keep a valid file simulable: fabric combinations the topology builder can make,
and sizes it can build (and the simulator can run) in bounded time and memory.

Each key's own range is a pydantic constraint in the models (shown in docs/reference.md);
these are the checks that read several keys at once. :func:`cluster_limits` returns
``(dotted key, reason)`` pairs like :func:`simcluster.spec.cluster.check_cluster`, which
calls it; :func:`workload_limits` returns :class:`~simcluster.spec.checks.Finding` s.
The fabric scopes mirror :mod:`simcluster.topology.fabrics` (a test keeps them equal):
spec/ imports no topology code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simcluster.spec.checks import Finding
from simcluster.spec.fields import MAX_DEVICES

if TYPE_CHECKING:
    from simcluster.spec.workload import WorkloadSpec

#: Fabrics allowed inside a node and between nodes (topology.fabrics.INTRA_FABRICS / INTER_FABRICS).
INTRA_FABRICS = ("nvswitch", "nvlink-mesh", "pcie", "torus", "none")
INTER_FABRICS = ("fat-tree", "rail-optimized", "torus", "none")
#: nvlink-mesh is a full mesh beyond the DGX-1's 8 GPUs: links grow with the square of a node's GPUs.
MAX_MESH_GPUS = 16
#: Microbatches per pipeline in one iteration: each is simulated, layer by layer.
MAX_MICROBATCHES = 100_000


def _fabric_checks(spec: Any) -> list[tuple[str, str]]:
    intra, inter = spec.intra_node.fabric, spec.inter_node.fabric
    G, N = spec.gpus_per_node, spec.nodes
    found: list[tuple[str, str]] = []
    if intra not in INTRA_FABRICS:
        found.append(("intra_node.fabric", f"{intra} joins nodes, not the GPUs of one node; inside a node: "
                                           f"{', '.join(INTRA_FABRICS)}"))
    if inter not in INTER_FABRICS:
        found.append(("inter_node.fabric", f"{inter} joins the GPUs of one node, not nodes; between nodes: "
                                           f"{', '.join(INTER_FABRICS)}"))
    if found:
        return found
    if "torus" in (intra, inter):
        if intra != "torus" or inter not in ("torus", "none"):
            key = "intra_node.fabric" if intra == "torus" else "inter_node.fabric"  # the torus asked for
            found.append((key, f"a torus spans every chip: intra_node.fabric must be torus and inter_node.fabric "
                               f"torus (or none), got {intra} and {inter}"))
        elif inter == "none" and not spec.inter_node.torus:
            found.append(("inter_node.torus", "needed for fabric torus, e.g. [16, 16, 16]"))
        return found
    if inter == "none" and N > 1:
        found.append(("inter_node.fabric", f"none cannot connect {N} nodes; use fat-tree or rail-optimized"))
    if intra == "none" and G > 1:
        found.append(("intra_node.fabric", f"none cannot connect {G} GPUs per node; use nvswitch, nvlink-mesh "
                                           "or pcie"))
    if inter in ("fat-tree", "rail-optimized") and N > 1 and spec.inter_node.nic_bandwidth == 0 and \
            spec.inter_node.link_bandwidth:  # (no link_bandwidth either: check_cluster says it)
        found.append(("inter_node.nic_bandwidth", f"needed (> 0) for fabric {inter} with {N} nodes "
                                                  "(link_bandwidth is for a torus)"))
    if intra == "nvlink-mesh" and G > MAX_MESH_GPUS:
        found.append(("intra_node.fabric", f"nvlink-mesh joins at most {MAX_MESH_GPUS} GPUs per node (a full "
                                           f"mesh), got {G}; use nvswitch"))
    return found


def cluster_limits(spec: Any) -> list[tuple[str, str]]:
    """Fabric combinations the builder cannot make, and clusters too large to build.

    ``spec`` is a :class:`~simcluster.spec.cluster.ClusterSpec`.
    """
    G, N = spec.gpus_per_node, spec.nodes
    found: list[tuple[str, str]] = []
    if G * N > MAX_DEVICES:
        key = "nodes" if N > 1 else "gpus_per_node"
        found.append((key, f"{N:,} nodes × {G:,} GPUs = {G * N:,} devices; at most {MAX_DEVICES:,} can be simulated"))
    if spec.graph is not None:
        return found
    found += _fabric_checks(spec)
    inter = spec.inter_node
    if not found and inter.fabric in ("fat-tree", "rail-optimized") and N * inter.nics_per_node > MAX_DEVICES:
        found.append(("inter_node.nics_per_node", f"{N:,} nodes × {inter.nics_per_node:,} NICs = "
                                                  f"{N * inter.nics_per_node:,} NICs; at most {MAX_DEVICES:,}"))
    if inter.torus:
        chips = 1
        for n in inter.torus:
            chips *= n
        if len(inter.torus) > 3:
            found.append(("inter_node.torus", f"1 to 3 sizes, got {len(inter.torus)}"))
        elif chips > MAX_DEVICES:
            found.append(("inter_node.torus", f"{'×'.join(map(str, inter.torus))} = {chips:,} chips; at most "
                                              f"{MAX_DEVICES:,}"))
    return found


def workload_limits(spec: "WorkloadSpec") -> list[Finding]:
    """Iterations too large to simulate (the task graph grows with the microbatches)."""
    p, tr = spec.parallelism, spec.training
    if p.data is None:
        return []
    m = tr.global_batch // (tr.micro_batch * p.data)
    if m > MAX_MICROBATCHES:
        return [Finding("training.global_batch",
                        f"{tr.global_batch:,} sequences / (micro_batch {tr.micro_batch} × data {p.data}) = {m:,} "
                        f"microbatches per pipeline; at most {MAX_MICROBATCHES:,} can be simulated (raise "
                        "micro_batch or data)", ("training.micro_batch", "parallelism.data"))]
    return []
