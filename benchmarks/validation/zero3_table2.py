"""What Narayanan et al. 2021 Table 2's six ZeRO-3 rows ask of a cost model: an additive fit, published vs simulated.

    python benchmarks/validation/zero3_table2.py [--json FILE]

The six rows (``narayanan-zero3-*`` of the ``stacks`` group: 174.6B on 384, 768, 1,536 A100 and 529.6B on 640,
1,120, 2,240, DeepSpeed ZeRO-3 without tensor or pipeline parallelism, one microbatch a step) are simulated as
the corpus runs them. For each: the published step (Table 2's TFLOP/s turned into seconds with the simulated
step's own FLOPs: T_pub = T_sim · predicted / published), the simulated step T_sim, and the part of it that is
compute (the breakdown's forward and backward, recompute and optimizer: C).

Then both sets of steps are fitted with the same additive model over the *simulated* compute::

    T = C + b · P + c · N · L

P the model's parameters in billions (what every step gathers and reduces: per-parameter costs), N the GPUs and
L the layers (what grows with the ranks: per-rank host work, ring latency). b and c are fitted minimax (the
largest relative error over the six rows as small as it gets, b, c ≥ 0, on a grid). The simulated steps are fitted
as well as an additive model allows (they are not exactly additive); the published ones say what the simulator's
two costs would have to become for all six rows to fall inside their ±10 %: the ratios b_pub / b_sim and
c_pub / c_sim. Nothing here is fitted into the simulator; the script prints figures for whoever looks for the
mechanism (docs/validation.md, "ZeRO-3 without model parallelism").

Beside them, one held-out measurement of the same DeepSpeed at small scale (:func:`single_node`): deepspeedai/DeepSpeed
issue #1174 (2021-06-19; DeepSpeed 0.3.16+47ec97eb, PyTorch 1.8.0, one AWS p4d node of 8 A100 40GB with NVSwitch):
DeepSpeedExamples' ``bing_bert`` at 5.1B parameters (hidden 2560, 64 layers, 40 heads, intermediate 10240,
vocabulary 32,003, as PR #1188 gives the configuration: micro batch 8 per GPU, fp16, no activation checkpointing)
times its forward at about 480 ms a micro step under ZeRO-3 against about 60 ms under ZeRO-2; PR #1188
(2021-06-25, same node and model) gives ZeRO-3's forward and backward as about 470 and 900 ms before it and 270
and 670 ms after it. Assumed: sequence 128 (bing_bert's first phase; the ZeRO-2 forward agrees with it, a
sequence of 512 would take four times as long), the BERT layer simulated as the GPT layer of the same shapes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a source checkout

from simcluster import api  # noqa: E402
from simcluster.costs.params import total_params  # noqa: E402
from simcluster.validation.corpus import load_group  # noqa: E402
from simcluster.validation.stats import held_out_parser  # noqa: E402

#: The corpus rows, in Table 2's order.
KEYS = ("narayanan-zero3-175b-384", "narayanan-zero3-175b-768", "narayanan-zero3-175b-1536",
        "narayanan-zero3-530b-640", "narayanan-zero3-530b-1120", "narayanan-zero3-530b-2240")
#: The fit's grid: b in seconds per billion parameters a step, c in seconds per rank and layer a step.
B_GRID = np.linspace(0.0, 0.5, 1001)
C_GRID = np.linspace(0.0, 8e-4, 801)
#: The parts of the breakdown that are the GPU computing (the rest: host work, exposed collectives).
COMPUTE_PARTS = ("compute", "recompute", "optimizer")


def simulate_rows() -> list[dict[str, Any]]:
    """Each row's published and simulated step, simulated compute, parameters (billions), GPUs and layers."""
    rows = {r.key: r for r in load_group("stacks").rows}
    out = []
    for key in KEYS:
        row = rows[key]
        spec = api.load(row.path, overrides=row.overrides)
        res = api.simulate(spec)
        s, stage = res.summary, res.breakdown.iloc[0]
        t_sim = float(s["iteration_time_s"])
        predicted = float(s[row.metric])
        out.append({"key": key, "published_s": t_sim * predicted / row.published, "simulated_s": t_sim,
                    "compute_s": float(sum(stage[p] for p in COMPUTE_PARTS)),
                    "params_b": total_params(spec.model) / 1e9, "gpus": int(s["num_gpus"]),
                    "layers": spec.model.layers, "published_tflops": row.published, "predicted_tflops": predicted})
    return out


#: The single-node layout of issue #1174 / PR #1188 (module docstring), as a workload.
SINGLE_NODE = {"name": "bing-bert-5.1b-zero3",
               "model": {"layers": 64, "hidden": 2560, "heads": 40, "seq_len": 128, "vocab": 32003},
               "training": {"global_batch": 64, "micro_batch": 8, "precision": "fp16", "optimizer": "adam",
                            "recompute": "none", "flash_attention": False, "framework": "deepspeed"},
               "parallelism": {"data": 8, "zero_stage": 3},
               "cluster": {"preset": "dgx-a100-40gb", "nodes": 1}}
#: Measured milliseconds a micro step (issue #1174, PR #1188): (stage, phase) -> (DeepSpeed 0.3.16, after #1188).
SINGLE_NODE_MEASURED = {(2, "forward"): (60.0, None), (3, "forward"): (470.0, 270.0),
                        (3, "backward"): (900.0, 670.0)}


