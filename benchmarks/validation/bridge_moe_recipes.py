"""The H100 perf recipes behind Megatron-Bridge's MoE DGX-H100 rows, and which of them the spec can carry.

Read from NVIDIA-NeMo/Megatron-Bridge at the tag each NeMo container ships (:data:`bridge_recipes.TAGS`):

* v0.1.0rc3 (25.09): ``scripts/performance/configs/qwen3/qwen3_{30b_a3b,235b_a22b}_llm_pretrain.yaml``
  (``perf_matrix.h100``: 30B ``tp 1, pp 2, vp 24, ep 8, etp 1``, ``bf16: mbs 1`` vs ``fp8_cs: mbs 2``;
  235B ``tp 2, pp 8, vp 4, ep 32, etp 1, mbs 1``, one layout for bf16 and fp8_cs; both: ``cuda_graphs
  false``, ``recompute_granularity null``), ``scripts/performance/run_script.py`` (Qwen3:
  ``CommOverlapConfig(tp_comm_overlap=True)`` and ``apply_moe_token_drop``; DeepSeek-V3 on H100:
  ``enable_deepep``, ``overlap_moe_expert_parallel_comm = True``, ``delay_wgrad_compute = True``,
  ``recompute_modules = ["mla_up_proj", "mlp"]``, layout ``Et|(tt|)*30mL``),
  ``src/megatron/bridge/training/utils/moe_token_drop.py`` (``moe_expert_capacity_factor 1.0``,
  ``moe_pad_expert_input_to_capacity True``), ``src/megatron/bridge/recipes/qwen/qwen3_235b_a22b.py``
  (``account_for_{embedding,loss}_in_pipeline_split True``), ``src/megatron/bridge/models/qwen/
  qwen_provider.py`` (``moe_token_dispatcher_type "alltoall"``, ``moe_grouped_gemm True``).
* v0.2.0 (25.11): ``scripts/performance/configs/qwen3/workload_base_configs.py`` (H100 FP8_CS:
  ``moe_a2a_overlap=True`` for both models, which ``utils/overrides.py`` turns into Megatron-Core's
  ``overlap_moe_expert_parallel_comm`` with ``delay_wgrad_compute``: ``parallelism.moe_a2a_overlap`` and
  ``delay_wgrad_compute``), ``qwen3_llm_pretrain.py`` (``qwen3_235b_a22b_h100_config``:
  ``CommOverlapConfig(tp_comm_overlap=False)`` at this and every later tag; the 30B's True).
* v0.3.0 (26.02), v0.3.1 (26.02.01), v0.4.0 (26.04), v0.4.1 (26.04.01), v0.5.0 (26.06):
  ``scripts/performance/configs/qwen/qwen3_workload_base_configs.py`` (``QWEN3_235B_A22B_PRETRAIN_CONFIG_
  H100_FP8_CS_V1/V2``: ``moe_a2a_overlap=True``; ``QWEN3_30B_A3B_PRETRAIN_CONFIG_H100_FP8_CS_V1``: v0.3.0
  ``pp 2, vp 12, moe_a2a_overlap=True, deepep``, from v0.3.1 ``ep 16, moe_a2a_overlap=False,
  hybridep``), ``configs/qwen/qwen3_llm_pretrain.py`` (``set_qwen3_common_configs``: recompute None,
  ``moe_router_force_load_balancing = True``, dropless; ``moe_token_dispatcher_type "flex"``),
  ``utils/overrides.py`` (``_set_common_perf_overrides``: ``moe_hybridep_num_sms = 32``),
  ``utils/precision.py`` (fp8_cs: ``bf16_with_fp8_current_scaling_mixed``), ``src/megatron/bridge/
  recipes/qwen/qwen3_moe.py`` (``overlap_param_gather``, distributed optimizer, grouped GEMM);
  GPT-OSS: ``configs/gpt_oss/gpt_oss_workload_base_configs.py`` (v0.2.0: ``workload_base_configs.py``; every
  tag: H100 BF16 ``pipeline_model_parallel_size 4``, ``expert_model_parallel_size 8``, ETP 1, MBS 1,
  ``recompute_modules ["layernorm", "moe_act"]``, which ``utils/overrides.py`` ``_set_recompute_overrides`` makes
  selective from v0.3.0 on, GBS 512 (V1) or 1280 (V2)), ``configs/gpt_oss/
  gpt_oss_llm_pretrain.py`` (``set_gpt_oss_common_configs``: ``grad_reduce_in_fp32 False``,
  ``moe_router_force_load_balancing True``; no flex backend on H100), ``src/megatron/bridge/recipes/gpt_oss/
  gpt_oss.py`` (``moe_token_dispatcher_type "alltoall"``, grouped GEMM, permute fusion, ``cross_entropy_loss_fusion``,
  no embedding/loss in the pipeline split, overlapped gradient reduce and parameter gather),
  ``src/megatron/bridge/models/gpt_oss/gpt_oss_bridge.py`` (``softmax_type "learnable"``, ``window_size
  (sliding_window - 1, 0)`` = 128 keys, ``window_attn_skip_freq 2``: Megatron-Core's layer_number % 2 == 0, 1-based,
  attends fully, i.e. ``model.full_attention_every: 2``; ``add_bias_linear``; the HF config's vocab 201,088, kept by
  ``setup._validate_and_set_vocab_size`` over the NullTokenizer's 32,000).

"FP8" in the 26.xx tables and "FP8-CS" in 25.11 are the H100 FP8_CS configs (the only FP8 H100 configs);
25.09 names no precision: the 30B row's MBS 2 is fp8_cs's (bf16: MBS 1); the 235B row's layout is
both bf16's and fp8_cs's, so its FP8 is assumed (as every other 25.09 H100 row) and said as a caveat.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from bridge_recipes import TAGS


class MoeRecipe(NamedTuple):
    """The MoE settings of one H100 perf recipe."""

    tag: str
    etp: int  #: expert_tensor_parallel_size
    dispatcher: str  #: alltoall | deepep | hybridep (moe_token_dispatcher_type / flex backend)
    dispatcher_sms: int  #: SMs the flex dispatcher's kernels hold (moe_hybridep_num_sms); 0: NCCL
    a2a_overlap: bool  #: moe_a2a_overlap / overlap_moe_expert_parallel_comm
    capacity_factor: float | None  #: apply_moe_token_drop (padded to capacity); None: dropless
    force_load_balancing: bool  #: moe_router_force_load_balancing
    tp_comm_overlap: bool
    account_for_embedding_and_loss: bool
    layout: tuple[int, int, int]  #: the recipe's (PP, VP, EP)
    mbs: int
    notes: tuple[str, ...] = ()
    lacks: str | None = None  #: a setting the spec cannot carry (the row is skipped)
    recompute_modules: tuple[str, ...] = ()  #: selective recompute's modules (utils/overrides.py: selective when set)
    pipeline_layout: str | None = None  #: pipeline_model_parallel_layout (Megatron-Core's layout string)
    overlap_grad_reduce: bool = True
    grad_reduce_in_bf16: bool = False  #: mixed_precision grad_reduce_in_fp32 False


#: Architectures (module docstring of bridge_moe_h100; qwen_provider.py at v0.1.0rc3).
ARCH: dict[str, dict[str, Any]] = {
    "Qwen3_30B_a3B": {"layers": 48, "hidden": 2048, "heads": 32, "head_dim": 128, "kv_heads": 4,
                      "ffn_hidden": 6144, "vocab": 151936, "qk_norm": True,
                      "moe": {"experts": 128, "top_k": 8, "expert_ffn_hidden": 768}},
    "Qwen3_235B_a22B": {"layers": 94, "hidden": 4096, "heads": 64, "head_dim": 128, "kv_heads": 4,
                        "ffn_hidden": 12288, "vocab": 151936, "qk_norm": True,
                        "moe": {"experts": 128, "top_k": 8, "expert_ffn_hidden": 1536}},
    # deepseek_provider.py DeepSeekV3ModelProvider at v0.1.0rc3: MLA (q_lora 1536, kv_lora 512, qk 128 + rope 64, v 128;
    # its latent norms are the MLA's own), moe_layer_freq [0]*3 + [1]*58, one shared expert of 2,048, sigmoid routing
    # in 8 groups of which 4 (moe_router_num_groups, moe_router_group_topk), one MTP layer, vocab 129,280 unpadded
    # (the NullTokenizer's 32,000 is smaller: setup._validate_and_set_vocab_size keeps the model's)
    "DeepSeekV3": {"layers": 61, "hidden": 7168, "heads": 128, "head_dim": 128, "ffn_hidden": 18432, "vocab": 129280,
                   "attention": "mla", "mla": {"kv_lora_rank": 512, "q_lora_rank": 1536, "rope_head_dim": 64,
                                               "v_head_dim": 128}, "mtp_layers": 1,
                   "moe": {"experts": 256, "top_k": 8, "expert_ffn_hidden": 2048, "shared_experts": 1,
                           "dense_layers": 3, "router": "node_limited", "node_limit": 4, "router_groups": 8}},
    # openai/gpt-oss-120b config.json (GptOssConfig), as gpt_oss_bridge.py maps it
    "GPT_OSS_120B": {"layers": 36, "hidden": 2880, "heads": 64, "head_dim": 64, "kv_heads": 8, "ffn_hidden": 2880,
                     "vocab": 201088, "sliding_window": 128, "full_attention_every": 2,
                     "moe": {"experts": 128, "top_k": 4, "expert_bias": True}},
}


def _qwen(release: str, model: str) -> MoeRecipe:
    tag = TAGS[release][0]
    big = model == "Qwen3_235B_a22B"
    if tag == "v0.1.0rc3":
        notes = ("precision FP8-CS assumed: the 25.09 row names none, and bf16 has the same layout",) if big else ()
        return MoeRecipe(tag, 1, "alltoall", 0, False, 1.0, False, True, big,
                         (8, 4, 32) if big else (2, 24, 8), 1 if big else 2, notes)
    if big:  # qwen3_235b_a22b_*h100*: CommOverlapConfig(tp_comm_overlap=False), dispatcher alltoall
        return MoeRecipe(tag, 1, "alltoall", 0, True, None, tag != "v0.2.0", False, True, (8, 4, 32), 1)
    if tag in ("v0.2.0", "v0.3.0"):
        return MoeRecipe(tag, 1, "alltoall" if tag == "v0.2.0" else "deepep", 0, True, None, tag != "v0.2.0",
                         True, False, (2, 12, 8), 1)
    return MoeRecipe(tag, 1, "hybridep", 32, False, None, True, True, False, (1, 0, 16), 1)


def _lacking(release: str, model: str, lacks: str) -> MoeRecipe:
    return MoeRecipe(TAGS[release][0], 0, "?", 0, False, None, False, False, False, (0, 0, 0), 0, lacks=lacks)


DEEPSEEK_NOTES = ("FP8 read as per-tensor current scaling: the table's other figure, in parentheses (330 against 338 "
                  "TFLOP/s), is the blockwise 128x128 / 1x128 recipe", "Adam moments in bf16 "
                  "(use_precision_aware_optimizer, exp_avg_dtype bf16) costed as fp32", "the 25.09 container's "
                  "Megatron-Core version is not stated (an MTP layer in pipeline_model_parallel_layout needs "
                  "core_v0.14.0)")


def _deepseek(release: str) -> MoeRecipe:
    """run_script.py at v0.1.0rc3, H100: DeepEP (flex) with force-balanced routing, overlap_moe_expert_parallel_comm
    with delay_wgrad_compute, recompute_modules [mla_up_proj, mlp] (selective), overlap_grad_reduce False, layout
    ``Et|(tt|)*30mL`` (the embedding and one layer, thirty chunks of two, the MTP layer and the loss), no userbuffers
    (the recipe's CommOverlapConfig(tp_comm_overlap=False)); deepseek_v3_llm_pretrain.yaml's grad_reduce_in_fp32
    False. Later tags' H100 DeepSeek rows are absent from the table."""
    if release != "25.09":
        return _lacking(release, "DeepSeekV3", "no DeepSeek-V3 H100 recipe read at this tag")
    return MoeRecipe(TAGS[release][0], 1, "deepep", 0, True, None, True, False, False, (8, 4, 64), 1, DEEPSEEK_NOTES,
                     recompute_modules=("mla_up_proj", "mlp"), pipeline_layout="Et|(tt|)*30mL",
                     overlap_grad_reduce=False, grad_reduce_in_bf16=True)
GPT_OSS_NOTES = ("learnable softmax sinks (softmax_type learnable: one logit a head in the softmax) costed as "
                 "plain attention", "the attention's biases (add_bias_linear) not costed; the experts' are "
                 "(model.moe.expert_bias)")


def _gpt_oss(release: str) -> MoeRecipe:
    return MoeRecipe(TAGS[release][0], 1, "alltoall", 0, False, None, True, False, False, (4, 0, 8), 1, GPT_OSS_NOTES,
                     recompute_modules=("layernorm", "moe_act"))
NEMOTRON = "Nemotron 3 Nano: hybrid Mamba-2 / attention / MoE layers; Mamba layers are not in the spec"

#: (release, model) -> recipe, for every MoE DGX-H100 row of the summary pages at 067f987.
MOE_RECIPES: dict[tuple[str, str], MoeRecipe] = {}
for _release in TAGS:
    for _model in ARCH:
        MOE_RECIPES[(_release, _model)] = _qwen(_release, _model)
    MOE_RECIPES[(_release, "DeepSeekV3")] = _deepseek(_release)
    MOE_RECIPES[(_release, "GPT_OSS_120B")] = _gpt_oss(_release)
    MOE_RECIPES[(_release, "Nemotron_3_Nano")] = _lacking(_release, "Nemotron_3_Nano", NEMOTRON)


def skip_reason(row: Any, recipe: MoeRecipe | None) -> str | None:
    """Why ``row`` is not simulated (None: it is): no recipe, a setting the spec lacks, or a layout mismatch."""
    if recipe is None:
        return "no recipe read"
    why = []
    pp, vp, ep = recipe.layout
    if ep and (row.pp, row.vp if row.vp > 1 else 0, row.ep, row.mbs) != (pp, vp, ep, recipe.mbs):
        why.append(f"table layout PP{row.pp} VP{row.vp} EP{row.ep} MBS{row.mbs} differs from recipe "
                   f"{recipe.tag}'s PP{pp} VP{vp} EP{ep} MBS{recipe.mbs}")
    if recipe.lacks:
        why.append(f"recipe {recipe.tag}: {recipe.lacks}" if recipe.etp else recipe.lacks)
    return "; ".join(why) or None
