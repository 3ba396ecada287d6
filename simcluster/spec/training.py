"""The ``training`` section of a workload file: one training iteration (batch, precision, optimizer,
recomputation, and the stack's kernels and mechanisms). Validated by :class:`TrainingSpec`; the workload
(:mod:`simcluster.spec.workload`) checks it against the model and the layout."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from simcluster.catalogue import Framework, Optimizer, Precision, Recompute
from simcluster.spec.fields import STRICT, PositiveInt, StepSeconds


class TrainingSpec(BaseModel):
    """One training iteration: batch sizes, numeric precision, optimizer, recomputation."""

    model_config = STRICT
    global_batch: PositiveInt = Field(le=100_000_000, description="Sequences per iteration; a multiple of micro_batch × data.")
    micro_batch: PositiveInt = Field(default=1, le=1_000_000, description="Sequences per microbatch on one pipeline.")
    precision: Precision = Field(default="bf16", description="Numeric precision; bf16 and fp16 are mixed precision "
                                 "(fp32 master weights and optimizer states); fp8 (H100, H200, H800) runs the GEMMs "
                                 "in FP8 with fine-grained scaling and everything else in bf16, caches the GEMM "
                                 "inputs in FP8 and keeps Adam's moments in bf16 (DeepSeek-V3 §3.3).")
    optimizer: Optimizer = Field(default="adam", description="Adam (two fp32 states per parameter) or SGD with "
                                 "momentum (one).")
    recompute: Recompute = Field(default="none", description="Activation recomputation: selective recomputes the "
                                 "attention core (under mla with the up-projections; Megatron-Core: the modules "
                                 "recompute_modules names), full the whole layer, before its backward.")
    recompute_saves: list[Literal["qkv", "proj", "fc1", "fc2", "attention"]] | None = Field(
        default=None, description="With recompute: selective, the layer outputs the checkpoint keeps; the rest of the "
        "layer's forward (the other GEMMs, the attention core unless listed, every memory-bound kernel) runs again "
        "before its backward, as a name-based policy does (MaxText's remat_policy save_dot_except_mlpwi or custom "
        "with query/key/value/out_proj and mlpwo on device: [qkv, proj, fc2]; JAX's save_only_these_names). "
        "Unset: the framework's selective recompute (Megatron's attention core; pytorch: torchtitan's op SAC).",
        json_schema_extra={"default_doc": "the framework's"})
    recompute_modules: list[Literal["core_attn", "layernorm", "moe_act", "mlp", "moe", "shared_experts",
                                    "mla_up_proj"]] | None = Field(
        default=None, description="With recompute: selective under megatron, the submodules Megatron-Core recomputes "
        "(--recompute-modules; TransformerConfig.recompute_modules), each checkpointed in the forward and run again "
        "before its backward: core_attn the attention core (the default); layernorm the norms that are modules of "
        "their own (the MoE layers' pre-MLP norm; under mla also the input norm), whose outputs are dropped "
        "(Megatron-Core's other norms are fused into Transformer Engine's next linear); moe_act the routed experts' "
        "activation, recomputed from the fc1 output; mlp the dense layers' MLP (with its tensor collectives); "
        "shared_experts the shared experts' MLP; moe the whole MoE module (router, dispatch, experts, combine; not "
        "with parallelism.moe_a2a_overlap); mla_up_proj multi-latent attention's latent norms and up-projections "
        "(Q, K, V dropped). Unset: [core_attn], and under mla the up-projections with it (DeepSeek-V3 §3.2.3).",
        json_schema_extra={"default_doc": "[core_attn] (mla: with the up-projections)"})
    recompute_num_layers: PositiveInt | None = Field(
        default=None, le=100_000, description="With recompute: full, only the first this many layers of each "
        "pipeline model chunk are recomputed; the chunk's other layers keep their activations (Megatron-Core "
        "--recompute-method block --recompute-num-layers N; NeMo's activations_checkpoint_method block). Trades "
        "memory for compute between recompute none and full. Unset: every layer.",
        json_schema_extra={"default_doc": "every layer"})
    grad_reduce_in_bf16: bool = Field(
        default=False, description="Megatron: the gradient buffer and its data-parallel reduction in bf16 instead of "
        "fp32 main_grad, the master weights and Adam states staying fp32 (Megatron-Core --grad-reduce-in-bf16; NeMo's "
        "distributed_fused_adam with grad_sync_dtype: bf16 and the default fp32 dtype). optimizer_dtype: bf16 implies it.")
    distribute_saved_activations: bool = Field(
        default=False, description="Full recompute: each layer's saved input split over the tensor-parallel ranks "
        "and all-gathered before it is recomputed (Megatron-LM --distribute-saved-activations; PaLM §4 saves one "
        "fully sharded activation a layer). Sequence parallelism already splits it.")
    flash_attention: bool = Field(default=True, description="Fused attention kernel: the s² attention scores are "
                                  "never stored.")
    framework: Framework = Field(default="megatron", description="The software stack whose kernels, optimizer, "
                                 "ZeRO and pipeline behaviour are simulated (docs/model.md, 'Software stacks').")
    attention_kernel: Literal["auto", "fa1", "fa2", "fa3", "triton"] = Field(
        default="auto", description="The flash-attention kernel: fa2 is FlashAttention-2 (the flash_attn package, "
        "PyTorch SDPA's flash backend), fa3 FlashAttention-3 or cuDNN's fused attention (Transformer Engine, SDPA's "
        "cuDNN backend; Hopper only), about 1.6x faster than fa2 on H100/H200; triton the 2022 FlashAttention in "
        "Triton (llm-foundry's attn_impl: triton), 1.4x slower than fa2 forward and 2x backward; fa1 FlashAttention v1 "
        "(flash-attn < 2.0, Transformer Engine 0.x), 0.44 of fa2's speed; auto is the "
        "framework's on Hopper (megatron, jax: fa3; pytorch, deepspeed: fa2) and the device's own curve elsewhere.")
    cross_entropy: Literal["auto", "fused", "megatron_fused"] = Field(
        default="auto", description="The loss kernel: auto is the framework's (Megatron's vocab-parallel fp32 "
        "softmax, PyTorch's F.cross_entropy under autocast in fp32, XLA's fused one); fused is flash-attn's "
        "one-kernel cross-entropy over the 16-bit logits (llm-foundry's default loss_fn, TinyLlama): 2 B per "
        "logit read forward, 4 B backward, only the logits saved; megatron_fused is Megatron-Core's "
        "--cross-entropy-loss-fusion (NeMo's cross_entropy_loss_fusion; framework megatron): the same fp32 "
        "softmax in torch.compile'd kernels, 22 B per logit forward and 6 B backward instead of 38 and 14.")
    data_loading_wait: StepSeconds = Field(
        default=0.0, description="Seconds each step's GPUs idle while the host loads the batch: the trainer "
        "synchronizes with the GPU every step (a per-step loss.item(), as torchtitan's train.py until its commit "
        "5b2bb523 'remove .item() per iter', 2024-04-05) "
        "and then loads and tokenizes the next batch in its own process (a DataLoader without workers), so "
        "nothing hides the loading. Simulated as host work (the GPU idle, host_wait) before every GPU's first "
        "forward. 0: the loading is hidden (workers, prefetch, no per-step sync).")
    train_metrics: int = Field(
        default=0, ge=0, le=64, description="Cross-entropy train metrics the trainer computes over the logits after "
        "every microbatch (Composer: torch CrossEntropyLoss under autocast, an fp32 cast and log-softmax per "
        "metric); llm-foundry's MPT trains with 2 (LanguageCrossEntropy, LanguagePerplexity; use_train_metrics "
        "defaults to true). 0: none.")
    fp8_weight_cache: bool = Field(
        default=False, description="With precision fp8, each weight is quantized once per step and its FP8 copy "
        "reused by the later microbatches (Transformer Engine's is_first_microbatch, which Megatron-Core's TE "
        "layers pass); false: every FP8 GEMM quantizes its weight (DeepSeek-V3's 128x128 blocks as the "
        "simulator counts them).")
    fp8_param_gather: bool = Field(
        default=False, description="With precision fp8 and zero_stage >= 1, the weights are kept in FP8 and their "
        "data-parallel all-gather moves 1 byte per parameter instead of 2 (Megatron-LM's --fp8-param-gather: 'Keep "
        "the compute param in fp8 ... and perform the param all-gather in fp8'; NeMo's fp8_params, MLPerf's "
        "FP8_PARAMS; the distributed optimizer quantizes its updated shard).")
    fp8_recipe: Literal["delayed", "current", "blockwise", "te_blockwise"] = Field(
        default="delayed", description="With precision fp8, how operands are scaled: delayed is Transformer "
        "Engine's default DelayedScaling (one scale per tensor from past steps' amax, one cast kernel); current "
        "its Float8CurrentScaling (NeMo's FP8-CS: an amax pass, then the cast); both run cuBLASLt's FP8 GEMMs. "
        "blockwise is DeepSeek-V3's fine-grained scaling (1x128 activation tiles, 128x128 weight blocks) with "
        "its own FP8 GEMM kernels and BF16 optimizer moments; te_blockwise is Transformer Engine's "
        "Float8BlockScaling (Megatron-Core's --fp8-recipe blockwise): the same blocks, each tensor quantized once, "
        "cuBLASLt's block-scaled GEMMs, mixed-precision optimizer states.")
    optimizer_dtype: Literal["fp32", "bf16"] = Field(
        default="fp32", description="The optimizer states' dtype: bf16 keeps Adam's m and v (SGD's momentum) in bf16 "
        "with no fp32 master copy, the bf16 weights updated in place, and reduces gradients in bf16 (NeMo's "
        "distributed_fused_adam with dtype: bf16 and grad_sync_dtype: bf16): 2 + 2 + 4 B per parameter for Adam "
        "instead of 2 + 4 + 12 (Megatron's fp32 main_grad), states sharded over data parallelism; needs framework "
        "megatron, precision bf16 "
        "or fp8 and zero_stage >= 1.")
    fsdp_param_dtype: Literal["bf16", "fp32"] = Field(
        default="bf16", description="pytorch with ZeRO-3 (FSDP): the dtype FSDP gathers and computes the parameters "
        "in. bf16: param_dtype bf16 (torchtitan's FSDP2 MixedPrecisionPolicy; Composer's DEFAULT and PURE since "
        "March 2023): 16-bit all-gathers, no autocast casts, a 16-bit residual stream, fp32 gradient reduction. "
        "fp32: param_dtype fp32 under autocast (Lightning Fabric's and Trainer's bf16-mixed and 16-mixed since "
        "2.0.3; Composer's DEFAULT before March 2023): fp32 all-gathers, every GEMM casts its gathered weight each "
        "microbatch and keeps the cast for its backward, an fp32 residual stream (docs/model.md), gradients "
        "reduce-scattered in 16 bits.")
    gradient_accumulation_fusion: bool = Field(
        default=True, description="Megatron's weight-gradient GEMM accumulates into the fp32 main gradient "
        "(Megatron-LM Feb 2022 on); false: Megatron-LM before it, a separate add per weight and microbatch "
        "(bf16: the main_grad hook, 10 B per weight; fp16: autograd's in-place add, 6 B after the first "
        "microbatch). megatron only: the other stacks' accumulation is their own.")
    fused_kernels: bool | None = Field(
        default=None, description="Whether the model code runs fused kernels; unset is the framework's: megatron and "
        "deepspeed run Megatron's fused kernels (scale-mask-softmax, bias-GeLU, bias-dropout-add; Megatron-LM 2020 "
        "on), pytorch torchtitan-style eager code, jax XLA's fusions. false with megatron or deepspeed: Megatron-LM "
        "2019's layer of separate PyTorch ops and its synchronous CUDA RNG-state swaps around the dropout and activation "
        "checkpoints (with megatron in fp16 also its FP16_Optimizer's per-tensor loops: overflow check, gradient copies, "
        "unscale, clip norm); true with pytorch: fused model kernels as lit-gpt/TinyLlama run them "
        "(flash-attn's RMSNorm and rotary, xformers' SwiGLU; no repeat_kv).",
        json_schema_extra={"default_doc": "the framework's"})

    @property
    def recomputed_modules(self) -> frozenset[str]:
        """The Megatron-Core submodules selective recompute runs again (``recompute_modules``; unset: the attention
        core); empty unless ``recompute`` is selective."""
        if self.recompute != "selective":
            return frozenset()
        return frozenset(("core_attn",) if self.recompute_modules is None else self.recompute_modules)

    def selective_modules(self, attention: str) -> frozenset[str]:
        """The modules selective recompute runs again, whatever ``recompute`` says: Megatron-Core's
        ``recompute_modules``, or unset the attention core and, under ``attention`` mla, the up-projections (DeepSeek-V3
        §3.2.3). The one place the unset default is written."""
        if self.recompute_modules is not None:
            return frozenset(self.recompute_modules)
        return frozenset(("core_attn", "mla_up_proj") if attention == "mla" else ("core_attn",))
