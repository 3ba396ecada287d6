"""Megatron-Core's mixture-of-experts, latent-attention, multi-token-prediction and FP8 arguments as workload keys
(``simcluster import-megatron``; the dense arguments: :mod:`simcluster.spec.megatron`).

=========================================================  ===========================================
Megatron-LM (``megatron/training/arguments.py``)            workload
=========================================================  ===========================================
--num-experts, --moe-router-topk (default 2)               model.moe.experts, top_k
--moe-ffn-hidden-size, --moe-shared-expert-intermediate-   model.moe.expert_ffn_hidden; shared_experts =
size                                                       the shared size / the expert size
--moe-layer-freq k or a pattern ("([0]*3+[1]*58)",         model.moe.dense_layers, every (layer i is MoE
"[0,1,...]")                                               when i % k == 0, or where the pattern has 1)
--moe-expert-capacity-factor                               model.moe.capacity_factor (else dropless)
--moe-router-num-groups G, --moe-router-group-topk K       router node_limited, node_limit K; router_groups
                                                           G unless the G groups are the nodes an expert
                                                           group spans
--expert-model-parallel-size, --expert-tensor-parallel-    parallelism.expert, expert_tensor
size
--multi-latent-attention, --q-lora-rank, --kv-lora-rank,   model.attention mla, model.mla (q_lora_rank,
--qk-head-dim, --qk-pos-emb-head-dim, --v-head-dim         kv_lora_rank), head_dim, rope_head_dim, v_head_dim
(each but --q-lora-rank given)
--mtp-num-layers                                           model.mtp_layers
--fp8-format e4m3|hybrid, --fp8-recipe delayed|tensorwise  training.precision fp8, fp8_recipe delayed|
|blockwise, --fp8-param-gather                             current|te_blockwise, fp8_param_gather
--overlap-moe-expert-parallel-comm, --delay-wgrad-compute  parallelism.moe_a2a_overlap, delay_wgrad_compute
--disable-bias-linear (absent: Megatron's add_bias_linear  model.moe.expert_bias false (absent: true)
on, the experts' biases too)
--moe-token-dispatcher-type alltoall|flex, --moe-flex-     parallelism.moe_dispatcher alltoall, or deepep|
dispatcher-backend deepep|hybridep (default deepep),       hybridep
--moe-enable-deepep (with flex)
=========================================================  ===========================================

The simulator's MoE layer is Megatron-Core's all-to-all dispatcher over grouped GEMMs (:mod:`simcluster.plan.moe`):
``--moe-token-dispatcher-type alltoall`` or ``flex`` (DeepEP's or HybridEP's deduplicating dispatch,
:mod:`simcluster.collectives.dedup`) and ``--moe-grouped-gemm`` (needed when a
rank holds more than one expert: without it ``SequentialMLP`` runs them one by one). Its permutation is one memory
pass each way (:mod:`simcluster.workload.moe`), what ``--moe-permute-fusion`` runs; without the flag Megatron's
unfused permutation takes a few more kernels, not modelled. The router's loss, scoring and logging arguments change
no cost (:data:`NO_COST`). Every other ``--moe-*`` argument (padding to capacity, the shared expert's overlap with
the dispatch, ...) changes what the simulator would cost and stays a problem that names it.
"""

from __future__ import annotations

import ast
from typing import Any

from simcluster.errors import Problem

