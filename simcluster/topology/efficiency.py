"""Link efficiency: the share of a link's raw bandwidth a collective library reaches on it.

The engine moves bytes at ``raw bandwidth x efficiency[link class]``
(:class:`~simcluster.topology.topology.Topology.link_bandwidth`); the raw
figures stay in ``link_raw_bandwidth``. Efficiency lumps protocol overhead
(packet headers, flow control, NCCL's Simple-protocol flags and chunking)
into one calibrated constant per link class, so that a large-message NCCL
ring all-reduce reaches the bus bandwidth (busbw) NCCL's maintainers publish
(nccl-tests doc/PERFORMANCE.md defines busbw; for an all-reduce on n ranks
busbw = S / t * 2(n-1)/n, which on an uncontended ring equals the bottleneck
link's effective bandwidth).

How the factor is chosen (the calibration keys):

- ``nvlink`` depends on the NVLink generation, i.e. on the GPU (device
  catalogue name). Calibration targets, NCCL all_reduce_perf busbw on one
  8-GPU node, as NCCL's maintainers state them: A100 NVLink3 ~230 of 300 GB/s
  per direction (0.767; github.com/NVIDIA/nccl-tests/issues/149, 2023-07-05),
  H100/H200 NVLink4 ~370 of 450 GB/s with the ring (0.822;
  github.com/NVIDIA/nccl-tests/issues/212, 2024-05-06). V100 NVLink2: no figure
  was calibrated here; 0.80 sits between the two measured generations (an estimate).
- ``nic`` (NIC to leaf), ``spine`` (leaf to spine) and ``pcie`` (the GPU to
  NIC path, which runs at the NIC's rate in this model) depend on the
  InfiniBand generation, i.e. on the NIC line rate ``inter_node.nic_bandwidth``:
  EDR 100 Gb/s ~12 of 12.5 GB/s and HDR 200 Gb/s ~24 of 25 GB/s (0.96), NDR
  400 Gb/s 46-48 of 50 GB/s (0.94), the per-NIC busbw NCCL's maintainers quote
  (EDR: a DGX-1 with 4 x EDR reaches ~48 GB/s, nccl-tests/issues/29, 2019-12-06;
  HDR: ~24 GB/s per NIC, nccl/issues/412, 2023-04-24, and a DGX A100 with 8 x HDR
  192 GB/s, nccl/issues/812, 2023-03-31; NDR: nccl-tests/issues/290, 2025-03-03;
  all under github.com/NVIDIA). One factor for the three classes keeps
  a fat tree's oversubscription ratio exact and the GPU-NIC hop from
  becoming a spurious bottleneck.
- ``pcie`` as an intra-node fabric (GPUs on a PCIe switch, no NVLink) uses
  the same factor: PCIe Gen3/Gen4 DMA reaches ~0.8-0.9 of its nominal rate,
  but no NCCL figure was calibrated here; the NIC factor is used.
- ``torus`` (TPU ICI): no published per-link collective figure; 1.0 (raw).

A cluster whose own NCCL figure is known says so with
``inter_node.nic_efficiency``: the busbw one NIC reached in a large-message
ring on that cluster over its line rate. It replaces the ``nic`` class's
factor only: a NIC that falls short of its line rate for a reason at its end
(e.g. no GPUDirect RDMA, every chunk staged through host memory) leaves the
switches' factor, and with it an oversubscribed spine's ratio, as calibrated.
Example: Jean Zay's A100 nodes (BLOOM), NCCL 2.10.3 over Omni-Path 100 Gb/s
without GPUDirect RDMA, 40.5 Gb/s per NIC (bigscience-workshop/bigscience
``experiments/bandwidth/all_reduce_bench-a100-n4.txt``; ``workloads/bloom-176b.yaml``).

A caller of :func:`~simcluster.topology.build.build_topology` may override any
class with its own mapping ``efficiency`` (or a cluster object with ``link_efficiency``).
"""

from __future__ import annotations

from typing import Mapping

from simcluster.topology.cluster import Cluster

#: Generic per-class factors, for devices and NICs the tables below do not know.
GENERIC: dict[str, float] = {"nvlink": 0.80, "pcie": 0.96, "nic": 0.96, "spine": 0.96, "torus": 1.0}

#: NVLink efficiency by device (NVLink generation); sources in the module docstring.
NVLINK_BY_DEVICE: dict[str, float] = {
    "v100": 0.80,  # NVLink2: estimate, not calibrated
    "a100-40gb": 230 / 300,  # NVLink3: NCCL ~230 of 300 GB/s
    "a100-80gb": 230 / 300,
    "h100": 370 / 450,  # NVLink4: NCCL ~370 of 450 GB/s
    "h200": 370 / 450,
}

#: NIC efficiency by line rate (bytes/s, per direction): the largest rate <= the NIC's applies.
NIC_BY_RATE: tuple[tuple[float, float], ...] = (
    (100e9 / 8, 0.96),  # EDR: ~12 of 12.5 GB/s
    (200e9 / 8, 0.96),  # HDR: ~24 of 25 GB/s
    (400e9 / 8, 0.94),  # NDR: ~47 of 50 GB/s
)


#: NIC efficiencies measured on named clusters of the shipped files (``inter_node.nic_efficiency`` there; module
#: docstring): cluster -> (NIC line rate in bytes/s, share of it, source).
MEASURED_NICS: dict[str, tuple[float, float, str]] = {
    "Jean Zay A100 (workloads/bloom-176b.yaml)": (
        100e9 / 8, 0.405, "bigscience-workshop/bigscience experiments/bandwidth/all_reduce_bench-a100-n4.txt: NCCL "
        "2.10.3 over Omni-Path without GPUDirect RDMA, ring through one NIC per direction, busbw 40.5-40.8 Gb/s"),
}


def nic_efficiency(nic_bandwidth: float | None) -> float:
    """The InfiniBand generation's factor for a NIC of ``nic_bandwidth`` bytes/s."""
    eff = GENERIC["nic"]
    for rate, e in NIC_BY_RATE:
        if nic_bandwidth and nic_bandwidth >= rate * 0.999:
            eff = e
    return eff


def default_efficiency(device_name: str, nic_bandwidth: float | None) -> dict[str, float]:
    """Per-class factors for a cluster of ``device_name`` GPUs with NICs of ``nic_bandwidth``."""
    nic = nic_efficiency(nic_bandwidth)
    return {
        **GENERIC,
        "nvlink": NVLINK_BY_DEVICE.get(device_name, GENERIC["nvlink"]),
        "pcie": nic,
        "nic": nic,
        "spine": nic,
    }


def cluster_efficiency(cluster: Cluster, device_name: str) -> dict[str, float]:
    """Defaults for ``cluster``, its measured ``inter_node.nic_efficiency`` for the ``nic`` class if it gives
    one, overridden by its own ``link_efficiency`` mapping, if any.

    (``link_efficiency`` is optional: a ClusterSpec has no such field; a caller of
    ``build_topology`` passes its overrides as ``efficiency``.)
    """
    out = default_efficiency(device_name, cluster.inter_node.nic_bandwidth)
    measured = getattr(cluster.inter_node, "nic_efficiency", None)  # optional: older config.json and namespaces lack it
    if measured:
        out["nic"] = float(measured)
    overrides: Mapping[str, float] | None = getattr(cluster, "link_efficiency", None)
    out.update(overrides or {})
    return out


RAW: dict[str, float] = {c: 1.0 for c in GENERIC}
"""Every class at 1.0: raw datasheet bandwidths (pass as ``efficiency=RAW``)."""
