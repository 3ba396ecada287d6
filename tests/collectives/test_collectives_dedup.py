"""A deduplicating MoE dispatch (DeepEP, HybridEP: simcluster.collectives.dedup): one InfiniBand copy per token and
remote node, NVLink forwarding inside it, one copy per token and rank."""

from __future__ import annotations

from math import comb

import pytest

from simcluster.collectives import plan_collective
from simcluster.collectives.dedup import Dedup, dedup_all_to_all, dedup_shares, node_hit, part_hit, rank_hit
from simcluster.collectives.transfer import byte_time
from simcluster.spec import load_workload
from simcluster.topology import build_topology

S = 1e8


def test_a_token_reaches_a_node_when_one_of_its_experts_is_there():
    assert node_hit(128, 8, 2) == pytest.approx(1 - comb(64, 8) / comb(128, 8), rel=1e-12)  # Qwen3-30B, two nodes
    assert node_hit(128, 8, 1) == 1.0
    assert node_hit(256, 8, 8, node_limit=4) == 0.5  # DeepSeek-V3: experts on 4 of 8 nodes
    assert node_hit(8, 1, 4) == pytest.approx(0.25)  # top-1: the one expert's node
    assert node_hit(16, 16, 2) == 1.0  # every expert: every node
    assert node_hit(10, 2, 4) == pytest.approx(1 - (7.5 / 10) * (6.5 / 9))  # 2.5 experts a node: the product


def test_a_token_reaches_a_rank_when_one_of_its_experts_is_there():
    """P_rank over the ranks: the node formula with a part per rank; under node- or group-limited routing a rank inside
    a group is reached when its group is chosen (M/G) and one of the group's k/M experts is on it; a part of whole
    groups when one of them is chosen."""
    assert rank_hit(32, 8, 8) == pytest.approx(1 - comb(28, 8) / comb(32, 8), rel=1e-12)  # 5.6 of 8 ranks a token
    assert rank_hit(8, 2, 8) == pytest.approx(0.25)  # one expert a rank: every copy to its own rank
    assert rank_hit(256, 8, 64, nodes=8, node_limit=4) == pytest.approx(
        0.5 * (1 - comb(28, 2) / comb(32, 2)), rel=1e-12)  # DeepSeek-V3: 2 of a chosen node's 32 experts, 4 a rank
    assert rank_hit(32, 8, 8, node_limit=4, groups=8) == pytest.approx(0.5)  # a group a rank: 4 ranks of 8
    assert part_hit(32, 8, 2, groups=8, limit=4) == pytest.approx(1 - comb(4, 4) / comb(8, 4))  # 4 groups a node
    assert part_hit(256, 8, 8, groups=8, limit=4) == pytest.approx(0.5) == node_hit(256, 8, 8, node_limit=4)
    assert part_hit(30, 2, 4, groups=3, limit=1) == node_hit(30, 2, 4)  # groups across parts: plain top-k
    assert node_hit(64, 2, 8, node_limit=4) == pytest.approx(2 / 8)  # two experts reach at most two of the nodes
    assert part_hit(64, 2, 8, groups=8, limit=4) == pytest.approx(2 / 8)
    for experts, k, ranks in ((8, 2, 8), (16, 1, 4), (128, 1, 16)):  # one expert a rank, or top-1: nothing to spare
        assert dedup_shares(experts, k, ranks, 1).nvl == pytest.approx(1.0)
    assert dedup_shares(128, 8, 16, 2).nvl == pytest.approx(16 * (1 - comb(120, 8) / comb(128, 8)) / 8, rel=1e-12)


