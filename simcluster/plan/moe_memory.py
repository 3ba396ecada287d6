"""Peak memory of a pipeline stage of a mixture-of-experts model (:func:`moe_stage_memory`).

The MoE plan (:mod:`simcluster.plan.moe`) says what a layer's experts and dispatch hold; this module sums a stage's
weights, gradients, optimizer states, activations and dispatch buffers from it, beside the dense layers'
:func:`simcluster.costs.memory.stage_memory`.
"""

from __future__ import annotations

from simcluster.costs import moe as M
from simcluster.costs.memory import (MemoryBreakdown, activation_bytes_per_layer, mlp_bytes_per_f,
                                     largest_rerun_bytes, rerun_transient_bytes, stage_memory)
from simcluster.costs.model_states import held_bytes_per_param
from simcluster.plan.moe import MoePlan
from simcluster.workload.ops import DTYPE_BYTES


def moe_stage_memory(mp: MoePlan, layers: list[int], *, has_embedding: bool, has_logits: bool,
                     in_flight: int, recomputed: frozenset[int] | None = None) -> MemoryBreakdown:
    """Peak bytes on one GPU of a stage holding ``layers`` of an MoE model.

    The dense layers, embedding, head, workspace and pipeline buffers as
    :func:`simcluster.costs.memory.stage_memory`; each MoE layer adds its non-expert weights
    (ZeRO-1 shards their optimizer states over data × context) and its E/ep routed experts over
    etp (ZeRO-1 shards their states over the expert-data group), the activations of the dense
    layer with the MLP's replaced by the shared experts' and, per routed copy the busiest rank
    receives (skew included, microbatch 0's draws), its input and output (2·h each) and the
    expert MLP's (4 or 6)·f_e/etp bytes (Korthikanti et al. 2022 Table 2's MLP terms); the
    dispatch's send and receive buffers add 2·S. fp8 (DeepSeek-V3 §3.3.4): a routed copy's input
    is held in FP8 (1·h + 2·h) and the expert stores its SwiGLU's two inputs in FP8 (2·f_e/etp; GeLU: fc1
    output 2 + fc2 input 1), the product recomputed in the backward. ``recomputed``: the layers full recompute
    runs again when only some are (:mod:`simcluster.costs.partial_recompute`; None: the workload's recompute).
    """
    spec = mp.spec
    model, tr, par = spec.model, spec.training, spec.parallelism
    moe_layers = [i for i in layers if mp.is_moe(i)]
    dense_layers = [i for i in layers if not mp.is_moe(i)]
    rc_dense = None if recomputed is None else len(recomputed.intersection(dense_layers))
    if not moe_layers:
        return stage_memory(model, tr, par, layers_on_stage=len(dense_layers), has_embedding=has_embedding,
                            has_logits=has_logits, microbatches_in_flight=in_flight, recomputed_on_stage=rc_dense)
    n = len(moe_layers)
    w_b, g_b, o_b = held_bytes_per_param(tr, par)[:3]  # as the stack keeps them (costs.memory)
    z = par.zero_stage >= 1
    shard, eshard = ((par.data or 1) * par.context, mp.edp) if z else (1, 1)
    weights = n * (mp.dense_params + mp.routed_params) * w_b
    grads = n * (mp.dense_params + mp.routed_params) * g_b
    optim = n * (mp.dense_params * o_b / shard + mp.routed_params * o_b / eshard)
    v = DTYPE_BYTES[tr.precision] / 2
    h, f, t = model.hidden, mp.width, par.tensor
    moe = M.moe_of(model)
    per_f = mlp_bytes_per_f(model, tr.precision) * v
    fp8 = tr.precision == "fp8"
    # fp8, DeepSeek-V3 §3.3.4: the expert's input arrives in FP8 and the SwiGLU's inputs are cached in FP8 with
    # its output recomputed (2 bytes per f_e); its output stays 16-bit
    copy_h, routed_f = ((1.0 + 2 * v) * h, 2.0 if model.mlp == "swiglu" else 3.0) if fp8 else (4 * v * h, per_f)
    sbh = model.seq_len / par.context * tr.micro_batch * h

    r_max = max(mp.load(i, 0).r_max for i in moe_layers)

    def layer_act(recompute: str, modules: list[str] | None = None) -> float:
        listed = tr.recompute_modules if modules is None else modules
        if listed is not None and "mlp" in listed:  # inert on MoE layers (Megatron-Core: only a dense layer's MLP)
            listed = [m for m in listed if m != "mlp"]
        t_rc = tr if listed is tr.recompute_modules else tr.model_copy(update={"recompute_modules": listed})
        dense_act = activation_bytes_per_layer(model, t_rc, par, recompute=recompute)
        if recompute == "full":
            return dense_act
        # Megatron-Core's recompute_modules (selective): moe_act drops the activation's 16-bit output (fc2's input;
        # FP8 recomputes it already), layernorm the pre-MLP norm's output (the MoE's input, what the dense count holds
        # as the MLP's first GEMM input), shared_experts the shared experts' tensors, moe everything of the MoE
        # module but its input
        mods = t_rc.recomputed_modules if recompute == "selective" else frozenset()
        act_out = 2 * v if "moe_act" in mods and not fp8 else 0.0
        norm_out = (1.0 if fp8 else 2 * v) * sbh / (t if par.sequence_parallel and t > 1 else 1) \
            if "layernorm" in mods else 0.0
        # the dense MLP's bytes out, the shared experts' and the routed copies' in
        dense_mlp = model.ffn_hidden or 4 * h
        kept_shared = 0.0 if mods & {"moe", "shared_experts"} else moe.shared_experts * f
        routed = 0.0 if "moe" in mods else r_max * (copy_h + (routed_f - act_out) * f / mp.etp)
        return dense_act - norm_out + sbh * per_f * (kept_shared - dense_mlp) / h / t + routed
    held = None
    if tr.recompute == "selective":  # one recomputed module's tensors at a time, an MoE layer's or a dense one's
        # (costs.memory.rerun_transient_bytes): the stage's rerun moment, beside the loss's
        held = max(largest_rerun_bytes(sorted(tr.selective_modules(model.attention)),
                                       lambda mods: layer_act("selective", mods)),
                   rerun_transient_bytes(model, tr, par) if dense_layers else 0.0)
    dense = stage_memory(model, tr, par, layers_on_stage=len(dense_layers), has_embedding=has_embedding,
                         has_logits=has_logits, microbatches_in_flight=in_flight, rerun_bytes=held,
                         recomputed_on_stage=rc_dense)
    k = n if recomputed is None else len(recomputed.intersection(moe_layers))
    kept = tr.recompute if recomputed is None else "none"
    acts = (k * layer_act(tr.recompute) + (n - k) * layer_act(kept)) * in_flight
    buffers = 2 * mp.a2a_bytes
    return MemoryBreakdown(dense.weights + weights, dense.gradients + grads, dense.optimizer_states + optim,
                           dense.activations + acts, dense.buffers + buffers)
