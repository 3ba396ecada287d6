"""Held-out check: one Megatron-Core MoE layer on eight H100, forward and backward, predicted vs NVIDIA's CI baseline.

    PYTHONPATH=$PWD python benchmarks/validation/mcore_moe_layer.py [--json FILE]

Source: NVIDIA/Megatron-LM ``tests/functional_tests/test_cases/common/moe_perf/`` (commit cf39a4dd, 2025-12-17,
"Add moe layer perf UT", #2673; unchanged at d98e8a64): ``baseline.json`` holds each case's mean forward and
backward milliseconds on H100 (``gpu_platform "H100"``, the harness skips other cards), ``test_cases.py`` the
cases, ``__main__.py`` the harness. One ``MoELayer`` (no attention, no layer norm: the Transformer Engine
``get_gpt_layer_with_transformer_engine_submodules(moe_grouped_gemm=True).mlp``), TP 1, EP 8 on one node, an
input of [4096, 1, h] bf16, ``moe_router_force_load_balancing`` (uniform routing), ``moe_permute_fusion``,
``moe_router_fusion``, aux-loss load balancing, no ``gated_linear_unit`` (TransformerConfig's default: a GeLU
expert MLP, two matrices). Timed with CUDA events around ``layer(x)`` and ``output.backward(dy)``, mean of 20
iterations after 5 warm-ups, each after a barrier and a long fp32 GEMM that hides the launch of the router.
FP8 cases: Transformer Engine's blockwise recipe (``Float8BlockScaling``, e4m3 / hybrid: ``fp8_recipe te_blockwise``).

Cases: Mixtral proxy (h 4096, expert FFN 14,336, 8 experts, top-2: one expert per rank) and DeepSeek proxy
(h 7168, expert FFN 2048, 32 experts, top-8, sigmoid scores, group-limited routing over 8 groups, top-4 groups:
four experts per rank, a group per rank; its ``moe_shared_expert_intermediate_size`` is not passed to the config,
so no shared expert), each with the ``alltoall`` dispatcher and the flex dispatcher's DeepEP and HybridEP
backends, bf16 and FP8.

The prediction: the workload below (one layer of the proxy with a small attention in front, 8 GPUs of a DGX H100,
EP 8, two microbatches), simulated; the MoE layer's forward is the span from its first step before the dispatch to
the end of its last after the combine on rank 0 for microbatch 0 (its backward likewise), less the pre-MLP norm and
the residual add those steps hold (the harness's ``MoELayer`` runs neither), so the attention and the data-parallel
reduction of the last microbatch are outside it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a source checkout

from simcluster import api  # noqa: E402
from simcluster.plan.costing import block_cost  # noqa: E402
from simcluster.plan.plan import build_plan  # noqa: E402
from simcluster.workload.moe import moe_ops  # noqa: E402
from simcluster.validation.stats import error_summary, held_out_parser  # noqa: E402


class Case(NamedTuple):
    name: str
    forward_ms: float
    backward_ms: float


#: baseline.json at cf39a4dd: (case, forward_ms, backward_ms), the means of 20 timed iterations on H100.
CASES: tuple[Case, ...] = (
    Case("deepseek_a2a_tp1ep8_bf16", 7.119169592857361, 10.482670497894286),
    Case("deepseek_a2a_tp1ep8_fp8", 7.609272027015686, 10.126460886001587),
    Case("deepseek_deepep_tp1ep8_bf16", 5.681718397140503, 9.055137538909912),
    Case("deepseek_deepep_tp1ep8_fp8", 6.034772801399231, 8.60211353302002),
    Case("deepseek_hybridep_tp1ep8_bf16", 5.390828824043274, 8.795001602172851),
    Case("deepseek_hybridep_tp1ep8_fp8", 5.142886424064637, 7.6874864339828495),
    Case("mixtral_a2a_tp1ep8_bf16", 4.32688798904419, 7.684332823753357),
    Case("mixtral_a2a_tp1ep8_fp8", 3.7876319885253906, 6.618246412277221),
    Case("mixtral_deepep_tp1ep8_bf16", 4.635550403594971, 7.854356813430786),
    Case("mixtral_deepep_tp1ep8_fp8", 4.101150441169739, 6.82720000743866),
    Case("mixtral_hybridep_tp1ep8_bf16", 4.342604804039001, 7.740782427787781),
    Case("mixtral_hybridep_tp1ep8_fp8", 3.7007392168045046, 6.57167682647705),
)

#: test_cases.py's MIXTRAL_PROXY and DEEPSEEK_PROXY (seq 4096, micro-batch 1, 8 heads).
PROXIES: dict[str, dict[str, Any]] = {
    "mixtral": {"hidden": 4096, "ffn": 14336, "experts": 8, "top_k": 2},
    "deepseek": {"hidden": 7168, "ffn": 2048, "experts": 32, "top_k": 8,
                 "router": "node_limited", "node_limit": 4, "router_groups": 8},  # 4 of 8 groups
}
DISPATCHERS = {"a2a": "alltoall", "deepep": "deepep", "hybridep": "hybridep"}


def caveats(case: Case) -> list[str]:
    """What the simulation of ``case`` approximates."""
    out = ["aux-loss, router fusion and score function costed as the simulator's router ops"]
    if case.name.startswith("deepseek"):
        out.append("sigmoid scores and the fp32 router GEMM costed as the bf16 softmax router")
    return out


def workload(case: Case) -> dict[str, Any]:
    """The simulated workload of ``case`` (module docstring)."""
    proxy, disp, _, prec = case.name.split("_")
    m = PROXIES[proxy]
    # TransformerConfig's defaults: bias_activation_fusion (and Megatron's other fusions) off
    training: dict[str, Any] = {"global_batch": 16, "micro_batch": 1, "precision": "bf16", "recompute": "none",
                                "framework": "megatron", "fused_kernels": False}
    if prec == "fp8":
        training.update(precision="fp8", fp8_recipe="te_blockwise")  # TE's Float8BlockScaling
    return {"name": f"mcore-moe-{case.name}",
            "model": {"layers": 1, "hidden": m["hidden"], "heads": 8, "ffn_hidden": m["ffn"], "vocab": 32000,
                      "seq_len": 4096, "mlp": "gelu",
                      "moe": {**{k: v for k, v in m.items() if k not in ("hidden", "ffn")},
                              "expert_ffn_hidden": m["ffn"]}},
            "training": training,
            "parallelism": {"tensor": 1, "pipeline": 1, "data": 8, "expert": 8, "zero_stage": 0,
                            "moe_dispatcher": DISPATCHERS[disp]},
            "cluster": {"preset": "dgx-h100", "nodes": 1}}


#: The MoE layer's steps in each pass (plan.moe: pre, dispatch, experts, imbalance, combine, post).
STEPS = {"fwd": ("fwd.moe_in", "fwd.experts", "fwd.imbalance", "fwd.moe_out", "ep.all_to_all fwd."),
         "bwd": ("bwd.moe_in", "bwd.experts", "bwd.imbalance", "bwd.moe_out", "ep.all_to_all bwd.")}


def outside(spec: Any) -> tuple[float, float]:
    """(forward, backward) seconds of the pre-MLP norm and the residual add, which the simulator's MoE steps hold and
    the harness's ``MoELayer`` does not run (Megatron-Core's ``TransformerLayer`` runs them around it)."""
    plan = build_plan(spec)
    moe = moe_ops(spec.model, spec.training)
    ops = [op for op in (*moe.pre, *moe.post) if op.name in ("ln2", "residual2")]
    cost = block_cost(ops, plan.cm, 1, 1, False, spec.training.flash_attention)
    return cost.fwd_s, cost.bwd_s


def layer_times(case: Case) -> tuple[float, float, dict[str, float]]:
    """Simulated (forward, backward) seconds of the MoE layer (its steps' span less :func:`outside`) and each of its
    steps' seconds (both passes)."""
    spec = api.load(workload(case))
    tl = api.simulate(spec).timeline
    rows = tl[(tl["rank"] == 0) & (tl["layer"] == 0) & (tl["microbatch"] == 0)]
    names = rows["task"].str.replace(r" L-?\d+$", "", regex=True)
    spans, parts, off = [], {}, outside(spec)
    for kind in ("fwd", "bwd"):
        sel = rows[names.map(lambda n, k=kind: any(n.startswith(p) for p in STEPS[k]))]
        spans.append(float(sel["end_s"].max() - sel["start_s"].min()) - off[kind == "bwd"])
        for n, s, e in zip(names[sel.index], sel["start_s"], sel["end_s"]):
            parts[n] = parts.get(n, 0.0) + float(e - s)
    return spans[0], spans[1], parts


def main(argv: list[str] | None = None) -> int:
    parser = held_out_parser("mcore_moe_layer.py", __doc__)
    args = parser.parse_args(argv)
    out: list[dict[str, Any]] = []
    errors: list[float] = []
    for case in CASES:
        fwd, bwd, parts = layer_times(case)
        ef, eb = fwd * 1e3 / case.forward_ms - 1, bwd * 1e3 / case.backward_ms - 1
        errors += [ef, eb]
        out.append({**case._asdict(), "predicted_forward_ms": fwd * 1e3, "predicted_backward_ms": bwd * 1e3,
                    "forward_error": ef, "backward_error": eb, "caveats": caveats(case),
                    "steps_ms": {k: v * 1e3 for k, v in sorted(parts.items())}})
        print(f"{case.name:30s} forward {fwd * 1e3:6.3f} ms vs {case.forward_ms:6.3f} ({ef:+6.1%})   "
              f"backward {bwd * 1e3:6.3f} ms vs {case.backward_ms:6.3f} ({eb:+6.1%})", flush=True)
    print(f"\nall (forward and backward of {len(CASES)} cases; time, + is slow): "
          f"{error_summary(errors, absolute_median=True)}")
    for tag in ("bf16", "fp8"):
        sel = [e for c, pair in zip(CASES, zip(errors[::2], errors[1::2])) if c.name.endswith(tag) for e in pair]
        print(f"  {tag}: {error_summary(sel)}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
