"""The H100 FP8 perf recipes behind Megatron-Bridge's dense DGX-H100 performance-summary rows.

Read from NVIDIA-NeMo/Megatron-Bridge at the Megatron-Bridge version each NeMo container ships
(``docs/releases/software-versions.md`` at 067f987: 25.09 -> 0.1.0rc3, 25.11 -> 0.2.0, 26.02 -> 0.3.0,
26.04 -> 0.4.0, 26.06 -> 0.5.0; the patch containers 26.02.01 and 26.04.01 have no entry and are read
at the patch tags v0.3.1 and v0.4.1 -- their dense recipes equal v0.3.0's and v0.4.0's anyway).

Files (paths at the tag):

* v0.1.0rc3 (bf71eba07): ``scripts/performance/configs/llama3/llama3_{8b,70b}_llm_pretrain.yaml``,
  ``configs/llama31/llama31_405b_llm_pretrain.yaml`` (``perf_matrix.h100 ... fp8_cs``),
  ``scripts/performance/run_script.py`` and ``utils/helpers.py`` (``get_precision_config('fp8','cs')``,
  ``set_megatron_fsdp_overrides``: ``data_parallel_sharding_strategy = "optim_grads_params"``),
  ``src/megatron/bridge/recipes/llama/llama3_{8b,70b}.py``, ``llama31_405b.py`` (DDP config,
  ``CommOverlapConfig``, ``account_for_{embedding,loss}_in_pipeline_split``).
* v0.2.0 (7af9601c9): ``scripts/performance/configs/llama3/{llama3_llm_pretrain,workload_base_configs}.py``,
  ``configs/llama31/{llama31_llm_pretrain,workload_base_configs}.py``, ``utils/helpers.py``,
  ``src/megatron/bridge/recipes/llama/llama3.py``.
* v0.3.0 (21b02e0cf), v0.3.1 (9c9dd8489), v0.4.0 (0fbfe7d3e), v0.4.1 (f9b6319e5), v0.5.0 (fcbb60311):
  ``scripts/performance/configs/llama/{llama3,llama31}_{llm_pretrain,workload_base_configs}.py``
  (``*_PRETRAIN_CONFIG_H100_FP8_CS_V2``: GBS 256 / 1536), ``utils/precision.py``,
  ``src/megatron/bridge/recipes/llama/llama3.py``.

Common to every tag: ``get_precision_config`` for fp8_cs returns ``bf16_with_fp8_current_scaling_mixed()``
(``src/megatron/bridge/training/mixed_precision.py``: fp8 "hybrid", recipe "tensorwise",
``fp8_param_gather = True``) with ``first_last_layers_bf16 = False``; the recipes' DDP config has
``use_distributed_optimizer``, ``overlap_grad_reduce`` and ``overlap_param_gather`` True; the model has
``cross_entropy_loss_fusion`` True (``GPTModelProvider`` default at v0.1.0rc3/v0.2.0/v0.3.0, set
explicitly from v0.3.1) with ``cross_entropy_fusion_impl "te"``; no activation recompute unless the
base config sets ``recompute_num_layers``; ``tp_comm_overlap`` True for the 70B and 405B recipes with
the ``userbuffers_fp8_h100_*`` configs, ``CommOverlapConfig(tp_comm_overlap=tp > 1)`` (False) for 8B.
"""

from __future__ import annotations

from typing import NamedTuple


class Recipe(NamedTuple):
    """The settings of one H100 FP8-CS perf recipe that the simulator's workload keys can carry."""

    tag: str
    commit: str
    fsdp: bool  #: use_megatron_fsdp (optim_grads_params: params, grads and optimizer states sharded)
    recompute_num_layers: int  #: 0: none; n: full recompute of n layers a chunk ("block")
    tp_comm_overlap: bool
    overlap_param_gather: bool
    cross_entropy_loss_fusion: bool
    fp8_param_gather: bool  #: FP8 parameters (Transformer Engine's fp8_model_init)
    account_for_embedding_and_loss: bool  #: account_for_{embedding,loss}_in_pipeline_split


