"""Who is simulated and which groups they talk in: the context lowering's builders share.

``full`` fidelity simulates every GPU; ``symmetric`` one representative per pipeline stage
(tp = cp = dp = 0), whose collectives are planned on the real topology for the real group,
with the identical groups that run the same collective at the same moment loading the
shared links through ``mirror_offsets`` (rank symmetry).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simcluster.collectives import plan_collective
from simcluster.collectives.transfer import Transfer
from simcluster.lowering.chain import Group
from simcluster.plan.grid import RankGrid
from simcluster.plan.moe import expert_data_group, expert_data_mirrors, expert_group, expert_mirrors
from simcluster.topology.topology import Topology


@dataclass
class Comms:
    """Members of each stage, their communication groups and the cached collective plans."""

    grid: RankGrid
    topo: Topology
    full: bool
    algorithms: dict[str, str]
    ideal_network: bool = False
    zero_shard: int = 0  # hybrid sharding: data-parallel ranks per ZeRO shard group (0: the whole group)
    expert: tuple[int, int] = (1, 1)  # mixture of experts: (expert_tensor, expert) degrees
    _plans: dict[tuple[str, tuple[int, ...], float, int], tuple[tuple[int, ...], tuple[Transfer, ...]]] = \
        field(default_factory=dict)
    _mirror_cache: dict[tuple[str, str, tuple[int, int]], tuple[int, ...]] = field(default_factory=dict)

    @property
    def multiplicity(self) -> int:
        """Real GPUs a simulated rank stands for."""
        return 1 if self.full else self.grid.per_stage

    def members(self, s: int) -> list[tuple[int, ...]]:
        """Chains of stage s: each a tuple of simulated ranks that run one unit together."""
        g = self.grid
        if not self.full:
            return [(g.rank(pp=s),)]
        return [tuple(g.rank(tp, cp, dp, s) for cp in range(g.c) for tp in range(g.t)) for dp in range(g.d)]

    def stage_members(self, s: int) -> tuple[int, ...]:
        """Every simulated rank of stage s."""
        return tuple(r for chain in self.members(s) for r in chain)

    def groups(self, kind: str, members: tuple[int, ...]) -> list[Group]:
        """The collectives of kind ``tp``/``cp``/``dp`` (or, with hybrid sharding, ``zs`` the ZeRO shard
        group and ``zr`` the replicas of a shard; ``ep`` the expert-model-parallel group that exchanges
        tokens, ``edp`` the expert-data group: :mod:`simcluster.plan.moe`) that ``members`` take part in."""
        if not self.full:
            return [((members[0],), self._group_of(kind, members[0]), self._mirrors(kind))]
        seen: dict[tuple[int, ...], None] = {}
        for r in members:
            seen.setdefault(self._group_of(kind, r))
        return [(grp, grp, ()) for grp in seen]

    def _group_of(self, kind: str, rank: int) -> tuple[int, ...]:
        g, z = self.grid, self.zero_shard or self.grid.d
        if kind == "ep":
            return expert_group(g, *self.expert, rank)
        if kind == "edp":
            return expert_data_group(g, *self.expert, rank)
        if kind == "zs":
            return g.shard_group(rank, z)
        if kind == "zr":
            return g.replica_group(rank, z)
        return {"tp": g.tp_group, "cp": g.cp_group, "dp": g.dp_group}[kind](rank)

    def _mirrors(self, kind: str) -> tuple[int, ...]:
        """Offsets of the identical groups that run the same collective at the same moment (symmetric)."""
        g, z = self.grid, self.zero_shard or self.grid.d
        if kind in ("ep", "edp"):
            return self._expert_mirrors(kind)
        if kind == "zs":
            return g.shard_mirror_offsets(z)
        if kind == "zr":
            return g.replica_mirror_offsets(z)
        if kind == "tp":
            return g.tp_mirror_offsets()
        return g.cp_mirror_offsets() if kind == "cp" else g.dp_mirror_offsets()

    def _expert_mirrors(self, kind: str) -> tuple[int, ...]:
        key = ("mirrors", kind, self.expert)  # one tuple per kind: plan caches compare it by identity
        hit = self._mirror_cache.get(key)
        if hit is None:
            fn = expert_mirrors if kind == "ep" else expert_data_mirrors
            hit = self._mirror_cache[key] = fn(self.grid, *self.expert)
        return hit

    def stage_mirrors(self) -> tuple[int, ...]:
        """Mirror offsets of point-to-point traffic between stages."""
        return () if self.full else self.grid.stage_mirror_offsets()

    def plan(self, op: str, group: tuple[int, ...], nbytes: float, mirrors: tuple[int, ...]) -> tuple[Transfer, ...]:
        """The transfers of one collective (cached; none on an ideal network or a group of one)."""
        if self.ideal_network or len(group) < 2 or nbytes <= 0 or len(set(group)) < 2:
            return ()
        key = (op, group, nbytes, id(mirrors))  # mirror tuples come cached from the grid
        hit = self._plans.get(key)
        if hit is not None and hit[0] is mirrors:
            return hit[1]
        plan = plan_collective(op, group, nbytes, self.topo, algorithm=self.algorithms.get(op, "auto"),
                               mirror_offsets=mirrors)
        self._plans[key] = (mirrors, plan)
        return plan
