"""Models from files: ``model: {from: config.json}`` and ``model: {preset: NAME}``.

``from`` reads a Hugging Face ``config.json`` (Llama, Mistral, Qwen2, Gemma, GPT-2, GPT-NeoX,
DeepSeek; Mixtral, Qwen2/Qwen3-MoE, OLMoE and DeepSeek-V2/V3's experts and latent attention:
:mod:`simcluster.spec.hf_moe`) and maps its keys onto the model section (a ``sliding_window`` over every layer,
or over all but every N-th, ``model.full_attention_every``: :func:`_window`); ``preset`` reads an architecture of
the shipped catalogue (``simcluster/data/models/NAME.yaml``, each with its ``source``). Keys
written beside ``from``/``preset`` override what was read (inside ``moe`` and ``mla`` key by key). Offline:
files only, nothing is downloaded. A key of ``config.json`` that changes the model's cost but cannot be
mapped (irregular per-layer windows, DeepSeek-V2's device-limited routing, ...) is a problem that names it.

```python
data = {"model": {"from": "config.json", "seq_len": 4096}, ...}
problems = resolve_model(data, base_dir=Path("."), source="workload.yaml")  # data["model"] resolved
```
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simcluster.errors import Problem
from simcluster.spec.hf_moe import hf_mla, hf_moe
from simcluster.spec.yamlio import load_yaml

#: The catalogue of architectures: one YAML file per preset.
MODELS_DIR = Path(__file__).resolve().parent.parent / "data" / "models"

#: Hugging Face key -> model key; the first key present wins (GPT-2 spells them n_layer, ...).
_MAP: dict[str, tuple[str, ...]] = {
    "layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "hidden": ("hidden_size", "n_embd", "d_model"),
    "heads": ("num_attention_heads", "n_head"),
    "kv_heads": ("num_key_value_heads",),
    "ffn_hidden": ("intermediate_size", "n_inner", "ffn_dim"),
    "vocab": ("vocab_size",),
    "seq_len": ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"),
    "head_dim": ("head_dim",),
    "tied_embeddings": ("tie_word_embeddings",),
    "mtp_layers": ("num_nextn_predict_layers",),
}
_ACTIVATION_KEYS = ("hidden_act", "hidden_activation", "activation_function")
#: Hugging Face model types whose attention always adds ALiBi's bias (transformers' BloomAttention).
_ALIBI_TYPES = frozenset({"bloom"})

#: Keys that do not change what the simulator costs (norms, dropout, ids, rotary embeddings, ...).
_IGNORED = frozenset({
    "architectures", "model_type", "torch_dtype", "transformers_version", "_name_or_path", "use_cache",
    "bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id",
    "initializer_range", "initializer_factor", "rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon",
    "rope_theta", "rope_scaling", "rotary_pct", "rotary_emb_base", "rotary_dim", "partial_rotary_factor",
    "attention_bias", "attention_dropout", "hidden_dropout", "mlp_bias", "qkv_bias", "bias",
    "pretraining_tp", "resid_pdrop", "embd_pdrop", "attn_pdrop", "classifier_dropout", "dropout",
    "use_parallel_residual",
    "scale_attn_weights", "reorder_and_upcast_attn", "scale_attn_by_inverse_layer_idx",
    "task_specific_params", "tokenizer_class", "id2label", "label2id", "is_decoder",
    "output_attentions", "output_hidden_states", "return_dict", "tie_encoder_decoder",
    "attn_logit_softcapping", "final_logit_softcapping", "query_pre_attn_scalar", "quantization_config",
    "bos_token", "eos_token", "use_flash_attn", "gradient_checkpointing", "num_labels", "problem_type",
    "auto_map", "original_max_position_embeddings", "cache_implementation", "rope_local_base_freq",
    "initial_context_length",
})
_IGNORED_PREFIXES = ("summary_",)

#: Gated MLPs (three matrices: gate, up, down): SwiGLU, and GeGLU (Gemma) which costs the same.
_GATED_TYPES = frozenset({"llama", "mistral", "qwen2", "gemma", "gemma2", "gemma3", "gemma3_text", "deepseek",
                          "internlm2", "yi"})
#: Model types whose attention normalises each head's queries and keys (transformers' ``Qwen3Attention``,
#: ``Gemma3Attention``, ``Olmo2Attention``: ``q_norm`` and ``k_norm``; no config key says so).
_QK_NORM_TYPES = frozenset({"qwen3", "qwen3_moe", "gemma3", "gemma3_text", "olmo2"})
#: Model types with Gemma's sandwich norms (``Gemma2DecoderLayer``/``Gemma3DecoderLayer``: ``post_attention_layernorm``
#: and ``post_feedforward_layernorm`` of each block's output; OLMo 2's post-norms replace the pre-norms: two norms).
_POST_NORM_TYPES = frozenset({"gemma2", "gemma3", "gemma3_text"})
#: Untied unless the file says otherwise (transformers' defaults for these model types).
_UNTIED_TYPES = frozenset({"llama", "mistral", "qwen2", "deepseek", "gpt_neox", "mixtral", "qwen2_moe", "qwen3",
                           "qwen3_moe", "olmoe", "deepseek_v2", "deepseek_v3", "olmo2"})


def list_model_presets() -> list[str]:
    """Names of the shipped architectures (``llama3-70b``, ...)."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.yaml"))


