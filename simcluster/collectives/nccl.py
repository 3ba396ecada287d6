"""NCCL's latency model and protocol choice (src/graph/tuning.cc, src/enqueue.cc), for GPU clusters.

NCCL predicts every (algorithm, protocol) pair's time as ``latency + S / bandwidth``
and runs the fastest (NCCL 2.8-2.12, src/enqueue.cc ``getAlgoInfo`` over
``ncclTopoGetAlgoTime``). Algorithms: ring for every collective, tree for
all-reduce only (tuning.cc: ``if (coll != ncclFuncAllReduce && a != NCCL_ALGO_RING)
continue;``); CollNet needs SHARP switches and a plugin, NVLS (2.17+) NVLink
SHARP on Hopper NVSwitch systems, PAT (2.23+) one GPU per node -- none of them
is modelled (see :mod:`simcluster.collectives.select`).

Latency (tuning.cc, ``ncclTopoTuneModel``; n ranks on k nodes, g = n/k per node):

    ring all_reduce              base + (2(n-1) - 2(k-1)) lat_intra + 2(k-1) lat_net
    ring all_gather/reduce_scatter  base + ((n-1) - (k-1)) lat_intra + (k-1) lat_net
    tree all_reduce              base + 2 ((g-1) lat_intra + floor(log2 k) lat_net)

with ``base = baseLat[algo][proto]``, ``lat_intra = hwLat[NVLINK or PCI][algo][proto]``
(x1.8 for LL across nodes), ``lat_net = hwLat[NET][algo][proto]``; on one node
every step is intra-node. Broadcast is costed here like the all-gather's ring
(n-1 pipelined hops), NCCL's own broadcast term being a special case.

Tables, NCCL v2.8.3 .. v2.12.12 (2020-2022, the A100 era; unchanged over these
releases except CollNet), in microseconds::

    baseLat   Tree { LL 4.4, LL128 4.4, Simple 0 }   Ring { LL 3.6, LL128 10.0, Simple 8.4 }
    hwLat NVLINK  Tree { .52, 1.25, 28 }   Ring { .47, 1.9, 3.4 }
    hwLat PCI     Tree { 1.0, 1.9, 28 }    Ring { 1.0, 2.5, 5.7 }
    hwLat NET     Tree { 5.0, 8.5, 28 }    Ring { 2.7, 4.0, 9.6 }

Protocol bandwidth factors (tuning.cc "model refinements", applied to the bus
bandwidth): ring LL x 1/4 (across nodes or all-reduce; 1/3 otherwise), ring
LL128 x 0.92, tree LL x 1/3.8, tree LL128 x 0.915 across nodes (7/9 on one),
Simple x 1. LL128 is enabled only with NVLink inside the node (tuning.cc:
``typeIntra <= PATH_NVL``). The per-channel caps (llMaxBw, ll128MaxBwPerCh)
and the tree correction factors by size are not modelled.
"""

from __future__ import annotations

import math

US = 1e-6

PROTOCOLS = ("LL", "LL128", "Simple")

#: baseLat[algorithm][protocol] in seconds (NCCL v2.8-v2.12 src/graph/tuning.cc).
BASE_LATENCY: dict[str, dict[str, float]] = {
    "tree": {"LL": 4.4 * US, "LL128": 4.4 * US, "Simple": 0.0},
    "ring": {"LL": 3.6 * US, "LL128": 10.0 * US, "Simple": 8.4 * US},
}

#: hwLat[link class][algorithm][protocol] in seconds per step (NCCL v2.8-v2.12 src/graph/tuning.cc).
STEP_LATENCY: dict[str, dict[str, dict[str, float]]] = {
    "nvlink": {"tree": {"LL": 0.52 * US, "LL128": 1.25 * US, "Simple": 28 * US},
               "ring": {"LL": 0.47 * US, "LL128": 1.9 * US, "Simple": 3.4 * US}},
    "pci": {"tree": {"LL": 1.0 * US, "LL128": 1.9 * US, "Simple": 28 * US},
            "ring": {"LL": 1.0 * US, "LL128": 2.5 * US, "Simple": 5.7 * US}},
    "net": {"tree": {"LL": 5.0 * US, "LL128": 8.5 * US, "Simple": 28 * US},
            "ring": {"LL": 2.7 * US, "LL128": 4.0 * US, "Simple": 9.6 * US}},
}

#: LL's intra-node step latency factor across nodes (tuning.cc: ``if (nNodes > 1 && p == NCCL_PROTO_LL) intraLat *= 1.8``).
LL_INTRA_FACTOR_MULTINODE = 1.8

#: intra-node fabrics whose links are NVLink (the rest of the switched GPU fabrics are PCIe).
NVLINK_FABRICS = ("nvswitch", "nvlink-mesh")
#: fabrics the model applies to: switched GPU clusters (tori and explicit graphs keep their own latencies).
INTRA_FABRICS = ("nvswitch", "nvlink-mesh", "pcie", "none")
INTER_FABRICS = ("fat-tree", "rail-optimized", "none")


def applies(intra_fabric: str, inter_fabric: str) -> bool:
    """Whether the NCCL model prices collectives on a cluster with these fabrics."""
    return intra_fabric in INTRA_FABRICS and inter_fabric in INTER_FABRICS


def protocols(intra_fabric: str) -> tuple[str, ...]:
    """The protocols NCCL enables: LL128 only with NVLink inside the node (tuning.cc, protoEnable)."""
    return PROTOCOLS if intra_fabric in NVLINK_FABRICS else ("LL", "Simple")


def bandwidth_factor(algorithm: str, protocol: str, op: str, nodes: int) -> float:
    """Fraction of the bus bandwidth ``protocol`` reaches for ``algorithm`` (tuning.cc model refinements)."""
    if protocol == "Simple":
        return 1.0
    if algorithm == "tree":
        if protocol == "LL":
            return 1 / 3.8
        return 0.915 if nodes > 1 else 7 / 9
    if protocol == "LL":
        return 1 / 4 if nodes > 1 or op == "all_reduce" else 1 / 3
    return 0.92


def latency(algorithm: str, protocol: str, op: str, ranks: int, nodes: int, intra_fabric: str) -> float:
    """Seconds of NCCL's latency term for ``op`` on ``ranks`` GPUs over ``nodes`` nodes (module docstring)."""
    intra_cls = "nvlink" if intra_fabric in NVLINK_FABRICS else "pci"
    intra = STEP_LATENCY[intra_cls][algorithm][protocol]
    if nodes > 1 and protocol == "LL":
        intra *= LL_INTRA_FACTOR_MULTINODE
    net = STEP_LATENCY["net"][algorithm][protocol]
    base = BASE_LATENCY[algorithm][protocol]
    if algorithm == "tree":
        return base + 2 * ((ranks // nodes - 1) * intra + int(math.floor(math.log2(nodes))) * net)
    per = 2 if op == "all_reduce" else 1
    steps, inter = per * (ranks - 1), per * (nodes - 1)
    return base + (steps - inter) * intra + inter * net