#: MoE arguments that change no cost the simulator models: load-balancing losses, scores, biases, dtypes, logging.
NO_COST = frozenset({
    "--moe-router-load-balancing-type", "--moe-aux-loss-coeff", "--moe-z-loss-coeff", "--moe-input-jitter-eps",
    "--moe-router-pre-softmax", "--moe-router-score-function", "--moe-router-topk-scaling-factor",
    "--moe-router-enable-expert-bias", "--moe-router-bias-update-rate", "--moe-router-dtype",
    "--moe-token-drop-policy", "--moe-per-layer-logging", "--moe-router-force-load-balancing",
    "--mtp-loss-scaling-factor", "--fp8-margin", "--fp8-amax-history-len", "--fp8-amax-compute-algo", "--fp8-interval",
})
#: Arguments this module maps (with :data:`NO_COST`, what :mod:`simcluster.spec.megatron` no longer refuses).
MAPPED = frozenset({
    "--num-experts", "--moe-router-topk", "--moe-ffn-hidden-size", "--moe-shared-expert-intermediate-size",
    "--moe-layer-freq", "--moe-expert-capacity-factor", "--moe-router-num-groups", "--moe-router-group-topk",
    "--moe-token-dispatcher-type", "--moe-grouped-gemm", "--moe-permute-fusion", "--expert-model-parallel-size",
    "--expert-tensor-parallel-size", "--multi-latent-attention", "--q-lora-rank", "--kv-lora-rank", "--qk-head-dim",
    "--qk-pos-emb-head-dim", "--v-head-dim", "--mtp-num-layers", "--fp8-format", "--fp8-recipe", "--fp8-param-gather",
    "--overlap-moe-expert-parallel-comm", "--delay-wgrad-compute", "--moe-flex-dispatcher-backend",
    "--disable-bias-linear", "--moe-layer-recompute", "--moe-enable-deepep",
})
#: Integer arguments among them (:func:`simcluster.spec.megatron.megatron_workload` reads them with the dense ones).
INT_ARGS = ("--num-experts", "--moe-router-topk", "--moe-ffn-hidden-size", "--moe-shared-expert-intermediate-size",
            "--moe-router-num-groups", "--moe-router-group-topk", "--expert-model-parallel-size",
            "--expert-tensor-parallel-size", "--q-lora-rank", "--kv-lora-rank", "--qk-head-dim",
            "--qk-pos-emb-head-dim", "--v-head-dim", "--mtp-num-layers")
#: Boolean arguments among them (they take no value on the command line).
FLAGS = frozenset({"--moe-grouped-gemm", "--multi-latent-attention", "--fp8-param-gather", "--moe-router-pre-softmax",
                   "--disable-bias-linear",
                   "--moe-router-enable-expert-bias", "--moe-per-layer-logging", "--moe-router-force-load-balancing",
                   "--moe-permute-fusion", "--moe-shared-expert-overlap", "--moe-pad-expert-input-to-capacity",
                   "--moe-layer-recompute", "--moe-use-legacy-grouped-gemm", "--overlap-moe-expert-parallel-comm",
                   "--delay-wgrad-compute", "--moe-enable-deepep"})
#: The longest layer pattern read (a guard: ``[0]*10**6*10**6`` is refused, not built).
MAX_PATTERN = 1_000_000
#: --fp8-recipe -> training.fp8_recipe (Transformer Engine's DelayedScaling, Float8CurrentScaling, Float8BlockScaling).
FP8_RECIPES = {"delayed": "delayed", "tensorwise": "current", "blockwise": "te_blockwise"}


def layer_pattern(value: str, layers: int) -> list[int] | None:
    """``--moe-layer-freq`` as 0/1 per layer: an integer k (layer i is MoE when i % k == 0) or Megatron's pattern
    expression of lists, ``*`` and ``+`` (``([0]*3+[1]*58)``), which Megatron ``eval``s and which is read here
    without evaluating code; None when it is neither."""
    try:
        return [1 if i % int(value) == 0 else 0 for i in range(layers)] if int(value) > 0 else None
    except ValueError:
        pass
    try:
        out = read_pattern(ast.parse(value.strip(), mode="eval").body)
    except (SyntaxError, ValueError):
        return None
    return out if isinstance(out, list) and all(x in (0, 1) for x in out) else None


