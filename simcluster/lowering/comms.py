"""Who is simulated and which groups they talk in: the context lowering's builders share.

``full`` fidelity simulates every GPU; ``symmetric`` one representative per pipeline stage
(tp = cp = dp = 0), whose collectives are planned on the real topology for the real group,
with the identical groups that run the same collective at the same moment loading the
shared links through ``mirror_offsets`` (rank symmetry).

``partial`` (:mod:`simcluster.lowering.partial`): the data-parallel replicas an asymmetry
touches (``explicit``: their data-parallel indices) are simulated GPU by GPU, as in full
fidelity; the others by one representative per stage, replica ``rep_dp`` (the first
untouched one). The representative's tensor- and context-parallel collectives and its
pipeline sends mirror only the untouched replicas' groups (the explicit ones run their
own). A data-parallel collective joins every replica, so it is one task per stage that
the representative and every explicit rank of the stage take part in (it starts when
the last of them is ready: the data-parallel all-reduce waits for the slowest replica),
planned as in symmetric fidelity on the real group with every (tensor, context) mirror;
with degraded links its phases load every group's own links (:meth:`Comms.plan`), so a
degraded link on a mirror group's route holds the whole collective back, as the slowest
group holds back the iteration in full fidelity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simcluster.collectives import plan_collective
from simcluster.collectives.dedup import Dedup, dedup_all_to_all
from simcluster.collectives.plan import auto_options
from simcluster.collectives.transfer import Transfer, uncontended_time
from simcluster.lowering.chain import Group
from simcluster.plan.grid import RankGrid
from simcluster.plan.moe import expert_data_group, expert_data_mirrors, expert_group, expert_mirrors
from simcluster.topology.topology import Topology

DP_KINDS = ("dp", "zs", "zr")  # collectives that span data-parallel replicas


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
    explicit: frozenset[int] = frozenset()  # partial: data-parallel indices simulated GPU by GPU
    spread: bool = False  # partial: data-parallel collectives load every group's own links
    a2a_share: Dedup | None = None  # deduplicating MoE dispatcher's shares of S (simcluster.collectives.dedup)
    _plans: dict[tuple[str, tuple[int, ...], float, int], tuple[tuple[int, ...], tuple[Transfer, ...]]] = \
        field(default_factory=dict)
    _mirror_cache: dict[tuple[str, str, tuple[int, int]], tuple[int, ...]] = field(default_factory=dict)
    _partial_mirrors: dict[str, tuple[int, ...]] = field(default_factory=dict)
    _spread_ids: set[int] = field(default_factory=set)
    _groups: dict[tuple[str, tuple[int, ...]], list[Group]] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        return not self.full and bool(self.explicit)

    @property
    def rep_dp(self) -> int:
        """Data-parallel index of the representative replica (the first no asymmetry touches)."""
        return next(k for k in range(self.grid.d) if k not in self.explicit) if self.explicit else 0

    @property
    def multiplicity(self) -> int:
        """Real GPUs a representative stands for (1 in full fidelity)."""
        g = self.grid
        return 1 if self.full else g.t * g.c * (g.d - len(self.explicit))

    def multiplicity_of(self, rank: int) -> int:
        """Real GPUs the simulated ``rank`` stands for."""
        return 1 if self.full or self.grid.coords(rank)[2] in self.explicit else self.multiplicity

    def members(self, s: int) -> list[tuple[int, ...]]:
        """Chains of stage s: each a tuple of simulated ranks that run one unit together."""
        g = self.grid

        def chain(dp: int) -> tuple[int, ...]:
            return tuple(g.rank(tp, cp, dp, s) for cp in range(g.c) for tp in range(g.t))

        if self.full:
            return [chain(dp) for dp in range(g.d)]
        rep: tuple[int, ...] = (g.rank(dp=self.rep_dp, pp=s),)
        return [rep] + [chain(dp) for dp in sorted(self.explicit)]

    def stage_members(self, s: int) -> tuple[int, ...]:
        """Every simulated rank of stage s."""
        return tuple(r for chain in self.members(s) for r in chain)

    def _is_rep(self, rank: int) -> bool:
        return not self.full and self.grid.coords(rank)[2] not in self.explicit

    def groups(self, kind: str, members: tuple[int, ...]) -> list[Group]:
        """The collectives of kind ``tp``/``cp``/``dp`` (or, with hybrid sharding, ``zs`` the ZeRO shard
        group and ``zr`` the replicas of a shard; ``ep`` the expert-model-parallel group that exchanges
        tokens, ``edp`` the expert-data group: :mod:`simcluster.plan.moe`) that ``members`` take part in
        (cached: a chain asks once per unit)."""
        key = (kind, members)
        hit = self._groups.get(key)
        if hit is None:
            hit = self._groups[key] = self._find_groups(kind, members)
        return hit

    def _find_groups(self, kind: str, members: tuple[int, ...]) -> list[Group]:
        if not self.full and not self.explicit:
            return [((members[0],), self._group_of(kind, members[0]), self._mirrors(kind))]
        if self.partial and kind in DP_KINDS:
            stage = self.grid.coords(members[0])[3]
            rep = self.grid.rank(dp=self.rep_dp, pp=stage)
            return [(self.stage_members(stage), self._group_of(kind, rep), self._mirrors(kind))]
        seen: dict[tuple[int, ...], None] = {}
        out: list[Group] = []
        for r in members:
            if self._is_rep(r):
                out.append(((r,), self._group_of(kind, r), self._mirrors(kind)))
            else:
                seen.setdefault(self._group_of(kind, r))
        return out + [(grp, grp, ()) for grp in seen]

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
        if self.partial:
            return self._partial_mirror(kind)
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

    def _partial_mirror(self, kind: str) -> tuple[int, ...]:
        """Partial: mirrors of the representative's groups among the untouched replicas only (tp, cp,
        pipeline sends); a data-parallel group's mirrors are every other (tensor, context) index."""
        hit = self._partial_mirrors.get(kind)
        if hit is not None:
            return hit
        g, base = self.grid, self.grid.rank(dp=self.rep_dp)
        keep = [dp for dp in range(g.d) if dp not in self.explicit]
        if kind == "tp":
            heads = [g.rank(0, cp, dp) for dp in keep for cp in range(g.c)]
        elif kind == "cp":
            heads = [g.rank(tp, 0, dp) for dp in keep for tp in range(g.t)]
        elif kind == "stage":
            heads = [g.rank(tp, cp, dp) for dp in keep for cp in range(g.c) for tp in range(g.t)]
        else:  # the data-parallel kinds span every replica: their mirrors are the (tp, cp) offsets
            heads = [base + g.rank(tp, cp) for cp in range(g.c) for tp in range(g.t)]
        out = tuple(h - base for h in heads if h != base)
        if self.spread and kind in DP_KINDS and out:
            self._spread_ids.add(id(out))
        self._partial_mirrors[kind] = out
        return out

    def stage_mirrors(self, rank: int) -> tuple[int, ...]:
        """Mirror offsets of point-to-point traffic between stages from simulated ``rank``."""
        if self.full or not self._is_rep(rank):
            return ()
        return self._partial_mirror("stage") if self.partial else self.grid.stage_mirror_offsets()

    def plan(self, op: str, group: tuple[int, ...], nbytes: float, mirrors: tuple[int, ...]) -> tuple[Transfer, ...]:
        """The transfers of one collective (cached; none on an ideal network or a group of one)."""
        if self.ideal_network or len(group) < 2 or nbytes <= 0 or len(set(group)) < 2:
            return ()
        key = (op, group, nbytes, id(mirrors))  # mirror tuples come cached from the grid
        hit = self._plans.get(key)
        if hit is not None and hit[0] is mirrors:
            return hit[1]
        if op == "all_to_all" and self.a2a_share is not None:  # the MoE dispatch of DeepEP / HybridEP
            plan = dedup_all_to_all(group, nbytes, self.topo, self.a2a_share, mirrors)
        elif id(mirrors) in self._spread_ids:
            plan = self._spread_plan(op, group, nbytes, mirrors)
        else:
            plan = plan_collective(op, group, nbytes, self.topo, algorithm=self.algorithms.get(op, "auto"),
                                   mirror_offsets=mirrors)
        self._plans[key] = (mirrors, plan)
        return plan

    def _spread_plan(self, op: str, group: tuple[int, ...], nbytes: float,
                     mirrors: tuple[int, ...]) -> tuple[Transfer, ...]:
        """``group`` and its mirrors each planned on their own links with one algorithm, phase by
        phase summed into one transfer: per link the hops of every group crossing it, the largest
        latency (every group runs the collective at once). With ``auto`` the algorithm is the one
        whose summed plan takes least time alone (:func:`uncontended_time`): where a degraded link
        makes one group's own choice differ (full fidelity plans each group apart), the common
        algorithm that lets that group finish soonest is the one the iteration waits for."""
        algo = self.algorithms.get(op, "auto")
        names = list(dict.fromkeys(o[0] for o in auto_options(op, group, self.topo, mirrors))) if algo == "auto" else [algo]
        best: tuple[float, tuple[Transfer, ...]] | None = None
        for name in names:
            merged = self._merged(op, group, nbytes, mirrors, name)
            if merged is None:
                continue
            t = uncontended_time(merged, self.topo.link_bandwidth)
            if best is None or t < best[0]:
                best = (t, merged)
        if best is None:  # no algorithm gives every group the same phases: the mirrored plan
            return plan_collective(op, group, nbytes, self.topo, algorithm=algo, mirror_offsets=mirrors)
        return best[1]

    def _merged(self, op: str, group: tuple[int, ...], nbytes: float, mirrors: tuple[int, ...],
                algo: str) -> tuple[Transfer, ...] | None:
        """Every group's plan with ``algo``, phase by phase summed (None: phases differ)."""
        try:
            plans = [plan_collective(op, tuple(r + off for r in group), nbytes, self.topo, algorithm=algo)
                     for off in (0, *mirrors)]
        except ValueError:
            return None
        if len({len(p) for p in plans}) != 1:
            return None
        out = []
        for i, tr in enumerate(plans[0]):
            loads: dict[int, float] = {}
            for p in plans:
                for link, w in zip(p[i].links, p[i].weights):
                    loads[link] = loads.get(link, 0.0) + w
            links = tuple(sorted(loads))
            out.append(Transfer(links, tuple(loads[l] for l in links), tr.nbytes, max(p[i].latency for p in plans)))
        return tuple(out)
