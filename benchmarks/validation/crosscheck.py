"""The simulator against itself: random small layouts run two ways that must agree.

    python benchmarks/validation/crosscheck.py [--check fidelity|partial|fusion|chakra] [--layouts N] [--seed S]

Each layout is a small GPT (hidden 512, 256 tokens) on 1-3 nodes drawn over the stacks (megatron,
deepspeed, pytorch, jax), five presets (DGX A100 40/80 GB, DGX H100/H200, DGX-1, DGX-2), precisions and FP8
recipes, schedules (GPipe, 1F1B, interleaved, zero bubble, DualPipe), tensor/pipeline/data/context degrees,
ZeRO 0-3, recompute, flash attention, grouped-query attention, MoE (its dispatchers, merged 1F1B, expert biases,
group-limited routing, recomputed modules), and two of the optional
mechanisms (hybrid sharding, userbuffers, parameter-gather and gradient overlap, deferred embedding
gradients, partial recompute, distributed activations, ...). Layouts the spec refuses are skipped.

- ``fidelity``: ``auto`` against ``full`` (every GPU simulated): iteration time within 1 %, peak memory
  and bytes moved equal. ``auto`` is symmetric (one GPU per stage) on an evenly linked cluster.
- ``partial``: the same with one GPU 1.3x slower (``auto``: partial symmetry, or full where it cannot
  apply).
- ``fusion``: symmetric with fused units against unfused: every summary figure within 1e-6.
- ``chakra``: the task graph exported as Chakra traces and simulated again: the same summary
  (needs ``simcluster[chakra]``).

A crash (a deadlock, an exception) or a disagreement prints the layout's ``--set`` list, ready for
``python -m simcluster run workloads/toy-8gpu.yaml --set ...``. Session 28 found with it: DeepSpeed
ZeRO-3 and ``overlap_param_gather`` deadlocking under full fidelity, DGX-1's uneven links under
symmetric fidelity (4 %), partial symmetry over shared NICs (6-9 %); all fixed and kept as tests.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a source checkout

from simcluster.errors import SpecError  # noqa: E402
from simcluster.lowering.lower import LoweringOptions  # noqa: E402
from simcluster.run import simulate_workload  # noqa: E402
from simcluster.spec import load_workload  # noqa: E402

TOY = ROOT / "workloads" / "toy-8gpu.yaml"
PRESETS = ("dgx-a100-80gb", "dgx-a100-40gb", "dgx-h100", "dgx-h200", "dgx1-v100", "dgx2-v100")
#: Optional mechanisms: two of them drawn per layout.
KNOBS = (("parallelism.zero_shard", "2"), ("parallelism.tp_comm_overlap", "true"),
         ("parallelism.overlap_param_gather", "true"), ("parallelism.overlap_grad_reduce", "false"),
         ("parallelism.defer_embedding_wgrad_compute", "true"), ("training.recompute_num_layers", "1"),
         ("training.distribute_saved_activations", "true"), ("training.gradient_accumulation_fusion", "false"),
         ("parallelism.p2p_scatter_gather", "true"), ("parallelism.tp_grad_overlap", "false"),
         ("model.rotary_pct", "0.25"), ("model.attention_dropout", "0.0"), ("model.alibi", "true"),
         ("model.sliding_window", "128"), ("parallelism.overlap_p2p_comm", "true"), ("training.fused_kernels", "false"),
         ("model.qk_norm", "true"), ("model.post_norms", "true"))


def layout(rng: random.Random) -> list[str]:
    """One random layout as ``--set`` overrides of ``workloads/toy-8gpu.yaml`` (module docstring)."""
    p, t, d, c = rng.choice([1, 2, 4]), rng.choice([1, 2, 4, 8]), rng.choice([1, 2, 4]), rng.choice([1, 1, 2])
    schedule = rng.choice(["1f1b", "gpipe", "interleaved", "zero-bubble", "dualpipe"])
    v = 2 if schedule == "interleaved" else 1
    mb = rng.choice([1, 2])
    preset = rng.choice(PRESETS)
    precision = rng.choice(["bf16", "fp16", "fp32"] + (["fp8"] if preset in ("dgx-h100", "dgx-h200") else []))
    recipe = rng.choice(["delayed", "current", "blockwise", "te_blockwise"]) if precision == "fp8" else None
    sets = [f"parallelism.schedule={schedule}", f"parallelism.pipeline={p}", f"parallelism.tensor={t}",
            f"parallelism.data={d}", f"parallelism.context={c}", f"parallelism.virtual_stages={v}",
            f"training.micro_batch={mb}", f"training.global_batch={rng.randint(1, 3) * p * mb * d}",
            f"model.layers={p * v * rng.randint(1, 2)}", "model.hidden=512", "model.heads=8",
            f"model.kv_heads={rng.choice([8, 2, 1])}", "model.seq_len=256", "model.vocab=4096",
            f"model.mlp={rng.choice(['gelu', 'swiglu'])}", f"model.parallel_block={rng.choice(['true', 'false'])}",
            f"model.tied_embeddings={rng.choice(['true', 'false'])}",
            f"training.framework={rng.choice(['megatron', 'deepspeed', 'pytorch', 'jax'])}",
            f"training.precision={precision}", f"training.flash_attention={rng.choice(['true', 'false'])}",
            f"training.recompute={rng.choice(['none', 'selective', 'full'])}",
            f"parallelism.zero_stage={rng.choice([0, 1, 2, 3])}",
            f"parallelism.sequence_parallel={str(t > 1 and rng.random() < 0.5).lower()}",
            f"cluster.preset={preset}", f"cluster.nodes={-(-t * p * d * c // 8) + rng.choice([0, 0, 1])}"]
    if recipe:
        sets.append(f"training.fp8_recipe={recipe}")
    if rng.random() < 0.25:
        sets += ["model.moe.experts=8", "model.moe.top_k=2", f"parallelism.expert={rng.choice([1, 2])}",
                 f"parallelism.moe_dispatcher={rng.choice(['alltoall', 'deepep', 'hybridep'])}",
                 f"model.moe.expert_bias={rng.choice(['true', 'false'])}"]
        if rng.random() < 0.3:  # group-limited routing: a token's 2 experts in 1 of 4 groups
            sets += ["model.moe.router=node_limited", "model.moe.node_limit=1", "model.moe.router_groups=4"]
        if rng.random() < 0.5:  # Megatron-Core's merged 1F1B (refused where the layout cannot merge passes)
            sets += ["parallelism.moe_a2a_overlap=true", f"parallelism.delay_wgrad_compute={rng.choice(['true', 'false'])}"]
        if rng.random() < 0.4:  # Megatron-Core's recompute_modules (refused unless selective under megatron)
            choices = ['moe_act', 'layernorm', 'moe_act, layernorm, core_attn', 'mlp, moe_act', 'shared_experts']
            if "parallelism.moe_a2a_overlap=true" not in sets:  # refused beside the merged 1F1B (Megatron-Core)
                choices.append('moe, layernorm')
            mods = rng.choice(choices)
            if "shared_experts" in mods:
                sets.append("model.moe.shared_experts=1")
            sets.append(f"training.recompute_modules=[{mods}]")
    elif "training.recompute=selective" in sets and "training.framework=megatron" in sets and rng.random() < 0.4:
        # a dense model's MLP checkpointed (Megatron-Core's mlp; the RNG is drawn only where it applies)
        sets.append(f"training.recompute_modules=[{rng.choice(['mlp', 'core_attn, mlp'])}]")
    sets += [f"{key}={value}" for key, value in rng.sample(KNOBS, 2)]
    if "model.sliding_window=128" in sets and rng.random() < 0.5:  # a full-attention layer every other one
        sets.append("model.full_attention_every=2")
    return sets


def _gap(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-30)


def compare(check: str, sets: list[str]) -> str | None:
    """None when the two runs of ``sets`` agree; else what differs. SpecError: the layout is refused."""
    if check in ("fidelity", "partial"):
        extra = ["cluster.stragglers={1: 1.3}"] if check == "partial" else []
        spec = load_workload(TOY, sets + extra)
        if spec.num_gpus > 32:
            raise SpecError([])
        auto = simulate_workload(spec).summary
        full = simulate_workload(load_workload(TOY, sets + extra + ["fidelity=full"])).summary
        if _gap(auto["iteration_time_s"], full["iteration_time_s"]) > 0.01:
            return f"iteration {auto['iteration_time_s']:.6g} s (auto) vs {full['iteration_time_s']:.6g} s (full)"
        for key in ("peak_memory_bytes", "comm_bytes_per_iteration"):
            if _gap(auto[key], full[key]) > 1e-6:
                return f"{key} {auto[key]:.6g} (auto) vs {full[key]:.6g} (full)"
        return None
    spec = load_workload(TOY, sets)
    if check == "fusion":
        a = simulate_workload(spec, LoweringOptions(fuse=True)).summary
        b = simulate_workload(spec, LoweringOptions(fuse=False)).summary
    else:  # chakra
        from simcluster.chakra import export_chakra, simulate_traces

        a = simulate_workload(spec).summary
        with tempfile.TemporaryDirectory() as tmp:
            export_chakra(spec, Path(tmp) / "et", per_gpu=False)
            b = simulate_traces(Path(tmp) / "et").summary
    for key, x in a.items():
        y = b.get(key)
        if isinstance(x, float) and isinstance(y, float) and _gap(x, y) > 1e-6 and abs(x - y) > 1e-12:
            return f"{key} {x:.6g} vs {y:.6g}"
    return None


def run(check: str, layouts: int, seed: int) -> tuple[int, int, list[str]]:
    """(layouts compared, layouts refused by the spec, reports of crashes and disagreements)."""
    rng = random.Random(seed)
    compared = refused = 0
    reports: list[str] = []
    for _ in range(layouts):
        sets = layout(rng)
        try:
            why = compare(check, sets)
        except SpecError:
            refused += 1
            continue
        except Exception as exc:  # a deadlock or any error: report it with the layout
            why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            traceback.print_exc(limit=3, file=sys.stderr)
        compared += 1
        if why:
            reports.append(f"{why}\n  --set " + " --set ".join(sets))
    return compared, refused, reports


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", choices=("fidelity", "partial", "fusion", "chakra"), default="fidelity")
    ap.add_argument("--layouts", type=int, default=200, help="random layouts drawn (default 200)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    compared, refused, reports = run(args.check, args.layouts, args.seed)
    for r in reports:
        print(r)
    print(f"crosscheck {args.check}: {compared} layouts compared ({refused} refused by the spec), "
          f"{len(reports)} disagree")
    return 1 if reports else 0


if __name__ == "__main__":
    sys.exit(main())
