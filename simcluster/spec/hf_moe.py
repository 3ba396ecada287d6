"""Mixture-of-experts and latent-attention keys of a Hugging Face ``config.json``: ``model.moe`` and ``model.mla``.

What transformers' modeling code does with each key (the families by their keys, not their ``model_type``):

- Mixtral-style (``num_local_experts`` E, ``num_experts_per_tok`` k; Mixtral, PhiMoE, GraniteMoE, GPT-OSS): every
  layer's MLP is a sparse block of E experts of ``intermediate_size`` (``MixtralSparseMoeBlock``; GPT-OSS's
  ``GptOssExperts``, whose ``swiglu_limit`` clamp of the gate and up outputs is not costed).
- Qwen-style (``num_experts``; Qwen2-MoE, Qwen3-MoE, OLMoE): experts of ``moe_intermediate_size`` (OLMoE:
  ``intermediate_size``); layer i is sparse when i is not in ``mlp_only_layers`` and (i + 1) % ``decoder_sparse_step``
  == 0 (``Qwen2MoeDecoderLayer``), i.e. ``dense_layers`` s − 1 and ``every`` s; ``mlp_only_layers`` maps only when it
  is the first n layers (``dense_layers`` n, s = 1). Qwen2-MoE's one shared expert of
  ``shared_expert_intermediate_size`` = n × ``moe_intermediate_size`` costs what n shared experts of
  ``moe_intermediate_size`` cost (its sigmoid gate, h weights a layer, is left out).
- DeepSeek-style (``n_routed_experts``; DeepSeekMoE, DeepSeek-V2, DeepSeek-V3): layer i is sparse when i ≥
  ``first_k_dense_replace`` and i % ``moe_layer_freq`` == 0 (``DeepseekV3DecoderLayer``): ``dense_layers`` the first
  such i, ``every`` the frequency; ``n_shared_experts`` shared experts of ``moe_intermediate_size`` (one MLP of
  their summed width, the same cost). ``topk_method: noaux_tc`` with ``topk_group`` of ``n_group`` groups is
  DeepSeek-V3's node-limited routing (arXiv:2412.19437 §2.1.2, the groups are the nodes): ``router: node_limited``,
  ``node_limit`` ``topk_group``; ``greedy`` is plain top-k; DeepSeek-V2's ``group_limited_greedy`` limits devices,
  not nodes (arXiv:2405.04434 §2.2.2), which the simulator does not model: a problem.
- Latent attention (``kv_lora_rank``; DeepSeek-V2/V3): ``attention: mla`` with ``kv_lora_rank``, ``q_lora_rank``
  (null: a full query projection), ``rope_head_dim`` = ``qk_rope_head_dim``, ``v_head_dim``; ``head_dim`` is
  ``qk_nope_head_dim`` (transformers' ``DeepseekV3Config.head_dim`` is the RoPE part and is not used).

The routers' loss coefficients, score function, top-k normalisation and scaling change no cost (:data:`NO_COST`).
"""

from __future__ import annotations

from typing import Any

#: Keys of the routers that change no cost the simulator models (loss weights, scoring, normalisation, noise).
NO_COST = frozenset({
    "router_aux_loss_coef", "output_router_logits", "router_jitter_noise", "norm_topk_prob", "aux_loss_alpha",
    "seq_aux", "scoring_func", "routed_scaling_factor", "ep_size", "router_z_loss_coef",
})
_MLA_KEYS = ("kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim")


