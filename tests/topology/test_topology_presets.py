"""Every preset cluster file: keys, units, figures, and that it builds."""

from pathlib import Path
from types import SimpleNamespace as NS

import pytest
import yaml

from simcluster.topology import DEVICES, FABRICS, build_topology
from simcluster.units import parse_quantity

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"
PRESETS = ["dgx1-v100", "dgx2-v100", "dgx-a100-40gb", "dgx-a100-80gb", "dgx-h100", "dgx-h200", "hgx-h800", "tpu-v3-pod", "tpu-v4-pod"]
TOP_KEYS = {"name", "device", "gpus_per_node", "nodes", "intra_node", "inter_node"}
INTRA_KEYS = {"fabric", "bandwidth", "latency"}
INTER_KEYS = {"fabric", "nics_per_node", "nic_bandwidth", "latency", "oversubscription", "switch_radix", "torus", "link_bandwidth"}


def load(name: str, nodes: int | None = None) -> NS:
    """Parse a preset by hand (the spec package is not used here): units via simcluster.units."""
    raw = yaml.safe_load((TOPOLOGIES / f"{name}.yaml").read_text())
    intra, inter = raw["intra_node"], raw["inter_node"]
    nodes = nodes or raw["nodes"]
    return NS(
        name=raw["name"],
        device=raw["device"],
        gpus_per_node=raw["gpus_per_node"],
        nodes=nodes,
        num_gpus=nodes * raw["gpus_per_node"],
        intra_node=NS(fabric=intra["fabric"], bandwidth=parse_quantity(intra["bandwidth"], "bandwidth"), latency=parse_quantity(intra["latency"], "time")),
        inter_node=NS(
            fabric=inter["fabric"],
            nics_per_node=inter["nics_per_node"],
            nic_bandwidth=parse_quantity(inter["nic_bandwidth"], "bandwidth"),
            latency=parse_quantity(inter["latency"], "time"),
            oversubscription=float(inter["oversubscription"]),
            switch_radix=inter["switch_radix"],
            torus=inter["torus"],
            link_bandwidth=None if inter["link_bandwidth"] is None else parse_quantity(inter["link_bandwidth"], "bandwidth"),
        ),
    )


@pytest.mark.parametrize("name", PRESETS)
def test_preset_keys_and_figures(name):
    text = (TOPOLOGIES / f"{name}.yaml").read_text()
    assert text.lstrip().startswith("#"), "each preset cites its sources in a comment"
    raw = yaml.safe_load(text)
    assert set(raw) == TOP_KEYS
    assert set(raw["intra_node"]) == INTRA_KEYS
    # TPU pods also name the data-center network that joins pods
    extra = {"dcn_bandwidth", "dcn_latency"} if raw["inter_node"]["fabric"] == "torus" else set()
    assert set(raw["inter_node"]) == INTER_KEYS | extra
    assert raw["name"] == name and raw["device"] in DEVICES and raw["nodes"] == 1
    assert raw["intra_node"]["fabric"] in FABRICS and raw["inter_node"]["fabric"] in FABRICS
    c = load(name)
    assert c.intra_node.bandwidth > 0 and c.intra_node.latency > 0 and c.inter_node.latency > 0
    assert build_topology(c).num_gpus == c.gpus_per_node


@pytest.mark.parametrize(  # per GPU per direction; sources cited at the top of each preset file
    "name, gpus, intra_bw, nics, nic_bw",
    [  # NVLink2 6 x 25 GB/s, NVLink3 12 x 25, NVLink4 18 x 25; EDR 100, HDR 200, NDR 400 Gb/s per NIC
        ("dgx1-v100", 8, 150e9, 4, 100e9 / 8),
        ("dgx2-v100", 16, 150e9, 8, 100e9 / 8),
        ("dgx-a100-40gb", 8, 300e9, 8, 200e9 / 8),
        ("dgx-a100-80gb", 8, 300e9, 8, 200e9 / 8),
        ("dgx-h100", 8, 450e9, 8, 400e9 / 8),
        ("dgx-h200", 8, 450e9, 8, 400e9 / 8),
        ("hgx-h800", 8, 200e9, 8, 400e9 / 8),  # NVLink 400 GB/s bidirectional
    ],
)
def test_dgx_figures(name, gpus, intra_bw, nics, nic_bw):
    c = load(name)
    assert (c.gpus_per_node, c.intra_node.bandwidth, c.inter_node.nics_per_node, c.inter_node.nic_bandwidth) == (gpus, intra_bw, nics, nic_bw)
    topo = build_topology(load(name, nodes=32))
    assert topo.num_gpus == 32 * gpus


@pytest.mark.parametrize("name, shape, full_nodes, part_nodes, part_shape", [
    ("tpu-v3-pod", [32, 32], 256, 64, (16, 16)),
    ("tpu-v4-pod", [16, 16, 16], 1024, 128, (8, 8, 8)),
])
def test_torus_presets(name, shape, full_nodes, part_nodes, part_shape):
    c = load(name)
    assert c.intra_node.fabric == c.inter_node.fabric == "torus" and c.inter_node.torus == shape
    assert c.gpus_per_node == 4
    full = build_topology(load(name, nodes=full_nodes))
    assert full.shape == tuple(shape) and full.num_gpus == full_nodes * 4
    assert build_topology(load(name, nodes=part_nodes)).shape == part_shape
