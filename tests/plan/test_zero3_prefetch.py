"""ZeRO-3's prefetched gathers: where lowering issues them, and the window the search screen hides them in
(simcluster.plan.zero3.prefetch_window)."""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.plan import build_plan
from simcluster.plan.steps import layer_steps
from simcluster.plan.zero3 import prefetch_window
from simcluster.run import simulate_workload

PREFETCHED = ("parallelism.data=8", "parallelism.zero_stage=3", "model.hidden=4096", "model.heads=32")


def _blocks(steps):
    return [st.name for st in steps if st.what == "compute" and st.block]


@pytest.mark.parametrize("kind, recompute, after", [("F", "none", "fwd.attn"), ("B", "none", "bwd.mlp"),
                                                     ("B", "full", "bwd.mlp")])
def test_window_starts_after_the_second_to_last_block(tmp_path, kind, recompute, after):
    """The window is what follows the layer's second-to-last block: its last block and the collectives around it."""
    plan = build_plan(make_spec(tmp_path, *PREFETCHED, f"training.recompute={recompute}"))
    steps = layer_steps(kind, plan.blocks, plan.shape)
    window = prefetch_window(steps)
    names = [st.name for st in steps]
    assert window == steps[names.index(after) + 1:]
    assert _blocks(window) == _blocks(steps)[-1:]


def test_one_block_layer_hides_the_gather_behind_the_whole_layer(tmp_path):
    """A parallel block (attention and MLP in one block) has no second block: the window is the layer."""
    plan = build_plan(make_spec(tmp_path, *PREFETCHED, "model.parallel_block=true"))
    steps = layer_steps("F", plan.blocks, plan.shape)
    assert len(_blocks(steps)) == 1 and prefetch_window(steps) == steps


def test_lowering_issues_each_forward_gather_when_the_window_opens(tmp_path):
    """On the simulated timeline each forward gather after a unit's first starts when the previous layer's
    second-to-last block (the attention) ends, or when the data-parallel stream frees, whichever is later."""
    tl = simulate_workload(make_spec(tmp_path, *PREFETCHED, "training.global_batch=16")).result.timeline
    t = tl[(tl["rank"] == 0) & (tl["microbatch"] == 0)]
    attn = t[t["task"].str.startswith("fwd.attn")].set_index("layer")["end_s"]
    dp = t[t["stream"] == "dp"].sort_values("start_s")
    checked = 0
    forward = dp[dp["task"].str.startswith("zero.all_gather")].drop_duplicates("layer", keep="first")
    for _, g in forward.iterrows():
        if g["layer"] < 1:
            continue
        free = dp[dp["end_s"] <= g["start_s"] + 1e-12]["end_s"].max()
        assert g["start_s"] == pytest.approx(max(attn[g["layer"] - 1], free), abs=1e-9)
        checked += 1
    assert checked == 7