def single_node() -> list[dict[str, Any]]:
    """Simulated forward and backward of one micro step (ms) of the single-node layout under ZeRO-2 and ZeRO-3,
    beside the measured ones. Forward: the first task to the last forward task's end; backward: the first
    backward task to the last gradient reduction's end (DeepSpeed's timers synchronise the device around both)."""
    out = []
    for stage in (2, 3):
        res = api.simulate(api.load(SINGLE_NODE, overrides=[f"parallelism.zero_stage={stage}"]))
        tl = res.timeline
        tl = tl[tl["rank"] == 0]
        fwd = tl[tl["phase"] == "forward"]
        bwd = tl[tl["phase"] == "backward"]
        red = tl[tl["phase"] == "dp_comm"]
        spans = {"forward": float(fwd["end_s"].max() - tl["start_s"].min()),
                 "backward": float(max(bwd["end_s"].max(), red["end_s"].max()) - bwd["start_s"].min())}
        for phase, seconds in spans.items():
            if (stage, phase) in SINGLE_NODE_MEASURED:
                before, after = SINGLE_NODE_MEASURED[(stage, phase)]
                out.append({"zero_stage": stage, "phase": phase, "simulated_ms": seconds * 1e3,
                            "measured_ms": before, "measured_after_pr1188_ms": after})
    return out


def fit(steps: Sequence[float], compute: Sequence[float], params_b: Sequence[float],
        rank_layers: Sequence[float]) -> tuple[float, float, float]:
    """(b, c, largest relative error) of the minimax fit steps ≈ compute + b·params_b + c·rank_layers on the grid."""
    t, comp = np.asarray(steps, float), np.asarray(compute, float)
    p, r = np.asarray(params_b, float), np.asarray(rank_layers, float)
    model = comp[None, None, :] + B_GRID[:, None, None] * p + C_GRID[None, :, None] * r
    worst = np.abs(model / t - 1.0).max(axis=2)
    i, j = np.unravel_index(int(np.argmin(worst)), worst.shape)
    return float(B_GRID[i]), float(C_GRID[j]), float(worst[i, j])


def analyse(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Both fits and each row's residual under them."""
    comp = [r["compute_s"] for r in rows]
    p = [r["params_b"] for r in rows]
    rl = [r["gpus"] * r["layers"] for r in rows]
    fits = {}
    for name in ("published", "simulated"):
        steps = [r[f"{name}_s"] for r in rows]
        b, c, worst = fit(steps, comp, p, rl)
        fits[name] = {"b_s_per_billion": b, "c_s_per_rank_layer": c, "worst": worst,
                      "residuals": [(ci + b * pi + c * ri) / t - 1 for ci, pi, ri, t in zip(comp, p, rl, steps)]}
    pub, sim = fits["published"], fits["simulated"]
    return {"rows": rows, "fits": fits,
            "b_ratio": pub["b_s_per_billion"] / sim["b_s_per_billion"] if sim["b_s_per_billion"] else float("inf"),
            "c_ratio": pub["c_s_per_rank_layer"] / sim["c_s_per_rank_layer"] if sim["c_s_per_rank_layer"] else float("inf")}


def report(a: dict[str, Any]) -> str:
    """The rows and the two fits, as text."""
    lines = ["Narayanan et al. 2021 Table 2, ZeRO-3 rows: step time (s), published vs simulated",
             f"{'row':28s} {'GPUs':>5s} {'published':>9s} {'simulated':>9s} {'compute':>8s} "
             f"{'pub - C':>8s} {'sim - C':>8s} {'error':>7s}"]
    for r in a["rows"]:
        lines.append(f"{r['key']:28s} {r['gpus']:5d} {r['published_s']:9.1f} {r['simulated_s']:9.1f} "
                     f"{r['compute_s']:8.1f} {r['published_s'] - r['compute_s']:8.1f} "
                     f"{r['simulated_s'] - r['compute_s']:8.1f} {r['predicted_tflops'] / r['published_tflops'] - 1:+7.1%}")
    lines.append("T = C + b·P + c·N·L, minimax over the six rows (P in billions, C the simulated compute):")
    for name, f in a["fits"].items():
        res = " ".join(f"{x:+.1%}" for x in f["residuals"])
        edge = (" — at the grid's upper edge: widen B_GRID / C_GRID" if f["b_s_per_billion"] >= B_GRID[-1]
                or f["c_s_per_rank_layer"] >= C_GRID[-1] else "")
        lines.append(f"  {name:9s} b = {f['b_s_per_billion']:.3f} s per billion parameters, "
                     f"c = {f['c_s_per_rank_layer'] * 1e6:.0f} µs per rank and layer, worst {f['worst']:.1%} ({res}){edge}")
    lines.append(f"  published / simulated: per-parameter cost x{a['b_ratio']:.2f}, per-rank cost x{a['c_ratio']:.2f}")
    if a.get("single_node"):
        lines.append("Held out: bing_bert 5.1B on one node of 8 A100 (DeepSpeed issue #1174, PR #1188), ms a micro step")
        for r in a["single_node"]:
            after = r["measured_after_pr1188_ms"]
            lines.append(f"  ZeRO-{r['zero_stage']} {r['phase']:8s} measured {r['measured_ms']:6.0f}"
                         + (f" ({after:.0f} after #1188)" if after else "")
                         + f", simulated {r['simulated_ms']:6.1f} ({r['simulated_ms'] / r['measured_ms']:.2f}x)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = held_out_parser("zero3_table2.py", __doc__).parse_args(argv)
    a = analyse(simulate_rows())
    a["single_node"] = single_node()
    print(report(a))
    if args.json:
        args.json.write_text(json.dumps(a, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