def _int(config: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = config.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def hf_moe(config: dict[str, Any]) -> tuple[dict[str, Any] | None, set[str], list[str]]:
    """(the ``model.moe`` section or None, the keys read, why a key cannot be mapped) of a config.json."""
    used: set[str] = set(NO_COST)
    why: list[str] = []
    top_k = _int(config, "num_experts_per_tok")
    for key in ("num_local_experts", "num_experts", "n_routed_experts"):
        if config.get(key):
            experts = _int(config, key)
            break
    else:
        return None, used, why
    used |= {"num_local_experts", "num_experts", "n_routed_experts", "num_experts_per_tok"}
    if experts is None or top_k is None:
        return None, used, [f"{key} and num_experts_per_tok must be numbers of experts"]
    moe: dict[str, Any] = {"experts": experts, "top_k": top_k}
    used |= {"experts_per_token", "swiglu_limit"}  # GPT-OSS writes k twice; its clamp is not costed (docstring)
    if "experts_per_token" in config and config["experts_per_token"] != top_k:
        why.append(f"experts_per_token {config['experts_per_token']!r} differs from num_experts_per_tok {top_k}")
    if key == "num_local_experts":  # Mixtral-style: every layer, experts of intermediate_size
        return moe, used, why
    used.add("moe_intermediate_size")
    if config.get("moe_intermediate_size") is not None:
        moe["expert_ffn_hidden"] = config["moe_intermediate_size"]
    if key == "num_experts":
        _qwen_layers(config, moe, used, why)
    else:
        _deepseek_layers(config, moe, used, why)
    return moe, used, why


def _qwen_layers(config: dict[str, Any], moe: dict[str, Any], used: set[str], why: list[str]) -> None:
    """Qwen2-MoE/Qwen3-MoE/OLMoE: sparse step, MLP-only layers, the shared expert (module docstring)."""
    used |= {"decoder_sparse_step", "mlp_only_layers", "shared_expert_intermediate_size"}
    step = _int(config, "decoder_sparse_step", 1)
    if step is None or step < 1:
        why.append(f"decoder_sparse_step {config.get('decoder_sparse_step')!r} is not a positive number of layers")
        return
    dense = list(config.get("mlp_only_layers") or [])
    if dense and (dense != list(range(len(dense))) or step != 1):
        why.append(f"mlp_only_layers {dense} (dense MLPs other than the first layers) cannot be mapped")
        return
    moe["dense_layers"], moe["every"] = (len(dense), 1) if dense else (step - 1, step)
    shared = config.get("shared_expert_intermediate_size")
    if shared:
        size = moe.get("expert_ffn_hidden")
        if not isinstance(shared, int) or not isinstance(size, int) or size < 1 or shared % size:
            why.append(f"shared_expert_intermediate_size {shared!r} is not a multiple of moe_intermediate_size {size!r}")
            return
        moe["shared_experts"] = shared // size


def _deepseek_layers(config: dict[str, Any], moe: dict[str, Any], used: set[str], why: list[str]) -> None:
    """DeepSeekMoE/V2/V3: first dense layers, frequency, shared experts, group-limited routing (module docstring)."""
    used |= {"first_k_dense_replace", "moe_layer_freq", "n_shared_experts", "topk_method", "n_group", "topk_group"}
    first, freq = _int(config, "first_k_dense_replace", 0), _int(config, "moe_layer_freq", 1)
    if first is None or freq is None or first < 0 or freq < 1:
        why.append(f"first_k_dense_replace {config.get('first_k_dense_replace')!r} and moe_layer_freq "
                   f"{config.get('moe_layer_freq')!r} must be numbers of layers")
        return
    moe["dense_layers"], moe["every"] = -(-first // freq) * freq, freq  # the first i >= first with i % freq == 0
    if config.get("n_shared_experts"):
        moe["shared_experts"] = config["n_shared_experts"]
    method, groups, limit = config.get("topk_method", "greedy"), config.get("n_group"), config.get("topk_group")
    if method == "group_limited_greedy":
        why.append("topk_method group_limited_greedy (DeepSeek-V2's device-limited routing) is not modelled; "
                   "write model.moe by hand for top-k routing")
    elif method == "noaux_tc" and isinstance(groups, int) and isinstance(limit, int) and 0 < limit < groups:
        moe["router"], moe["node_limit"] = "node_limited", limit
    elif method not in ("greedy", "noaux_tc"):
        why.append(f"topk_method {method!r} cannot be mapped (known: greedy, noaux_tc)")


def hf_mla(config: dict[str, Any]) -> tuple[dict[str, Any] | None, int | None, set[str]]:
    """(the ``model.mla`` section or None, the model's ``head_dim`` under it, the keys read) of a config.json
    (module docstring)."""
    if not config.get("kv_lora_rank"):
        return None, None, set()
    mla = {"kv_lora_rank": config["kv_lora_rank"], "rope_head_dim": config.get("qk_rope_head_dim"),
           "v_head_dim": config.get("v_head_dim")}
    if config.get("q_lora_rank"):
        mla["q_lora_rank"] = config["q_lora_rank"]
    return mla, config.get("qk_nope_head_dim"), set(_MLA_KEYS)
