"""TPU clusters of more than one pod, joined by the data-center network (DCN)."""

from __future__ import annotations

import pytest

from simcluster.cli import main
from simcluster.collectives import plan_collective
from simcluster.spec import load_workload
from simcluster.spec.cluster import check_cluster, load_cluster
from simcluster.topology.build import build_topology


def _pods(preset: str, **update):
    return load_cluster(preset).model_copy(update=update)


def test_gopher_size_is_four_v3_pods():
    """Gopher trained on 4,096 TPU v3 chips in four pods (Rae et al. 2021, §4 / App. C)."""
    c = _pods("tpu-v3-pod", nodes=1024)  # 4 chips a host
    assert c.num_gpus == 4096 and c.num_pods() == 4 and check_cluster(c) == []
    topo = build_topology(c)
    assert topo.pods == 4 and topo.chips_per_pod == 1024 and topo.shape == (32, 32)


def test_palm_size_is_two_v4_pods_of_3072():
    """PaLM: 6,144 TPU v4 chips, two pods of 3,072 (Chowdhery et al. 2022, §4)."""
    c = _pods("tpu-v4-pod", nodes=1536, pods=2)
    assert check_cluster(c) == []
    topo = build_topology(c)
    assert topo.chips_per_pod == 3072
    # inside a pod: torus links only; across pods: chip -> host -> DCN -> host -> chip
    assert {topo.link_class[i] for i in topo.route(0, 5)} == {"torus"}
    assert [topo.link_class[i] for i in topo.route(0, 3072)] == ["dcn"] * 4


def test_a_pod_too_small_is_an_input_error(tmp_path, capsys):
    wl = tmp_path / "w.yaml"
    wl.write_text("model: {layers: 2, hidden: 256, heads: 4, seq_len: 128, vocab: 1000}\n"
                  "training: {global_batch: 64}\n"
                  "cluster: {preset: tpu-v4-pod, devices: 6144, pods: 1}\n")
    assert main(["validate", str(wl)]) == 2
    err = capsys.readouterr().err
    assert "pods" in err and "Traceback" not in err and "6144" in err


def test_dp_all_reduce_across_pods_matches_the_hierarchical_closed_form():
    """Two v4 pods of 8 chips (hosts of 4), S bytes all-reduced over all 16 chips: inside each
    pod a reduce-scatter leaves S/g per chip (g = 8), the k = 2 pods then exchange
    2(k − 1)/k · S/g = S/8 per chip over the DCN, so each host's uplink carries 4 × S/8."""
    c = _pods("tpu-v4-pod", nodes=4, pods=2)
    topo = build_topology(c)
    S = 1e9
    plan = plan_collective("all_reduce", tuple(range(16)), S, topo, algorithm="multipod")
    names = topo.link_names
    up = {}
    for tr in plan:
        for link, w in zip(tr.links, tr.weights):
            if names[link].startswith("host") and names[link].endswith("dcn"):
                up[names[link]] = up.get(names[link], 0.0) + tr.nbytes * w
    assert sorted(up) == [f"host{h}->dcn" for h in range(4)]
    for carried in up.values():
        assert carried == pytest.approx(4 * S / 8, rel=1e-12)
    # and auto picks it over a flat ring that would cross the DCN with every hop
    auto = plan_collective("all_reduce", tuple(range(16)), S, topo)
    assert sum(tr.nbytes for tr in auto) == pytest.approx(sum(tr.nbytes for tr in plan), rel=1e-12)


def test_a_two_pod_data_parallel_run(tmp_path):
    wl = tmp_path / "w.yaml"
    wl.write_text("name: two-pods\n"
                  "model: {layers: 4, hidden: 512, heads: 8, seq_len: 256, vocab: 8000}\n"
                  "training: {global_batch: 32, micro_batch: 1}\n"
                  "parallelism: {tensor: 4, pipeline: 1, data: 8}\n"
                  "cluster: {preset: tpu-v4-pod, devices: 32, pods: 2}\n")
    spec = load_workload(str(wl))
    from simcluster.run import simulate_workload
    out = simulate_workload(spec)
    assert out.summary["iteration_time_s"] > 0
    dcn = [l for l in out.details["link_utilization"] if l["cls"] == "dcn"]
    assert dcn, "data-parallel gradients cross the DCN"
