"""Shared test fixtures: duck-typed cluster specs for topology and collective tests."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest


def _make_cluster(
    nodes: int = 2,
    gpus_per_node: int = 8,
    intra: str = "nvswitch",
    inter: str = "fat-tree",
    *,
    intra_bw: float = 300e9,
    intra_lat: float = 2e-6,
    nics: int = 8,
    nic_bw: float = 25e9,
    inter_lat: float = 5e-6,
    oversubscription: float = 1.0,
    radix: int = 64,
    torus: list[int] | None = None,
    link_bw: float | None = None,
    device: str = "a100-80gb",
    nic_eff: float | None = None,
) -> NS:
    return NS(
        name="test",
        device=device,
        gpus_per_node=gpus_per_node,
        nodes=nodes,
        num_gpus=nodes * gpus_per_node,
        intra_node=NS(fabric=intra, bandwidth=intra_bw, latency=intra_lat),
        inter_node=NS(
            fabric=inter,
            nics_per_node=nics,
            nic_bandwidth=nic_bw,
            nic_efficiency=nic_eff,
            latency=inter_lat,
            oversubscription=oversubscription,
            switch_radix=radix,
            torus=torus,
            link_bandwidth=link_bw,
        ),
    )


@pytest.fixture
def make_cluster():
    """``make_cluster(nodes=2, gpus_per_node=8, intra=..., inter=..., **figures)`` -> a duck-typed cluster spec."""
    return _make_cluster