def read_pattern(node: ast.AST) -> Any:
    """The value of a pattern expression's syntax tree: integers, lists, list + list and list * integer, each list at
    most :data:`MAX_PATTERN` long; ValueError for anything else (the expression is never evaluated)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.List):
        return [read_pattern(e) for e in node.elts]
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
        left, right = read_pattern(node.left), read_pattern(node.right)
        if isinstance(node.op, ast.Add) and isinstance(left, list) and isinstance(right, list) \
                and len(left) + len(right) <= MAX_PATTERN:
            return left + right
        if isinstance(node.op, ast.Mult) and isinstance(left, list) and isinstance(right, int) \
                and 0 <= right and len(left) * right <= MAX_PATTERN:
            return left * right
    raise ValueError("not a layer pattern")


def dense_and_every(pattern: list[int]) -> tuple[int, int] | None:
    """(dense_layers, every) whose MoE layers (i ≥ dense, (i − dense) % every == 0) are the pattern's 1s, or None."""
    ones = [i for i, x in enumerate(pattern) if x]
    if not ones:
        return None
    every = ones[1] - ones[0] if len(ones) > 1 else len(pattern)
    rule = [1 if i >= ones[0] and (i - ones[0]) % every == 0 else 0 for i in range(len(pattern))]
    return (ones[0], every) if rule == pattern else None


