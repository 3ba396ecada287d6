"""Megatron-Core's sliding-window arguments of ``import-megatron``: ``model.sliding_window`` and
``model.full_attention_every``.

- ``--window-size L,R`` (``tuple_type``: ``"L,R"`` or ``"(L,R)"``; TransformerConfig.window_size): each query
  attends to the L keys before it and the R after it, −1 meaning no limit. A causal model trains with R = 0, so
  the window holds w = L + 1 keys, the query's own included (what ``model.sliding_window`` counts;
  Transformer Engine's and FlashAttention-2's ``window_size`` = (w − 1, 0)). L = −1 is no window.
- ``--softmax-type``: ``vanilla`` (the default) maps; ``learnable`` and ``off-by-one`` (GPT-OSS's sinks) are problems:
  Transformer Engine runs them on other attention kernels than plain softmax (docs/validation.md, GPT-OSS).
- ``--window-attn-skip-freq`` (``moe_freq_type``): an integer N makes layer_number (1-based) a full-attention
  layer when layer_number % N == 0, the others windowed (``megatron/core/transformer/utils.py``
  ``is_layer_window_attention``): 0-based layer i full when (i + 1) % N == 0, ``model.full_attention_every: N``;
  a pattern expression lists 1 (windowed) or 0 (full) per layer, mapped where it has that form (all 1s: a
  window on every layer; all 0s: none), read as data (:func:`simcluster.spec.megatron_moe.layer_pattern`'s
  parser), never evaluated.
"""

from __future__ import annotations

import ast
from typing import Any

from simcluster.errors import Problem
from simcluster.spec import megatron_moe

#: The arguments this module reads (``--softmax-type`` only as ``vanilla``: GPT-OSS's learnable sinks are a problem).
MAPPED = frozenset({"--window-size", "--window-attn-skip-freq", "--softmax-type"})


def _window(value: str | bool) -> int | None | str:
    """w of ``--window-size``: the number of keys, None for no window, or why it cannot be read."""
    try:
        left, right = (int(x) for x in str(value).strip().strip("()").split(","))
    except ValueError:
        return f"expected two integers (left, right), got {value!r}"
    if left == -1:
        return None
    if right != 0:
        return f"({left}, {right}): a window over later keys is not causal training"
    return left + 1 if left >= 0 else f"({left}, {right}): the left size must be −1 or at least 0"


def _every(value: str | bool, layers: int) -> tuple[bool, int | None] | str:
    """(any layer windowed, N) of ``--window-attn-skip-freq``, or why it cannot be mapped."""
    try:
        n = int(str(value))
    except ValueError:
        n = None
    if n is not None:
        if n < 1:
            return f"{n} is not a positive number of layers"
        return (n != 1, n if 1 < n <= layers else None)
    try:
        pattern = megatron_moe.read_pattern(ast.parse(str(value).strip(), mode="eval").body)
    except (SyntaxError, ValueError):
        pattern = None
    if not isinstance(pattern, list) or any(x not in (0, 1) for x in pattern):
        return f"{value!r} is neither an integer nor a list of 0 (full) and 1 (windowed) per layer"
    if len(pattern) != layers:
        return f"the pattern lists {len(pattern)} layers, --num-layers is {layers}"
    if all(pattern):
        return True, None
    if not any(pattern):
        return False, None
    full = pattern.index(0) + 1
    if full < 2 or any((x == 0) != ((i + 1) % full == 0) for i, x in enumerate(pattern)):
        return (f"full attention on layers {[i for i, x in enumerate(pattern) if not x]}: only every N-th layer "
                "(model.full_attention_every) can be mapped")
    return True, full


def megatron_window(args: dict[str, str | bool], layers: int, file: str) -> tuple[dict[str, Any], list[Problem]]:
    """The model keys of the sliding-window arguments, and the problems (module docstring)."""
    bare = [k for k in sorted(MAPPED) if args.get(k) is True]  # given without a value
    if bare:
        return {}, [Problem(file, None, k, "expects a value") for k in bare]
    softmax = args.get("--softmax-type", "vanilla")
    if softmax != "vanilla":
        return {}, [Problem(file, None, "--softmax-type", f"{softmax!r}: attention sinks (an offset logit a head in the "
                            "softmax) are not modelled; only vanilla maps")]
    if "--window-size" not in args:
        if "--window-attn-skip-freq" in args:
            return {}, [Problem(file, None, "--window-attn-skip-freq", "needs --window-size (the windowed layers' size)")]
        return {}, []
    w = _window(args["--window-size"])
    if isinstance(w, str):
        return {}, [Problem(file, None, "--window-size", w)]
    if w is None:
        return {}, []
    skip = args.get("--window-attn-skip-freq")
    if skip is None:
        return {"sliding_window": w}, []
    every = _every(skip, layers)
    if isinstance(every, str):
        return {}, [Problem(file, None, "--window-attn-skip-freq", every)]
    windowed, n = every
    if not windowed:
        return {}, []
    return ({"sliding_window": w, "full_attention_every": n} if n else {"sliding_window": w}), []
