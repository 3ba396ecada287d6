"""Layer partitioning and the Megatron rank grid."""

import pytest
from hypothesis import given, strategies as st

from simcluster.plan.grid import RankGrid
from simcluster.plan.partition import partition_layers


@given(st.integers(1, 200), st.integers(1, 16), st.integers(1, 4))
def test_partition_covers_layers_in_order_and_evenly(layers, p, v):
    if p * v > layers:
        return
    chunks = partition_layers(layers, p, v)
    assert [l for c in chunks for l in c] == list(range(layers))
    sizes = [len(c) for c in chunks]
    assert max(sizes) - min(sizes) <= 1


def test_uneven_split_puts_extra_layers_in_the_middle():
    sizes = [len(c) for c in partition_layers(70, 12)]  # BLOOM: 70 layers on 12 stages
    assert sum(sizes) == 70 and sizes[0] == 5 and sizes[-1] == 5 and max(sizes) == 6


def test_explicit_stage_layers():
    assert [len(c) for c in partition_layers(10, 3, stage_layers=[2, 5, 3])] == [2, 5, 3]
    with pytest.raises(ValueError):
        partition_layers(10, 3, stage_layers=[2, 5, 4])


def test_grid_tensor_innermost_then_context_data_pipeline():
    g = RankGrid(t=8, c=2, d=4, p=3)
    assert g.size == 192
    assert g.rank(tp=1) == 1 and g.rank(cp=1) == 8 and g.rank(dp=1) == 16 and g.rank(pp=1) == 64
    for r in range(g.size):
        assert g.rank(*g.coords(r)) == r
    assert g.tp_group(70) == tuple(range(64, 72))
    assert g.dp_group(g.rank(3, 1, 2, 1)) == tuple(g.rank(3, 1, k, 1) for k in range(4))
    # mirrors of the representative's groups cover the stage exactly once
    tp = {r + o for o in (0,) + g.tp_mirror_offsets() for r in g.tp_group(0)}
    dp = {r + o for o in (0,) + g.dp_mirror_offsets() for r in g.dp_group(0)}
    assert tp == dp == set(range(g.per_stage))
