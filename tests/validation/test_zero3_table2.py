"""The additive fit of Table 2's ZeRO-3 rows (``benchmarks/validation/zero3_table2.py``, about 5 s): the minimax fit
recovers known costs, the script reports the six corpus rows with the published figures the corpus holds, and the
single-node held-out measurement of the same DeepSpeed (issue #1174, PR #1188)."""

from __future__ import annotations

import json

import pytest

from helpers_bench import load_benchmark
from simcluster.validation.corpus import load_group

Z3 = load_benchmark("zero3_table2")


def test_fit_recovers_known_costs():
    compute = [57.0, 30.0, 17.0, 164.0, 87.0, 49.0]
    params = [174.6] * 3 + [529.6] * 3
    rank_layers = [384 * 96, 768 * 96, 1536 * 96, 640 * 105, 1120 * 105, 2240 * 105]
    b, c = 0.05, 3.0e-4  # both on the grid
    steps = [t + b * p + c * r for t, p, r in zip(compute, params, rank_layers)]
    fb, fc, worst = Z3.fit(steps, compute, params, rank_layers)
    assert fb == pytest.approx(b, abs=1e-9) and fc == pytest.approx(c, abs=1e-9) and worst < 1e-9


def test_fit_is_minimax():
    """Moving either cost off the fitted point (an interior c, b at its bound 0) cannot lower the largest error."""
    compute, params, ranks = [10.0, 20.0, 30.0], [1.0, 2.0, 5.0], [1e4, 3e4, 2e4]
    steps = [12.0, 25.0, 33.0]
    b, c, worst = Z3.fit(steps, compute, params, ranks)
    for db, dc in ((1e-3, 0), (-1e-3, 0), (0, 1e-6), (0, -1e-6)):
        bb, cc = max(b + db, 0.0), max(c + dc, 0.0)
        other = max(abs((t + bb * p + cc * r) / s - 1) for t, p, r, s in zip(compute, params, ranks, steps))
        assert other >= worst - 1e-12


def test_the_script_reports_the_six_rows(tmp_path, capsys):
    out = tmp_path / "z3.json"
    assert Z3.main(["--json", str(out)]) == 0
    a = json.loads(out.read_text())
    corpus = {r.key: r.published for r in load_group("stacks").rows}
    assert [r["key"] for r in a["rows"]] == list(Z3.KEYS)
    for r in a["rows"]:
        assert r["published_tflops"] == corpus[r["key"]]
        assert 0 < r["compute_s"] < r["simulated_s"]
        # the published step is the simulated one scaled by the TFLOP/s ratio (same FLOPs a step)
        assert r["published_s"] == pytest.approx(r["simulated_s"] * r["predicted_tflops"] / r["published_tflops"])
    # the simulator's ZeRO-3 step is close to additive in compute, per-parameter and per-rank costs
    assert a["fits"]["simulated"]["worst"] < 0.02
    assert "per-parameter cost x" in capsys.readouterr().out


def test_single_node_held_out_check():
    """Issue #1174's single-node bing_bert: ZeRO-2's forward is compute and agrees with the measured 60 ms; ZeRO-3's
    rows carry both measured figures (before and after PR #1188) and a simulated span inside the micro step."""
    rows = {(r["zero_stage"], r["phase"]): r for r in Z3.single_node()}
    assert set(rows) == set(Z3.SINGLE_NODE_MEASURED)
    assert rows[(2, "forward")]["simulated_ms"] == pytest.approx(60.0, rel=0.15)
    for key in ((3, "forward"), (3, "backward")):
        r = rows[key]
        assert (r["measured_ms"], r["measured_after_pr1188_ms"]) == Z3.SINGLE_NODE_MEASURED[key]
        # ZeRO-3 gathers every weight before its module runs: never faster than ZeRO-2's forward
        assert rows[(2, "forward")]["simulated_ms"] < r["simulated_ms"]
