"""Held-out check: Megatron-Bridge's DGX-H100 MoE pre-training rows, predicted vs published.

    PYTHONPATH=$PWD python benchmarks/validation/bridge_moe_h100.py [--json FILE]

Rows: the MoE rows of :data:`bridge_h100.ROWS` (NVIDIA-NeMo/Megatron-Bridge ``docs/performance-summary.md``
and ``docs/performance-summary-archive.md`` at 067f987). Each row's settings come from the perf recipe of
the Megatron-Bridge version its container ships (tags in :data:`bridge_recipes.TAGS`; the MoE settings in
:mod:`bridge_moe_recipes`, which names files and lines). A row is simulated only where the spec carries
its recipe's layout and the settings that shape its schedule; otherwise it is printed as skipped with the setting
it lacks. What a simulated row approximates is printed under it as caveats.

Architectures (Megatron-Bridge ``src/megatron/bridge/models/qwen/qwen_provider.py`` at v0.1.0rc3,
``Qwen3MoEModelProvider`` and its 30B_A3B / 235B_A22B subclasses; the Hugging Face config.json of
Qwen/Qwen3-30B-A3B and Qwen/Qwen3-235B-A22B): RMSNorm, SwiGLU, no biases, q/k RMSNorm
(``qk_layernorm``), head_dim (``kv_channels``) 128, vocab 151,936, untied embeddings, 128 routed experts,
top-8, no shared expert, every layer MoE; 30B-A3B: 48 layers, hidden 2048, 32 heads, 4 query groups,
expert FFN 768; 235B-A22B: 94 layers, hidden 4096, 64 heads, 4 query groups, expert FFN 1536. GPT-OSS 120B
(openai/gpt-oss-120b config.json through ``gpt_oss_bridge.py``): 36 layers, hidden 2880, 64 heads of 64, 8 query
groups, 128 experts of 2,880, top-4, vocab 201,088, a 128-token window on every layer but each second
(``window_attn_skip_freq 2``: ``model.full_attention_every: 2``), BF16.

Common settings (both tags): Megatron's distributed optimizer (``zero_stage: 1``) with
``overlap_param_gather`` and ``overlap_grad_reduce``; ``cross_entropy_fusion_impl "te"``
(``training.cross_entropy: megatron_fused``); ``moe_grouped_gemm`` (the simulator's grouped GEMM over
the local experts); no activation recompute (the perf overrides set ``recompute_granularity`` None) but where a
recipe names ``recompute_modules`` (GPT-OSS: layernorm, moe_act; DeepSeek-V3: mla_up_proj, mlp), which
``_set_recompute_overrides`` runs as selective recompute (``training.recompute_modules``);
expert tensor parallel 1; sequence parallel where TP > 1; FP8 = Transformer Engine per-tensor current
scaling (``bf16_with_fp8_current_scaling_mixed``: ``training.fp8_recipe: current``), with the recipe's
``fp8_param_gather`` (``training.fp8_param_gather``, the expert weights' all-gather included; bf16 gathers
before session 17).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a source checkout

from simcluster import api  # noqa: E402
from simcluster.spec.pipeline_layout import stage_layers_of  # noqa: E402
from simcluster.validation.stats import error_summary, held_out_parser  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bridge_h100 import ROWS, Row  # noqa: E402
from bridge_moe_recipes import ARCH, MOE_RECIPES, MoeRecipe, skip_reason  # noqa: E402
from bridge_recipes import stage_layers  # noqa: E402

#: The MoE rows of the Bridge DGX-H100 table (every row bridge_h100 skips as MoE).
MOE_ROWS: tuple[Row, ...] = tuple(r for r in ROWS if r.ep > 1 and not r.model.startswith("LLAMA"))


def recipe(row: Row) -> MoeRecipe | None:
    """The recipe read for ``row`` (None: not read, the row is skipped)."""
    return MOE_RECIPES.get((row.release, row.model))


def reason(row: Row) -> str | None:
    """Why ``row`` is not simulated (None: it is)."""
    return skip_reason(row, recipe(row))


def caveats(row: Row) -> list[str]:
    """What the simulation of ``row`` approximates (module docstring, :mod:`bridge_moe_recipes`)."""
    r = recipe(row)
    assert r is not None
    out = []
    if r.dispatcher_sms:
        out.append(f"{r.dispatcher}'s kernels hold {r.dispatcher_sms} SMs: slowed compute beside them costed as "
                   "any communication's")
    if r.capacity_factor is not None:
        out.append(f"token drop, capacity {r.capacity_factor:g} padded: every expert computes its capacity")
    if r.force_load_balancing:
        out.append("moe_router_force_load_balancing: uniform router")
    out.extend(r.notes)
    return out


def workload(row: Row) -> dict[str, Any]:
    """The workload of ``row``: the model of :data:`ARCH`, the row's layout and batch, the recipe's flags."""
    r = recipe(row)
    assert r is not None
    model = {**ARCH[row.model], "seq_len": row.seq, "mlp": "swiglu", "tied_embeddings": False}
    model["moe"] = {**model["moe"]}
    if r.capacity_factor is not None:
        model["moe"]["capacity_factor"] = r.capacity_factor
    data = row.gpus // (row.tp * row.pp * row.cp)
    p: dict[str, Any] = {"tensor": row.tp, "pipeline": row.pp, "context": row.cp, "data": data,
                         "sequence_parallel": row.tp > 1, "expert": row.ep, "expert_tensor": r.etp,
                         "zero_stage": 1, "overlap_param_gather": True, "tp_comm_overlap": r.tp_comm_overlap
                         and row.tp > 1, "moe_a2a_overlap": r.a2a_overlap, "delay_wgrad_compute": r.a2a_overlap,
                         "moe_dispatcher": r.dispatcher}
    if row.vp > 1:
        p.update(schedule="interleaved", virtual_stages=row.vp)
    if r.pipeline_layout:  # Megatron-Core's layout string, read as the simulator's stage_layers
        layers, v = stage_layers_of(r.pipeline_layout, row.pp, model["layers"], model.get("mtp_layers", 0))
        assert v == max(row.vp, 1), (r.pipeline_layout, row.vp)
    else:
        layers = stage_layers(model["layers"], row.pp * max(row.vp, 1), r.account_for_embedding_and_loss)
    if layers is not None:
        p["stage_layers"] = layers
    if not r.overlap_grad_reduce:
        p["overlap_grad_reduce"] = False
    # fp8_weight_cache: Megatron-Core's TE layers pass is_first_microbatch (as in bridge_h100)
    training = {"global_batch": row.gbs, "micro_batch": row.mbs, "precision": "fp8", "fp8_recipe": "current",
                "fp8_weight_cache": True, "fp8_param_gather": True, "recompute": "none", "framework": "megatron",
                "cross_entropy": "megatron_fused"}
    if row.precision == "BF16":  # GPT-OSS's H100 rows
        training = {k: v for k, v in training.items() if not k.startswith("fp8")} | {"precision": "bf16"}
    if r.grad_reduce_in_bf16:
        training["grad_reduce_in_bf16"] = True
    if r.recompute_modules:  # Megatron-Core's selective recompute by module (training.recompute_modules)
        training.update(recompute="selective", recompute_modules=list(r.recompute_modules))
    return {"name": f"bridge-{row.release}-{row.model}-{row.gpus}", "model": model, "training": training,
            "parallelism": p, "cluster": {"preset": "dgx-h100", "nodes": row.gpus // 8}}


def main(argv: list[str] | None = None) -> int:
    parser = held_out_parser("bridge_moe_h100.py", __doc__)
    args = parser.parse_args(argv)
    out: list[dict[str, Any]] = []
    errors: list[float] = []
    for row in MOE_ROWS:
        layout = f"TP{row.tp} PP{row.pp} CP{row.cp} VP{row.vp or '-'} EP{row.ep}"
        rec: dict[str, Any] = {**row._asdict(), "predicted": None, "error": None}
        why = reason(row)
        if why is None:
            r = recipe(row)
            assert r is not None
            summary = api.simulate(workload(row)).summary
            tok = float(summary["tokens_per_s"]) / row.gpus
            notes = caveats(row)
            if not summary["fits_in_memory"]:
                notes.append(f"simulated peak {summary['peak_memory_bytes'] / 1e9:.1f} GB exceeds the "
                             f"{summary['memory_capacity_bytes'] / 1e9:.1f} GB of an H100")
            rec.update(predicted=tok, error=tok / row.tokens_per_gpu - 1, caveats=notes, recipe=r.tag)
            errors.append(rec["error"])
            tail = f"predicted {tok:9,.0f}  {rec['error']:+7.1%}  [{r.tag}]"
        else:
            rec["skipped"] = why
            tail = f"skipped: {why}"
        out.append(rec)
        print(f"{row.release:9s} {row.model:16s} {row.gpus:5d} {row.precision:6s} {layout:24s} "
              f"published {row.tokens_per_gpu:7,.0f}  {tail}", flush=True)
        if why is None:
            print(f"{'':12s}caveats: {'; '.join(rec['caveats'])}")
    if errors:
        print(f"\nall: {error_summary(errors, absolute_median=True)} ({len(errors)} of {len(MOE_ROWS)} MoE rows "
              "simulated)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
