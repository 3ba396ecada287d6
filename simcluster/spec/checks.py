"""Cross-field checks of a workload: is the parallel layout possible on this model and cluster?

Each problem is a (dotted key, reason) pair; the key is the one most worth looking at
(``parallelism.tensor`` when tensor does not divide heads), so that the loader can print
its line. The rules come from the contract; the Megatron-LM constraints they mirror are
in Narayanan et al., "Efficient Large-Scale Language Model Training on GPU Clusters
Using Megatron-LM" (SC'21), sections 2 and 3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simcluster.catalogue import FP8_PEAK_FLOPS, HOPPER_DEVICES
from simcluster.spec.ep_overlap_checks import ep_overlap_checks
from simcluster.spec.finding import Finding
from simcluster.spec.recompute_checks import recompute_modules_checks

if TYPE_CHECKING:
    from simcluster.spec.workload import WorkloadSpec

__all__ = ["Finding", "SINGLE_CHUNK_SCHEDULES", "check_workload"]

#: Schedules that run one model chunk per pipeline rank.
SINGLE_CHUNK_SCHEDULES = ("gpipe", "1f1b", "zero-bubble", "dualpipe")


def _model_checks(spec: "WorkloadSpec") -> list[Finding]:
    m, t = spec.model, spec.parallelism.tensor
    # filled in by ModelSpec's validator, so never None here
    kv = m.kv_heads if m.kv_heads is not None else m.heads
    ffn = m.ffn_hidden if m.ffn_hidden is not None else 4 * m.hidden
    found: list[Finding] = []
    if m.head_dim is None and m.hidden % m.heads:
        found.append(Finding("model.heads", f"heads {m.heads} does not divide hidden {m.hidden}", ("model.hidden",)))
    if m.heads % kv:
        found.append(Finding("model.kv_heads", f"kv_heads {kv} does not divide heads {m.heads}", ("model.heads",)))
    if m.heads % t:
        found.append(Finding("parallelism.tensor", f"tensor {t} does not divide heads {m.heads}", ("model.heads",)))
    if kv >= t and kv % t and kv != m.heads:  # (kv == heads: the heads message says it)
        found.append(Finding("parallelism.tensor", f"tensor {t} does not divide kv_heads {kv}", ("model.kv_heads",)))
    elif kv < t and t % kv:  # fewer K/V heads than ranks: each is replicated t/kv times
        found.append(Finding("parallelism.tensor", f"kv_heads {kv} does not divide tensor {t} (fewer K/V heads "
                                                   "than tensor ranks are replicated evenly)", ("model.kv_heads",)))
    if ffn % t:
        found.append(Finding("parallelism.tensor", f"tensor {t} does not divide ffn_hidden {ffn}", ("model.ffn_hidden",)))
    if m.parallel_block_norms != 1 and not m.parallel_block:
        found.append(Finding("model.parallel_block_norms", "needs model.parallel_block: true", ("model.parallel_block",)))
    if m.parallel_block_norms != 1 and t > 1 and (spec.parallelism.sequence_parallel or spec.parallelism.tp_comm_overlap):
        found.append(Finding("model.parallel_block_norms", "two LayerNorms are not modelled with sequence_parallel or "
                             "tp_comm_overlap", ("parallelism.sequence_parallel", "parallelism.tp_comm_overlap")))
    if getattr(m, "post_norms", False):
        for key, on, what in (("model.parallel_block", m.parallel_block, "a parallel block"),
                              ("model.attention", m.attention == "mla", "latent attention"),
                              ("model.moe", m.moe is not None, "experts")):
            if on:
                found.append(Finding("model.post_norms", f"Gemma's sandwich norms are not modelled with {what}",
                                     (key,)))
    if getattr(m, "qk_norm", False) and m.attention == "mla":
        found.append(Finding("model.qk_norm", "latent attention normalises its own q and kv latents (model.mla); "
                             "qk_norm is for multi-head attention", ("model.attention",)))
    window = getattr(m, "sliding_window", None)
    every = getattr(m, "full_attention_every", None)
    if every is not None and window is None:
        found.append(Finding("model.full_attention_every", "needs model.sliding_window (the other layers' window)",
                             ("model.sliding_window",)))
    elif every is not None and every > m.layers:
        found.append(Finding("model.full_attention_every", f"{every} is more than the model's {m.layers} layers: no "
                             "layer would attend over the whole prefix (leave it out for a window on every layer)",
                             ("model.layers",)))
    if window is not None and window < m.seq_len:
        if m.attention == "mla":
            found.append(Finding("model.sliding_window", "a window over latent attention is not modelled",
                                 ("model.attention",)))
        if spec.parallelism.context > 1:
            found.append(Finding("model.sliding_window", "a window under context parallelism is not modelled (each "
                                 "ring step would skip the chunks outside it)", ("parallelism.context",)))
    return found


def _stage_checks(spec: "WorkloadSpec") -> list[Finding]:
    p, layers = spec.parallelism, spec.model.layers
    stages = p.pipeline * p.virtual_stages
    found: list[Finding] = []
    if stages > layers and p.stage_layers is None:
        what = f"pipeline {p.pipeline}" + (f" × virtual_stages {p.virtual_stages}" if p.virtual_stages > 1 else "")
        found.append(Finding("parallelism.pipeline", f"{what} = {stages} stages, more than the model's {layers} layer{'s' if layers != 1 else ''}",
                             ("parallelism.virtual_stages", "model.layers")))
    if p.stage_layers is not None:
        if len(p.stage_layers) != stages:
            found.append(Finding(
                "parallelism.stage_layers",
                f"has {len(p.stage_layers)} entries; needs one per stage (pipeline × virtual_stages = {stages})",
                ("parallelism.pipeline", "parallelism.virtual_stages"),
            ))
        if sum(p.stage_layers) != layers:
            found.append(Finding("parallelism.stage_layers", f"sums to {sum(p.stage_layers)}; needs model.layers = {layers}",
                                 ("model.layers",)))
        inner = [k for k, n in enumerate(p.stage_layers) if n == 0 and 0 < k < len(p.stage_layers) - 1]
        if inner:
            found.append(Finding("parallelism.stage_layers", f"entry {inner[0]} is 0; only the first chunk (the "
                                 "embedding's) and the last (the output's) may hold no layer"))
        if len(p.stage_layers) == stages:
            held = [sum(p.stage_layers[c * p.pipeline + s] for c in range(p.virtual_stages)) for s in range(p.pipeline)]
            held[-1] += spec.model.mtp_layers  # the multi-token-prediction modules' layers go on the last stage
            if 0 in held:
                found.append(Finding("parallelism.stage_layers", f"pipeline stage {held.index(0)} holds no layer"))
    if spec.model.seq_len % p.context:
        found.append(Finding("parallelism.context", f"context {p.context} does not divide seq_len {spec.model.seq_len}",
                             ("model.seq_len",)))
    if p.sequence_parallel and spec.model.seq_len % p.tensor:
        found.append(Finding(
            "parallelism.sequence_parallel",
            f"sequence parallelism needs tensor {p.tensor} to divide seq_len {spec.model.seq_len}",
            ("parallelism.tensor", "model.seq_len"),
        ))
    return found


def _layout_checks(spec: "WorkloadSpec") -> list[Finding]:
    p, tr, cluster = spec.parallelism, spec.training, spec.cluster
    gpus = cluster.num_gpus
    nodes = f"{cluster.nodes} node" + ("s" if cluster.nodes != 1 else "")
    have = f"the cluster's {gpus} GPUs ({nodes} × {cluster.gpus_per_node})"
    rest = p.tensor * p.pipeline * p.context
    if p.data is None:
        return [Finding(
            "parallelism.data",
            f"not given, and {have} do not divide evenly by tensor × pipeline × context = {rest}",
            ("parallelism.tensor", "parallelism.pipeline", "parallelism.context", "cluster.nodes", "cluster.devices"),
        )]
    found = []
    if spec.num_gpus > gpus:
        found.append(Finding(
            "parallelism.data",
            f"tensor × pipeline × data × context = {p.tensor}×{p.pipeline}×{p.data}×{p.context} = "
            f"{spec.num_gpus} GPUs, more than {have}",
            ("parallelism.tensor", "parallelism.pipeline", "parallelism.context", "cluster.nodes", "cluster.devices"),
        ))
    per_step = tr.micro_batch * p.data
    if tr.global_batch % per_step:
        found.append(Finding(
            "training.global_batch",
            f"{tr.global_batch} is not a multiple of micro_batch × data = {tr.micro_batch}×{p.data} = {per_step}",
            ("training.micro_batch", "parallelism.data"),
        ))
    elif p.schedule == "interleaved" and spec.num_microbatches % p.pipeline:
        found.append(Finding(
            "parallelism.schedule",
            f"interleaved needs the number of microbatches ({spec.num_microbatches}) "
            f"to be a multiple of pipeline ({p.pipeline})",
            ("parallelism.virtual_stages", "parallelism.pipeline", "training.global_batch"),
        ))
    return found


def _schedule_checks(spec: "WorkloadSpec") -> list[Finding]:
    p = spec.parallelism
    if p.schedule == "interleaved" and p.virtual_stages < 2:
        return [Finding("parallelism.schedule", f"interleaved needs virtual_stages >= 2, got {p.virtual_stages}",
                        ("parallelism.virtual_stages",))]
    if p.schedule in SINGLE_CHUNK_SCHEDULES and p.virtual_stages > 1:
        return [Finding(
            "parallelism.virtual_stages",
            f"{p.virtual_stages} model chunks per rank need schedule interleaved, not {p.schedule}",
            ("parallelism.schedule",),
        )]
    return []


def _fidelity_checks(spec: "WorkloadSpec") -> list[Finding]:
    """``fidelity: symmetric`` simulates one GPU per stage: only for clusters whose ranks are alike."""
    c = spec.cluster
    if spec.fidelity in ("symmetric", "partial") and getattr(c, "uneven_node", False):
        return [Finding("fidelity", f"{spec.fidelity} lets one GPU stand for its peers, but the 8-GPU nvlink-mesh "
                                    "(DGX-1 hybrid cube-mesh) links GPU pairs with 1 or 2 NVLinks, so peers move data "
                                    "at different speeds; use full or auto", ("cluster.intra_node.fabric",))]
    if spec.fidelity != "symmetric" or not getattr(c, "heterogeneous", False):
        return []
    why = [what for what, present in (("stragglers", c.stragglers), ("degraded links", c.degraded_links),
                                      ("failed links", c.failed_links),
                                      ("mixed devices", c.node_devices),
                                      ("an explicit graph (not assumed symmetric)", c.graph is not None)) if present]
    return [Finding("fidelity", f"symmetric simulates one GPU per stage and cannot simulate {' or '.join(why)}; "
                                "use full or auto", ("cluster.stragglers", "cluster.degraded_links", "cluster.node_devices",
                                                    "cluster.graph"))]


def _shard_checks(spec: "WorkloadSpec") -> list[Finding]:
    p = spec.parallelism
    if p.zero_shard is None:
        return []
    if p.zero_stage == 0:
        return [Finding("parallelism.zero_shard", "needs zero_stage 1, 2 or 3 (it sizes the ZeRO shard groups)",
                        ("parallelism.zero_stage",))]
    d = p.data or 1
    if d % p.zero_shard:
        return [Finding("parallelism.zero_shard", f"zero_shard {p.zero_shard} does not divide data {d}",
                        ("parallelism.data",))]
    return []


def _precision_checks(spec: "WorkloadSpec") -> list[Finding]:
    """``training.precision: fp8`` needs FP8 tensor cores on every device (H100, H200, H800)."""
    if getattr(spec.training, "precision", None) != "fp8":  # (the layout search passes partial stand-ins)
        return []
    c = spec.cluster
    devices = (c.device, *getattr(c, "node_devices", {}).values())
    lacking = sorted({d.name for d in devices if d.name not in FP8_PEAK_FLOPS})
    if not lacking:
        return []
    return [Finding("training.precision", f"fp8 needs FP8 tensor cores ({', '.join(sorted(FP8_PEAK_FLOPS))}); "
                                          f"{', '.join(lacking)} has none: use bf16", ("cluster.device",))]


def _stack_checks(spec: "WorkloadSpec") -> list[Finding]:
    """``parallelism.overlap_p2p_comm: true`` where the stack cannot overlap its pipeline sends;
    ``parallelism.tp_comm_overlap: true`` outside Megatron's sequence-parallel tensor groups;
    ``training.fused_kernels: false`` outside Megatron's model code; ``training.attention_kernel: fa3``
    off Hopper."""
    p = spec.parallelism
    fw = getattr(spec.training, "framework", "megatron")
    if getattr(spec.training, "fused_kernels", None) is False and fw not in ("megatron", "deepspeed", "pytorch"):
        return [Finding("training.fused_kernels", f"false describes Megatron-LM's 2019 layer code; {fw} runs its "
                                                  "own kernels", ("training.framework",))]
    if fw == "pytorch" and getattr(spec.model, "attention", "mha") == "mla":
        return [Finding("training.framework", "pytorch's eager kernels (costs/eager.py) are listed for standard "
                                              "attention; multi-head latent attention runs under megatron",
                        ("model.attention",))]
    if getattr(spec.training, "grad_reduce_in_bf16", False) and (fw != "megatron" or spec.training.precision not in (
            "bf16", "fp8")):
        return [Finding("training.grad_reduce_in_bf16", "describes Megatron's bf16 gradient buffer under bf16 or fp8 "
                                                        "(framework megatron)", ("training.framework", "training.precision"))]
    if getattr(spec.training, "recompute_num_layers", None) is not None and spec.training.recompute != "full":
        return [Finding("training.recompute_num_layers", "says how many layers of each chunk full recompute "
                                                         "recomputes: it needs recompute: full", ("training.recompute",))]
    saves = getattr(spec.training, "recompute_saves", None)
    if saves is not None and (spec.training.recompute != "selective" or spec.model.attention == "mla"):
        return [Finding("training.recompute_saves", "names what selective recompute keeps: it needs recompute: "
                                                    "selective and the standard attention (not mla)",
                        ("training.recompute", "model.attention"))]
    if getattr(spec.training, "fsdp_param_dtype", "bf16") == "fp32" and (
            fw != "pytorch" or p.zero_stage < 3 or spec.training.precision not in ("bf16", "fp16")):
        return [Finding("training.fsdp_param_dtype", "fp32 describes PyTorch FSDP (framework pytorch, zero_stage 3) "
                                                     "under bf16 or fp16 autocast",
                        ("training.framework", "parallelism.zero_stage", "training.precision"))]
    if getattr(spec.training, "gradient_accumulation_fusion", True) is False and fw != "megatron":
        return [Finding("training.gradient_accumulation_fusion", f"false describes Megatron-LM before Feb 2022; "
                                                                 f"{fw} accumulates gradients its own way",
                        ("training.framework",))]
    if getattr(spec.training, "attention_kernel", "auto") == "fa3":
        c = spec.cluster
        lacking = sorted({d.name for d in (c.device, *getattr(c, "node_devices", {}).values())
                          if d.name not in HOPPER_DEVICES})
        if lacking:
            return [Finding("training.attention_kernel", f"fa3 (FlashAttention-3, cuDNN fused attention) needs "
                                                         f"Hopper ({', '.join(HOPPER_DEVICES)}); {', '.join(lacking)} "
                                                         "is not: use fa2 or auto", ("cluster.device",))]
    if getattr(spec.training, "fp8_weight_cache", False) and spec.training.precision != "fp8":
        return [Finding("training.fp8_weight_cache", "caches FP8 weights: it needs precision fp8",
                        ("training.precision",))]
    if getattr(spec.training, "fp8_param_gather", False) and (spec.training.precision != "fp8" or p.zero_stage < 1):
        return [Finding("training.fp8_param_gather", "gathers FP8 weights: it needs precision fp8 and a sharded "
                                                     "optimizer or FSDP (zero_stage >= 1)",
                        ("training.precision", "parallelism.zero_stage"))]
    if getattr(spec.training, "fp8_recipe", "delayed") != "delayed" and spec.training.precision != "fp8":
        return [Finding("training.fp8_recipe", "scales FP8 operands: it needs precision fp8", ("training.precision",))]
    if getattr(spec.training, "optimizer_dtype", "fp32") == "bf16" and (
            fw != "megatron" or spec.training.precision not in ("bf16", "fp8") or p.zero_stage < 1):
        return [Finding("training.optimizer_dtype", "bf16 describes NeMo's distributed Adam in bf16: it needs framework "
                                                    "megatron, precision bf16 or fp8 and zero_stage >= 1",
                        ("training.framework", "training.precision", "parallelism.zero_stage"))]
    if getattr(spec.training, "cross_entropy", "auto") == "megatron_fused" and fw != "megatron":
        return [Finding("training.cross_entropy", f"megatron_fused is Megatron-Core's fused cross-entropy; {fw} "
                                                  "computes its loss its own way (auto, or fused for flash-attn's)",
                        ("training.framework",))]
    if getattr(p, "overlap_param_gather", False) and p.zero_stage not in (1, 2):
        return [Finding("parallelism.overlap_param_gather", f"overlaps the weight all-gather after a ZeRO-1/2 "
                                                            f"optimizer step; zero_stage {p.zero_stage} has none",
                        ("parallelism.zero_stage",))]
    if getattr(p, "tp_comm_overlap", False) and (fw != "megatron" or p.tensor < 2 or not p.sequence_parallel):
        return [Finding("parallelism.tp_comm_overlap", "describes Transformer Engine's userbuffers overlap: it needs "
                                                       "framework megatron, tensor > 1 and sequence_parallel: true",
                        ("training.framework", "parallelism.tensor", "parallelism.sequence_parallel"))]
    if getattr(p, "defer_embedding_wgrad_compute", False) and (fw != "megatron" or p.pipeline < 2):
        return [Finding("parallelism.defer_embedding_wgrad_compute",
                        "describes Megatron-Core's deferral of the output layer's weight gradient to the pipeline "
                        "flush: it needs framework megatron and pipeline > 1",
                        ("training.framework", "parallelism.pipeline"))]
    if getattr(p, "overlap_p2p_comm", None) is not True:  # (the layout search passes partial stand-ins)
        return []
    if fw == "deepspeed":
        return [Finding("parallelism.overlap_p2p_comm", "DeepSpeed's pipeline engine sends blocking; use false "
                                                        "or leave it out", ("training.framework",))]
    if fw == "megatron" and p.schedule not in ("interleaved", "dualpipe"):
        return [Finding("parallelism.overlap_p2p_comm", f"Megatron-LM overlaps pipeline sends only in the "
                                                        f"interleaved schedule, not {p.schedule}",
                        ("parallelism.schedule",))]
    return []


def check_workload(spec: "WorkloadSpec") -> list[Finding]:
    """Every cross-field problem of ``spec``; empty when the layout is possible."""
    return (_model_checks(spec) + _stage_checks(spec) + _schedule_checks(spec) + _layout_checks(spec)
            + _fidelity_checks(spec) + _shard_checks(spec) + _precision_checks(spec) + _stack_checks(spec)
            + recompute_modules_checks(spec) + ep_overlap_checks(spec))
