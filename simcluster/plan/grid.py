"""The Megatron rank grid: tensor innermost, then context, then data, then pipeline.

Megatron-Core ``parallel_state`` orders ranks so that tensor-parallel groups
are consecutive (they share a node's NVLink), then context, then data, and
pipeline stages outermost::

    rank = tp + t·(cp + c·(dp + d·pp))
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class RankGrid:
    """Tensor (t), context (c), data (d) and pipeline (p) degrees of a layout."""

    t: int
    c: int
    d: int
    p: int

    @property
    def size(self) -> int:
        return self.t * self.c * self.d * self.p

    @property
    def per_stage(self) -> int:
        """GPUs in one pipeline stage: t·c·d."""
        return self.t * self.c * self.d

    def rank(self, tp: int = 0, cp: int = 0, dp: int = 0, pp: int = 0) -> int:
        return tp + self.t * (cp + self.c * (dp + self.d * pp))

    def coords(self, rank: int) -> tuple[int, int, int, int]:
        """(tp, cp, dp, pp) of a rank."""
        tp, rest = rank % self.t, rank // self.t
        cp, rest = rest % self.c, rest // self.c
        dp, pp = rest % self.d, rest // self.d
        return tp, cp, dp, pp

    def tp_group(self, rank: int) -> tuple[int, ...]:
        base = rank - rank % self.t
        return tuple(range(base, base + self.t))

    def cp_group(self, rank: int) -> tuple[int, ...]:
        tp, _, dp, pp = self.coords(rank)
        return tuple(self.rank(tp, k, dp, pp) for k in range(self.c))

    def dp_group(self, rank: int) -> tuple[int, ...]:
        tp, cp, _, pp = self.coords(rank)
        return tuple(self.rank(tp, cp, k, pp) for k in range(self.d))

    # Hybrid sharding (ZeRO over shard groups of z consecutive data-parallel ranks, replicated across)
    def shard_group(self, rank: int, z: int) -> tuple[int, ...]:
        """The z consecutive data-parallel ranks of ``rank``'s shard group."""
        tp, cp, dp, pp = self.coords(rank)
        base = dp - dp % z
        return tuple(self.rank(tp, cp, base + k, pp) for k in range(z))

    def replica_group(self, rank: int, z: int) -> tuple[int, ...]:
        """The ranks holding the same shard as ``rank`` in the other shard groups (data index mod z)."""
        tp, cp, dp, pp = self.coords(rank)
        return tuple(self.rank(tp, cp, k, pp) for k in range(dp % z, self.d, z))

    @cache
    def shard_mirror_offsets(self, z: int) -> tuple[int, ...]:
        return tuple(self.rank(tp, cp, b * z) for b in range(self.d // z) for cp in range(self.c)
                     for tp in range(self.t) if (tp, cp, b) != (0, 0, 0))

    @cache
    def replica_mirror_offsets(self, z: int) -> tuple[int, ...]:
        return tuple(self.rank(tp, cp, k) for k in range(z) for cp in range(self.c) for tp in range(self.t)
                     if (tp, cp, k) != (0, 0, 0))

    def stage_ranks(self, pp: int) -> range:
        return range(pp * self.per_stage, (pp + 1) * self.per_stage)

    # Offsets of the identical groups that run the same collective at the same moment
    # as the group of stage ``pp``'s representative (rank symmetry).
    @cache
    def tp_mirror_offsets(self) -> tuple[int, ...]:
        return tuple(k * self.t for k in range(1, self.c * self.d))

    @cache
    def cp_mirror_offsets(self) -> tuple[int, ...]:
        return tuple(self.rank(tp, 0, dp) for dp in range(self.d) for tp in range(self.t)
                     if (tp, dp) != (0, 0))

    @cache
    def dp_mirror_offsets(self) -> tuple[int, ...]:
        return tuple(self.rank(tp, cp) for cp in range(self.c) for tp in range(self.t)
                     if (tp, cp) != (0, 0))

    @cache
    def stage_mirror_offsets(self) -> tuple[int, ...]:
        return tuple(range(1, self.per_stage))