def _mlp(config: dict[str, Any], model_type: str) -> str | None:
    act = next((config[k] for k in _ACTIVATION_KEYS if config.get(k) is not None), None)
    if model_type in _GATED_TYPES or act == "silu" or act == "swiglu":
        return "swiglu"
    if act is None or str(act).startswith("gelu"):
        return "gelu"
    return None


#: Model types whose windowed and full layers alternate without a key saying so, and their period: transformers'
#: ``Gemma2DecoderLayer`` (``is_sliding = not bool(layer_idx % 2)``: windowed, full, windowed, ...), and Gemma 3's
#: ``sliding_window_pattern`` default (``Gemma3TextConfig``: 6, five windowed layers, then a full one).
_ALTERNATING_WINDOW_TYPES: dict[str, int] = {"gemma2": 2, "gemma3": 6, "gemma3_text": 6}
_SLIDING, _FULL = "sliding_attention", "full_attention"


def _layer_types(types: Any, layers: Any) -> tuple[int | None, bool, str | None]:
    """(every, windowed at all, why not) of transformers' ``layer_types`` list: the period N of
    ``model.full_attention_every`` when layer i is full exactly when (i + 1) mod N = 0."""
    if not isinstance(types, list) or not types or any(t not in (_SLIDING, _FULL) for t in types):
        return None, False, f"layer_types must list {_SLIDING!r} and {_FULL!r} per layer"
    if isinstance(layers, int) and len(types) != layers:
        return None, False, f"layer_types lists {len(types)} layers, num_hidden_layers is {layers}"
    if _SLIDING not in types:
        return None, False, None
    if _FULL not in types:
        return None, True, None
    n = types.index(_FULL) + 1
    if n < 2 or any((t == _FULL) != ((i + 1) % n == 0) for i, t in enumerate(types)):
        full = [i for i, t in enumerate(types) if t == _FULL]
        return None, False, (f"layer_types puts full attention on layers {full}: only every N-th layer "
                             "(model.full_attention_every) can be mapped")
    return n, True, None


def _window(config: dict[str, Any], model_type: str) -> tuple[int | None, int | None, str | None]:
    """(``sliding_window``, ``full_attention_every``, why it cannot be mapped) of a config. Mistral's
    ``sliding_window`` covers every layer; Qwen2's only when ``use_sliding_window`` and from layer
    ``max_window_layers`` on (transformers' Qwen2Attention), so every layer only when that is 0; Gemma 2/3 and
    GPT-OSS put a full-attention layer every N (``layer_types``, ``sliding_window_pattern``, or the model type's
    rule: :data:`_ALTERNATING_WINDOW_TYPES`)."""
    w = config.get("sliding_window")
    if not w or config.get("use_sliding_window") is False:
        return None, None, None
    if not isinstance(w, int) or isinstance(w, bool) or w < 1:
        return None, None, f"sliding_window {w!r} is not a positive number of tokens"
    layers = config.get("num_hidden_layers")
    if "layer_types" in config:
        every, windowed, why = _layer_types(config["layer_types"], layers)
        return (w if windowed else None), every, why
    if "sliding_window_pattern" in config or model_type in _ALTERNATING_WINDOW_TYPES:
        every = config.get("sliding_window_pattern", _ALTERNATING_WINDOW_TYPES.get(model_type))
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            return None, None, f"sliding_window_pattern {every!r} is not a positive number of layers"
        if every == 1:  # every layer full
            return None, None, None
        return w, (every if not isinstance(layers, int) or every <= layers else None), None
    first = config.get("max_window_layers", 0) if "use_sliding_window" in config else 0
    if isinstance(layers, int) and isinstance(first, int) and first >= layers:
        return None, None, None  # no layer is windowed
    if first:
        return None, None, (f"sliding_window {w} from layer max_window_layers = {first} on cannot be mapped "
                            "(every layer, none, or every N-th layer full)")
    return w, None, None