@pytest.mark.parametrize("experts, k", [(128, 8), (64, 2), (16, 1)])
def test_two_nodes_closed_form(experts, k):
    """16 ranks on two DGX H100: each rank sends 7/8 of S·n·P_rank/k over NVLink (its own tokens' copies and those it
    forwards for its rail peer, once per rank) and S·P/k over InfiniBand to that peer, both at once: the slower link
    sets the time; NCCL's direct all-to-all sends S/2 over InfiniBand instead (the same as top-1's S·P/k, P = 1/2)."""
    topo = build_topology(load_workload_cluster(2))
    share = dedup_shares(experts, k, 16, 2)
    assert share.ib == pytest.approx(node_hit(experts, k, 2) / k, rel=1e-12)
    (t,) = dedup_all_to_all(range(16), S, topo, share)
    nvlink = min(topo.link_bandwidth[l] for l in topo.route(0, 1))
    nic = min(topo.link_bandwidth[l] for l in topo.route(0, 8))
    assert byte_time(t, topo.link_bandwidth) == pytest.approx(
        max(7 / 8 * S * share.nvl / nvlink, share.ib * S / nic), rel=1e-9)
    (direct,) = plan_collective("all_to_all", range(16), S, topo, algorithm="direct")
    assert byte_time(direct, topo.link_bandwidth) == pytest.approx(S / 2 / nic, rel=1e-9)
    if k == 1:  # one copy a token: nothing to deduplicate
        assert byte_time(t, topo.link_bandwidth) == pytest.approx(byte_time(direct, topo.link_bandwidth))
    else:
        assert byte_time(t, topo.link_bandwidth) < byte_time(direct, topo.link_bandwidth)


def test_one_node_is_the_direct_all_to_all_of_the_deduplicated_bytes():
    topo = build_topology(load_workload_cluster(1))
    assert dedup_all_to_all(range(8), S, topo, Dedup(0.1, 0.7)) == plan_collective("all_to_all", range(8), 0.7 * S,
                                                                                   topo, algorithm="direct")


def load_workload_cluster(nodes: int):
    """The cluster of a DGX H100 workload on ``nodes`` nodes."""
    from pathlib import Path
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.yaml"
        path.write_text("name: c\nmodel: {layers: 2, hidden: 256, heads: 4, seq_len: 128, vocab: 1000}\n"
                        f"training: {{global_batch: {8 * nodes}, micro_batch: 1}}\n"
                        f"cluster: {{preset: dgx-h100, nodes: {nodes}}}\n")
        return load_workload(path).cluster


MOE = """\
name: dedup
model: {layers: 4, hidden: 1024, heads: 16, seq_len: 2048, vocab: 32000, ffn_hidden: 2816, mlp: swiglu,
        moe: {experts: 16, top_k: 4, expert_ffn_hidden: 1408}}
training: {global_batch: 64, micro_batch: 1, precision: bf16}
parallelism: {tensor: 1, pipeline: 1, data: 16, expert: 16, zero_stage: 1}
cluster: {preset: dgx-h100, nodes: 2}
"""


def test_the_dispatcher_changes_the_simulated_all_to_all(tmp_path):
    """Expert parallelism over two nodes, top-4 of 16 experts: with HybridEP each all-to-all moves a quarter of the
    bytes over InfiniBand (P = 1 − C(8,4)/C(16,4) = 0.9615 of a token, not 4 × 1/2 copies), so its simulated tasks are
    shorter and the step with them; the analytical screen prices the same plan (within 1 % of the simulation);
    the same dispatcher without experts is refused."""
    from simcluster.errors import SpecError
    from simcluster.plan.plan import build_plan
    from simcluster.run import simulate_workload
    from simcluster.search.estimate import Estimator
    from simcluster.search.layout import layout_of
    path = tmp_path / "moe.yaml"
    path.write_text(MOE)
    runs = {}
    for d in ("alltoall", "hybridep"):
        spec = load_workload(path, [f"parallelism.moe_dispatcher={d}"])
        out = simulate_workload(spec)
        tl = out.result.timeline
        a2a = tl[tl.task.str.startswith("ep.all_to_all")]
        runs[d] = ((a2a.end_s - a2a.start_s).median(), out.summary["iteration_time_s"])
        est = Estimator(spec, build_topology(spec.cluster)).estimate(layout_of(spec)).iteration_time_s
        assert est == pytest.approx(out.summary["iteration_time_s"], rel=0.01)
    dedup = build_plan(load_workload(path, ["parallelism.moe_dispatcher=deepep"])).moe.dedup
    assert dedup.ib == pytest.approx((1 - comb(8, 4) / comb(16, 4)) / 4)
    assert dedup.nvl == pytest.approx(16 * (1 - comb(15, 4) / comb(16, 4)) / 4)  # one expert a rank: 16·(4/16)/4 = 1
    assert runs["hybridep"][0] < 0.6 * runs["alltoall"][0] and runs["hybridep"][1] < runs["alltoall"][1]
    with pytest.raises(SpecError, match="moe_dispatcher"):
        load_workload(path, ["parallelism.moe_dispatcher=deepep", "model.moe=null", "parallelism.expert=1"])
