"""A deduplicating expert-parallel dispatch (DeepEP, HybridEP): one InfiniBand copy per token and remote node.

NCCL's all-to-all (the ``alltoall`` dispatcher, :func:`simcluster.collectives.algorithms.direct`) sends each of a
token's k routed copies on its own: from every rank S/n to each of the n ranks of the expert group, S = τ·k·h·dtype.
DeepEP's internode kernels and NVIDIA's HybridEP send a token to another node once, to the GPU of the same local index
(its rail), which forwards the copies over NVLink to the experts' GPUs there (DeepSeek-V3 §3.2.2: "a token's
transmission over IB happens once per node"; DeepEP ``docs/Hybrid-EP_Implementation.md``: the RDMA token buffer holds
``max_tokens_per_rank × (num_nodes − 1) × hidden_dim`` elements). On N nodes of g group members each:

- over InfiniBand, rank a to the rank of a's local index on each other node: τ·h·dtype·P bytes, P the chance that a
  token has at least one of its k experts there: P = 1 − C(E − E/N, k) / C(E, k) for k distinct experts drawn
  uniformly from E spread evenly over the nodes (a balanced router), min(M, N, k)/N under node-limited routing (each
  token's experts on M of the N nodes, DeepSeek-V3 §2.1.2);
- over NVLink inside every node, rank a to each other member b: the copies a's own tokens send to b and those a
  forwards from the N − 1 other nodes' tokens on its rail, N·S/n = S/g;

both at once (the kernels pipeline the two domains), as one transfer whose per-link weights are the two plans'
(NCCL-style direct all-to-alls over the node and rail subgroups) in proportion to their bytes. The combine runs the
same hops back.

Inside a node the copies are deduplicated per rank too: DeepEP's dispatch layout is per rank
(``get_dispatch_layout`` returns ``num_tokens_per_rank`` and ``is_token_in_rank[num_tokens, num_ranks]``; Megatron-Core
``fused_a2a.py`` passes both to ``Buffer.dispatch``), so a token reaches each rank holding one or more of its experts
once, with its top-k indices and weights, and the receiving rank expands it to its local experts (Megatron-Core
``_DeepepManager.get_permuted_hidden_states_by_experts``: ``permute`` by the dispatched routing map); HybridEP's
dispatch takes the routing map and ``num_local_experts`` and returns the tokens per local expert likewise
(``hybrid_ep_dispatch``). A rank of the n = ep ranks holds E/n experts; it receives a token with probability
P_rank = 1 − C(E − E/n, k)/C(E, k) (under node- or group-limited routing, k/M of the token's experts in each of M
of the G groups: P_rank = M/G · (1 − C(E/G − E/n, k/M)/C(E/G, k/M)), :func:`part_hit`), so the NVLink bytes of every
pair above are n·P_rank/k of NCCL's S/n (:attr:`Dedup.nvl`; 1 for top-1). Groups that do not split into equal
node parts, or fit in one node, keep the direct plan with those deduplicated bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from simcluster.collectives.plan import plan_collective
from simcluster.collectives.rings import node_split
from simcluster.collectives.transfer import Transfer

if TYPE_CHECKING:
    from simcluster.topology.topology import Topology


def node_hit(experts: int, top_k: int, nodes: int, node_limit: int | None = None) -> float:
    """P: the chance that a token routed to ``top_k`` of ``experts`` (spread evenly over ``nodes``) has one on a given
    node: 1 − C(E − E/N, k)/C(E, k) = 1 − Π_{i<k} (E − E/N − i)/(E − i) (the product also for E/N not whole: an
    expert group that does not fill its nodes evenly), or min(M, N, k)/N under node-limited routing to M nodes (k
    experts reach at most k of them)."""
    if nodes <= 1:
        return 1.0
    if node_limit is not None:  # a token's k experts reach at most min(M, k) of the nodes
        return min(node_limit, nodes, top_k) / nodes
    miss = 1.0
    for i in range(min(top_k, experts)):
        miss *= max(0.0, (experts - experts / nodes - i) / (experts - i))
    return 1.0 - miss


def part_hit(experts: int, top_k: int, parts: int, groups: int | None = None, limit: int | None = None) -> float:
    """The chance that a token has one of its ``top_k`` experts on a given one of ``parts`` equal parts (nodes or
    ranks) of ``experts``. Plain top-k: :func:`node_hit`. Group-limited routing (``groups`` groups of consecutive
    experts, ``limit`` = M of them chosen; DeepSeek-V3 §2.1.2 with the groups its nodes, Megatron-Core's
    ``group_limited_topk``, whose group score sums each group's top k/M experts, so each chosen group holds about k/M
    of the token's experts): a part inside a group is reached when its group is chosen (M/G) and one of the group's
    k/M experts is on it, M/G · :func:`node_hit` (E/G, k/M, parts/G); a part of whole groups when one of them is chosen,
    :func:`node_hit` (G, M, parts) (M/N for the nodes themselves). Groups that straddle parts: plain top-k."""
    if groups is None or limit is None or groups <= 1:
        return node_hit(experts, top_k, parts)
    m = min(limit, groups, top_k)  # k experts reach at most k groups
    if parts % groups == 0:
        return m / groups * node_hit(experts // groups, max(1, top_k // m), parts // groups)
    if groups % parts == 0:
        return node_hit(groups, m, parts)
    return node_hit(experts, top_k, parts)


def rank_hit(experts: int, top_k: int, ranks: int, nodes: int = 1, node_limit: int | None = None,
             groups: int | None = None) -> float:
    """P_rank: the chance that a token routed to ``top_k`` of ``experts`` (spread evenly over ``ranks`` on ``nodes``)
    has one on a given rank (module docstring): :func:`part_hit` over the ranks, under node-limited routing with its
    ``groups`` (default: the nodes)."""
    return part_hit(experts, top_k, ranks, groups or nodes, node_limit)


@dataclass(frozen=True)
class Dedup:
    """What a deduplicating dispatch moves, as shares of NCCL's S per rank (module docstring): ``ib`` = P/k per
    remote node on the rail, ``nvl`` = n·P_rank/k of every NVLink pair's S/n."""

    ib: float
    nvl: float


def dedup_shares(experts: int, top_k: int, ranks: int, nodes: int, node_limit: int | None = None,
                 groups: int | None = None) -> Dedup:
    """The :class:`Dedup` of an expert group of ``ranks`` ranks on ``nodes`` nodes (``groups``: node-limited
    routing's expert groups, default the nodes)."""
    ib = part_hit(experts, top_k, nodes, groups or nodes, node_limit) if nodes > 1 else 0.0  # one node: no InfiniBand
    return Dedup(ib / top_k, ranks * rank_hit(experts, top_k, ranks, nodes, node_limit, groups) / top_k)


def dedup_all_to_all(group: Sequence[int], nbytes: float, topo: "Topology", share: Dedup,
                     mirror_offsets: Sequence[int] = ()) -> tuple[Transfer, ...]:
    """The dispatch (or combine) of ``nbytes`` S per rank over ``group`` with the shares ``share`` (module
    docstring)."""
    nodes = node_split(group, topo)
    g = len(nodes[0])
    if len(nodes) < 2 or any(len(m) != g for m in nodes):
        return plan_collective("all_to_all", group, nbytes * share.nvl, topo, algorithm="direct",
                               mirror_offsets=mirror_offsets)
    n = len(nodes)
    parts: list[Transfer] = []
    for members in nodes:
        if g > 1:
            parts += plan_collective("all_to_all", members, nbytes * share.nvl, topo, algorithm="direct",
                                     mirror_offsets=mirror_offsets)
    for i in range(g):
        rail = tuple(m[i] for m in nodes)
        parts += plan_collective("all_to_all", rail, n * nbytes * share.ib, topo, algorithm="direct",
                                 mirror_offsets=mirror_offsets)
    weight: dict[int, float] = {}
    for t in parts:
        for link, w in zip(t.links, t.weights):
            weight[link] = weight.get(link, 0.0) + w * t.nbytes / nbytes
    links = tuple(sorted(weight))
    return (Transfer(links, tuple(weight[l] for l in links), nbytes, max(t.latency for t in parts)),)