def hf_model(config: dict[str, Any], file: str) -> tuple[dict[str, Any], list[Problem]]:
    """The model keys of a Hugging Face ``config.json`` mapping, and the problems: keys that change
    the cost but cannot be mapped, named one by one."""
    where = "model.from"
    model_type = str(config.get("model_type", ""))
    out: dict[str, Any] = {}
    used: set[str] = {"model_type", *_ACTIVATION_KEYS}
    for key, names in _MAP.items():
        for name in names:
            if name in config:
                used.add(name)
                if config[name] is not None and key not in out:
                    out[key] = config[name]
    if "tied_embeddings" not in out:
        out["tied_embeddings"] = model_type not in _UNTIED_TYPES
    if model_type in _QK_NORM_TYPES:
        out["qk_norm"] = True
    if model_type in _POST_NORM_TYPES:
        out["post_norms"] = True
    if model_type in _ALIBI_TYPES:  # their position bias is ALiBi, and they norm the embedding (no config key for either)
        out["alibi"] = True
        out["embed_layernorm"] = True
    mlp = _mlp(config, model_type)
    problems: list[Problem] = []
    moe, moe_keys, why_not = hf_moe(config)
    used |= moe_keys
    problems += [Problem(file, None, where, why) for why in why_not]
    if moe is not None and not why_not:
        out["moe"] = moe
    mla, head_dim, mla_keys = hf_mla(config)
    used |= mla_keys
    if mla is not None:
        out["attention"], out["head_dim"], out["mla"] = "mla", head_dim, mla
        out.pop("kv_heads", None)  # every head has its own keys and values, from the shared latent
    used |= {"sliding_window", "use_sliding_window", "max_window_layers", "layer_types", "sliding_window_pattern",
             "sliding_window_size"}
    window, every, why = _window(config, model_type)
    if why:
        problems.append(Problem(file, None, where, why))
    elif window:
        out["sliding_window"] = window
        if every:
            out["full_attention_every"] = every
    if mlp is None:
        act = next(config[k] for k in _ACTIVATION_KEYS if config.get(k) is not None)
        problems.append(Problem(file, None, where, f"activation {act!r} cannot be mapped (known: silu -> swiglu, gelu)"))
    else:
        out["mlp"] = mlp
    unmapped = sorted(k for k, v in config.items()
                      if k not in used and k not in _IGNORED and not k.startswith(_IGNORED_PREFIXES)
                      and v is not None and v is not False and v != 0)
    if unmapped:
        problems.append(Problem(file, None, where, "config.json keys that cannot be mapped onto the model: "
                                + ", ".join(unmapped) + " (decoder-only transformers: dense, mixture of experts, "
                                "latent attention)"))
    return out, problems


def _read_json(path: Path, where: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [Problem(where, None, "model.from", f"cannot read {path}: {exc.strerror or exc}")]
    except UnicodeDecodeError:
        return None, [Problem(str(path), None, "model.from", "not UTF-8 text")]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [Problem(str(path), exc.lineno, "model.from", f"not JSON: {exc.msg}")]
    if not isinstance(data, dict):
        return None, [Problem(str(path), None, "model.from", "expected a JSON object (a config.json)")]
    return data, []


def resolve_model(data: dict[str, Any], base_dir: Path, source: str) -> list[Problem]:
    """Replace ``data["model"]``'s ``from``/``preset`` by the keys they name (keys beside them win);
    the problems found (none: ``data`` changed in place)."""
    model = data.get("model")
    if not isinstance(model, dict) or not ({"from", "preset"} & model.keys()):
        return []
    model = dict(model)
    origin, preset = model.pop("from", None), model.pop("preset", None)
    if origin is not None and preset is not None:
        return [Problem(source, None, "model", "give `from` or `preset`, not both")]
    base: dict[str, Any] = {}
    problems: list[Problem] = []
    if preset is not None:
        names = list_model_presets()
        if not isinstance(preset, str) or preset not in names:
            return [Problem(source, None, "model.preset", f"unknown model preset {preset!r}; known: {', '.join(names)}")]
        base = dict(load_yaml(MODELS_DIR / f"{preset}.yaml").data)
        base.pop("source", None)
    else:
        if not isinstance(origin, str) or not origin:
            return [Problem(source, None, "model.from", "expected the path of a Hugging Face config.json")]
        path = Path(origin).expanduser()
        if not path.is_absolute():
            path = base_dir / path
        if path.is_dir():
            path = path / "config.json"
        config, problems = _read_json(path, source)
        if config is None:
            return problems
        base, problems = hf_model(config, str(path))
        if "seq_len" in model:  # the file's max_position_embeddings only when seq_len is not given
            base.pop("seq_len", None)
    for key, value in model.items():  # the user's keys win; inside moe and mla key by key
        merge = key in ("moe", "mla") and isinstance(value, dict) and isinstance(base.get(key), dict)
        base[key] = {**base[key], **value} if merge else value
    data["model"] = base
    return problems