TAGS: dict[str, tuple[str, str]] = {
    "25.09": ("v0.1.0rc3", "bf71eba07bae8d36f08b796c106d1197d46ad541"),
    "25.11": ("v0.2.0", "7af9601c9da746d21481194356295bfe23df3737"),
    "26.02": ("v0.3.0", "21b02e0cfb2f8ff907e0d8baee0c5205876c6812"),
    "26.02.01": ("v0.3.1", "9c9dd848966322fc3ed7706747ec13219ef49dda"),
    "26.04": ("v0.4.0", "0fbfe7d3e970fbd75c1281d71cee586ce1f3df5e"),
    "26.04.01": ("v0.4.1", "f9b6319e58494b9a655b4789724df715aebabaef"),
    "26.06": ("v0.5.0", "fcbb6031103d0ca845c1a54d4fee55ecfcca17b6"),
}


def _recipe(release: str, model: str) -> Recipe:
    tag, commit = TAGS[release]
    if model == "LLAMA3_8B":
        # v0.1.0rc3 yaml: fp8_cs {cp 1, use_megatron_fsdp true, keep_fp8_transpose_cache..., nccl_ub true};
        # v0.2.0 LLAMA3_8B_H100_FP8_CS_BASE_CONFIG: context_parallel_size 1, recompute_num_layers 5, no FSDP.
        fsdp, recompute = (True, 0) if tag == "v0.1.0rc3" else (False, 5)
        return Recipe(tag, commit, fsdp, recompute, False, True, True, True, False)
    if model == "LLAMA3_70B":
        return Recipe(tag, commit, False, 0, True, True, True, True, False)
    if model == "LLAMA3.1_405B":
        return Recipe(tag, commit, False, 0, True, True, True, True, True)
    raise KeyError(model)


#: (release, model) -> the recipe of every dense DGX-H100 row of the summary pages at 067f987.
RECIPES: dict[tuple[str, str], Recipe] = {
    (r, m): _recipe(r, m)
    for r, m in (("25.09", "LLAMA3_8B"), ("25.09", "LLAMA3_70B"), ("25.09", "LLAMA3.1_405B"),
                 ("25.11", "LLAMA3_8B"), ("25.11", "LLAMA3_70B"), ("25.11", "LLAMA3.1_405B"),
                 ("26.02", "LLAMA3_70B"), ("26.02", "LLAMA3.1_405B"), ("26.02.01", "LLAMA3_70B"),
                 ("26.04", "LLAMA3_70B"), ("26.04.01", "LLAMA3_70B"), ("26.04.01", "LLAMA3.1_405B"),
                 ("26.06", "LLAMA3.1_405B"))
}

#: The table's FSDP column (number of GPUs a Megatron-FSDP group spans; 0: none) where it is given.
TABLE_FSDP: dict[tuple[str, str], int] = {("25.09", "LLAMA3_8B"): 8, ("25.11", "LLAMA3_8B"): 8}


def stage_layers(layers: int, chunks: int, account: bool) -> list[int] | None:
    """Transformer layers per model chunk as Megatron-Core splits them.

    With ``account_for_embedding_in_pipeline_split`` and ``..._loss_...`` the embedding and the loss
    count as one layer each in the first and last chunk: (layers + 2)/chunks per chunk, one fewer
    transformer layer in the first and the last (Llama 3.1 405B, PP 8 x VP 8: 128/64 = 2, so 1, 2 x 62, 1).
    None: the even split.
    """
    if not account:
        return None
    per, rest = divmod(layers + 2, chunks)
    if rest:
        raise ValueError(f"{layers} + 2 layers do not divide into {chunks} chunks")
    return [per - 1] + [per] * (chunks - 2) + [per - 1]