def megatron_moe(args: dict[str, str | bool], ints: dict[str, int | None], layers: int, gpus_per_node: int,
                 file: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[Problem]]:
    """(model keys, training keys, parallelism keys, problems) of the arguments this module maps."""
    model: dict[str, Any] = {}
    training: dict[str, Any] = {}
    par: dict[str, Any] = {}
    problems: list[Problem] = []

    def problem(key: str, why: str) -> None:
        problems.append(Problem(file, None, key, why))

    for key in ("--moe-router-topk", "--expert-model-parallel-size", "--expert-tensor-parallel-size",
                "--moe-router-num-groups", "--moe-router-group-topk"):
        value = ints.get(key)
        if value is not None and value < 1:
            problem(key, f"expected a positive integer, got {value}")
    for key in ("--fp8-format", "--fp8-recipe", "--moe-layer-freq", "--moe-token-dispatcher-type",
                "--moe-expert-capacity-factor", "--moe-flex-dispatcher-backend"):
        if args.get(key) is True:
            problem(key, "expects a value")
    experts = ints.get("--num-experts")
    if experts:
        top_k = ints.get("--moe-router-topk")
        moe: dict[str, Any] = {"experts": experts, "top_k": 2 if top_k is None else top_k}  # Megatron's default: 2
        size = ints.get("--moe-ffn-hidden-size")
        if size:
            moe["expert_ffn_hidden"] = size
        if not args.get("--disable-bias-linear"):  # Megatron-LM's default add_bias_linear: the experts' biases too
            moe["expert_bias"] = True
        shared = ints.get("--moe-shared-expert-intermediate-size")
        if shared:
            unit = size or ints.get("--ffn-hidden-size") or 4 * (ints.get("--hidden-size") or 0)
            if unit and shared % unit == 0:
                moe["shared_experts"] = shared // unit
            else:
                problem("--moe-shared-expert-intermediate-size", f"{shared} is not a multiple of the expert size {unit}")
        freq = args.get("--moe-layer-freq")
        if isinstance(freq, str):
            pattern = layer_pattern(freq, layers)
            split = dense_and_every(pattern) if pattern is not None and len(pattern) == layers else None
            if split is None:
                problem("--moe-layer-freq", f"{freq!r} is not an MoE-layer pattern of {layers} layers with a dense "
                        "start and a fixed period")
            else:
                moe["dense_layers"], moe["every"] = split
        capacity = args.get("--moe-expert-capacity-factor")
        if isinstance(capacity, str):
            try:
                moe["capacity_factor"] = float(capacity)
            except ValueError:
                problem("--moe-expert-capacity-factor", f"expected a number, got {capacity!r}")
        ep, etp = ints.get("--expert-model-parallel-size") or 1, ints.get("--expert-tensor-parallel-size")
        groups, chosen = ints.get("--moe-router-num-groups"), ints.get("--moe-router-group-topk")
        if (groups is None) != (chosen is None):
            problem("--moe-router-num-groups", "group-limited routing needs both --moe-router-num-groups and "
                    "--moe-router-group-topk")
        elif groups and chosen:
            nodes = ep * (etp or ints.get("--tensor-model-parallel-size") or 1) // gpus_per_node
            if experts % groups or chosen > groups:
                problem("--moe-router-num-groups", f"{groups} groups of {experts} experts, {chosen} chosen: the groups "
                        "must divide the experts and hold the chosen ones")
            else:
                moe["router"], moe["node_limit"] = "node_limited", chosen
                if groups != nodes:  # the groups are not the nodes: Megatron-Core's group-limited routing
                    moe["router_groups"] = groups
        dispatcher = args.get("--moe-token-dispatcher-type", "allgather")
        if dispatcher not in ("alltoall", "flex"):
            problem("--moe-token-dispatcher-type", f"{dispatcher}: the simulator's dispatch is an all-to-all "
                    "(alltoall, flex); Megatron-LM's default is allgather")
        backend = args.get("--moe-flex-dispatcher-backend", "deepep")  # TransformerConfig's default
        if args.get("--moe-enable-deepep"):  # Megatron-Core 0.14's switch for the flex dispatcher's DeepEP
            if dispatcher != "flex" or backend != "deepep":
                problem("--moe-enable-deepep", "needs --moe-token-dispatcher-type flex (and no other flex backend)")
        if dispatcher == "flex" and backend in ("deepep", "hybridep"):
            par["moe_dispatcher"] = backend
        elif dispatcher == "flex" and backend is not True:
            problem("--moe-flex-dispatcher-backend", f"{backend}: modelled are deepep and hybridep (one InfiniBand "
                    "copy per token and remote node)")
        if experts // ep > 1 and not args.get("--moe-grouped-gemm"):
            problem("--moe-grouped-gemm", f"absent: each rank's {experts // ep} experts would run one by one "
                    "(SequentialMLP), which is not modelled")
        model["moe"] = moe
        par["expert"] = ep
        if etp:
            par["expert_tensor"] = etp
    if args.get("--multi-latent-attention"):
        dims = ("--kv-lora-rank", "--qk-head-dim", "--qk-pos-emb-head-dim", "--v-head-dim")
        missing = [k for k in dims if not ints.get(k)]
        if missing:
            problem(missing[0], f"missing with --multi-latent-attention: {', '.join(missing)} (give each)")
        else:
            mla = {"kv_lora_rank": ints["--kv-lora-rank"], "rope_head_dim": ints["--qk-pos-emb-head-dim"],
                   "v_head_dim": ints["--v-head-dim"]}
            if ints.get("--q-lora-rank"):
                mla["q_lora_rank"] = ints["--q-lora-rank"]
            model.update(attention="mla", mla=mla, head_dim=ints["--qk-head-dim"])
    for flag, key in (("--overlap-moe-expert-parallel-comm", "moe_a2a_overlap"),
                      ("--delay-wgrad-compute", "delay_wgrad_compute")):
        if args.get(flag):
            par[key] = True
    if ints.get("--mtp-num-layers"):
        model["mtp_layers"] = ints["--mtp-num-layers"]
    if isinstance(args.get("--fp8-format"), str):
        recipe = str(args.get("--fp8-recipe", "delayed"))
        if recipe in FP8_RECIPES:
            training.update(precision="fp8", fp8_recipe=FP8_RECIPES[recipe])
            if args.get("--fp8-param-gather"):
                training["fp8_param_gather"] = True
        else:
            problem("--fp8-recipe", f"{recipe} is not modelled (known: {', '.join(FP8_RECIPES)})")
    return model, training, par, problems
