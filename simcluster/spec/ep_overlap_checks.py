"""Checks of ``parallelism.moe_a2a_overlap`` and ``parallelism.delay_wgrad_compute``.

They mirror Megatron-Core's own (``TransformerConfig.__post_init__``, megatron/core/transformer/transformer_config.py:
``overlap_moe_expert_parallel_comm`` needs expert parallelism, the alltoall or flex dispatcher, a virtual pipeline
when ``pipeline_model_parallel_size > 1``, no full recompute and at most one MTP layer; ``delay_wgrad_compute`` needs
``overlap_moe_expert_parallel_comm``), plus what the simulator does not model: ZeRO-3's weight gathers inside a merged
pair (Megatron-FSDP).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simcluster.spec.finding import Finding

if TYPE_CHECKING:
    from simcluster.spec.workload import WorkloadSpec

KEY = "parallelism.moe_a2a_overlap"


def ep_overlap_checks(spec: "WorkloadSpec") -> list[Finding]:
    """The problems of the EP all-to-all overlap keys of ``spec`` (empty when they are off or possible)."""
    p, m, tr = spec.parallelism, spec.model, spec.training
    if getattr(p, "delay_wgrad_compute", False) and not getattr(p, "moe_a2a_overlap", False):
        return [Finding("parallelism.delay_wgrad_compute", "delays the weight gradients of the merged forward and "
                        "backward passes: it needs moe_a2a_overlap: true", (KEY,))]
    if not getattr(p, "moe_a2a_overlap", False):
        return []
    if tr.framework != "megatron":
        return [Finding(KEY, f"is Megatron-Core's overlap; framework {tr.framework} has none", ("training.framework",))]
    if m.moe is None or p.expert < 2:
        return [Finding(KEY, "overlaps the expert-parallel all-to-alls: it needs model.moe and parallelism.expert > 1",
                        ("parallelism.expert", "model.moe"))]
    if p.pipeline > 1 and p.schedule != "interleaved":
        return [Finding(KEY, f"with pipeline {p.pipeline} needs the interleaved schedule (Megatron-Core asks for a "
                        f"virtual pipeline), not {p.schedule}", ("parallelism.schedule", "parallelism.virtual_stages"))]
    if p.pipeline == 1 and p.schedule != "1f1b":
        return [Finding(KEY, f"without pipelining runs Megatron-Core's merged 1F1B, not schedule {p.schedule}",
                        ("parallelism.schedule",))]
    if tr.recompute == "full":
        return [Finding(KEY, "cannot merge passes that recompute whole layers (Megatron-Core refuses full "
                        "recompute with it)", ("training.recompute",))]
    if p.zero_stage >= 3:
        return [Finding(KEY, "with zero_stage 3 (weights gathered inside the merged passes) is not modelled",
                        ("parallelism.zero_stage",))]
    if m.mtp_layers > 1:
        return [Finding(KEY, f"supports at most one MTP layer (Megatron-Core), got {m.mtp_layers}",
                        ("model.mtp_layers",))]
    return []
