"""Checks of ``training.recompute_modules`` (Megatron-Core's selective recompute by module).

They mirror Megatron-Core's own (``TransformerConfig.__post_init__`` in megatron/core/transformer/
transformer_config.py: ``mla_up_proj`` needs multi-latent attention, ``shared_experts`` no shared-expert overlap,
``overlap_moe_expert_parallel_comm`` no ``moe`` among the modules), plus what would be inert or meaningless here:
the MoE modules without ``model.moe``, ``shared_experts`` without shared experts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simcluster.spec.finding import Finding

if TYPE_CHECKING:
    from simcluster.spec.workload import WorkloadSpec

KEY = "training.recompute_modules"


def recompute_modules_checks(spec: "WorkloadSpec") -> list[Finding]:
    """The problems of ``training.recompute_modules`` of ``spec`` (empty when unset or possible)."""
    tr, m, p = spec.training, spec.model, spec.parallelism
    modules = getattr(tr, "recompute_modules", None)
    if modules is None:
        return []
    if tr.recompute != "selective" or tr.framework != "megatron" or tr.recompute_saves is not None:
        return [Finding(KEY, "names the submodules Megatron-Core's selective recompute reruns: it needs recompute: "
                             "selective, framework megatron and no recompute_saves",
                        ("training.recompute", "training.framework", "training.recompute_saves"))]
    moe = getattr(m, "moe", None)
    for name in ("moe_act", "moe", "shared_experts"):
        if name in modules and moe is None:
            return [Finding(KEY, f"{name} recomputes part of the MoE layers: the model has no model.moe",
                            ("model.moe",))]
    if "shared_experts" in modules and moe is not None and not moe.shared_experts:
        return [Finding(KEY, "shared_experts recomputes the shared experts: model.moe.shared_experts is 0",
                        ("model.moe.shared_experts",))]
    if "mlp" in modules and m.parallel_block:
        return [Finding(KEY, "mlp checkpoints Megatron-Core's MLP module, which a parallel block does not have (its "
                             "attention and MLP are one block)", ("model.parallel_block",))]
    if "mla_up_proj" in modules and m.attention != "mla":
        return [Finding(KEY, "mla_up_proj recomputes multi-latent attention's up-projections: model.attention is "
                             f"{m.attention}, not mla", ("model.attention",))]
    if "moe" in modules and getattr(p, "moe_a2a_overlap", False):
        return [Finding(KEY, "moe cannot be recomputed with parallelism.moe_a2a_overlap (Megatron-Core: disable moe "
                             "in recompute_modules when enabling overlap_moe_expert_parallel_comm)",
                        ("parallelism.moe_a2a_overlap",))]
    return []
