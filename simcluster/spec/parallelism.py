"""The ``parallelism`` section of a workload file: the parallel layout (tensor, pipeline, data, context
and expert degrees, schedule, ZeRO, communication overlaps). Validated by :class:`ParallelismSpec`; the
workload (:mod:`simcluster.spec.workload`) checks it against the model and the cluster."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from simcluster.spec.fields import MAX_DEVICES, STRICT, BucketBytes, PositiveInt, ScheduleName


class ParallelismSpec(BaseModel):
    """The parallel layout. ``data`` is filled from the cluster when omitted.

    ``virtual_stages > 1`` with no ``schedule`` given selects the interleaved schedule.
    """

    model_config = STRICT
    tensor: PositiveInt = Field(default=1, le=MAX_DEVICES, description="Tensor-parallel degree t (Megatron column/row split).")
    pipeline: PositiveInt = Field(default=1, le=MAX_DEVICES, description="Pipeline stages p; layers need not divide evenly.")
    data: PositiveInt | None = Field(default=None, le=MAX_DEVICES, description="Data-parallel degree d.",
                                     json_schema_extra={"default_doc": "GPUs / (tensor × pipeline × context)"})
    context: PositiveInt = Field(default=1, le=MAX_DEVICES, description="Context-parallel degree c: the sequence split over c GPUs; "
                                 "must divide seq_len.")
    sequence_parallel: bool = Field(default=False, description="Megatron sequence parallelism inside the tensor group: "
                                    "all-gather and reduce-scatter instead of all-reduce.")
    virtual_stages: PositiveInt = Field(default=1, le=100_000, description="Model chunks per pipeline rank v; more than 1 selects "
                                        "the interleaved schedule when none is given.")
    stage_layers: list[Annotated[int, Field(ge=0, le=100_000)]] | None = Field(
        default=None, description="Layers per chunk, one entry per pipeline × virtual_stages, summing to model.layers; "
        "the first and last chunk may hold none (they hold the embedding and the output; Llama 3 405B §3.3.2).",
        json_schema_extra={"default_doc": "as even as possible"})
    schedule: ScheduleName = Field(default="1f1b", description="Pipeline schedule; interleaved needs virtual_stages "
                                   "≥ 2 and microbatches a multiple of pipeline.")
    zero_stage: Annotated[int, Field(ge=0, le=3)] = Field(default=0, description="ZeRO sharding over data × context: "
                                                          "1 optimizer states, 2 also gradients, 3 also weights.")
    zero_shard: PositiveInt | None = Field(
        default=None, le=1_000_000, description="Hybrid sharding: ZeRO shards over groups of this many data-parallel "
        "ranks (consecutive, e.g. one TPU pod or node group) and replicates across the groups, whose gradient "
        "shards are then all-reduced (PaLM: 256-way within a pod, 2-way across; PyTorch HSDP). Must divide data.",
        json_schema_extra={"default_doc": "data (the whole group)"})
    expert: PositiveInt = Field(default=1, le=MAX_DEVICES, description="Expert-parallel degree: the routed experts "
                                "split over this many ranks of a pipeline stage (must divide model.moe.experts).")
    expert_tensor: PositiveInt | None = Field(
        default=None, le=MAX_DEVICES, description="Tensor parallelism inside an expert; expert_tensor × expert must "
        "divide tensor × context × data, the rest is expert-data parallelism (Megatron-Core).",
        json_schema_extra={"default_doc": "tensor"})
    overlap_grad_reduce: bool = Field(default=True, description="Reduce each gradient bucket as soon as the last "
                                      "microbatch's backward fills it; false: after the whole backward.")
    grad_bucket_bytes: BucketBytes = Field(default=25e6, description="Data-parallel gradient "
                                                             "bucket size.")
    overlap_p2p_comm: bool | None = Field(
        default=None, description="Pipeline sends run beside the next unit's compute (Megatron-LM's "
        "--overlap-p2p-communication, interleaved schedule only); false: a send holds its stage until delivered "
        "(Megatron-LM before Oct 2023, DeepSpeed's pipeline engine).",
        json_schema_extra={"default_doc": "the framework's: megatron on for interleaved, off otherwise; deepspeed "
                           "off; pytorch and jax on"})
    overlap_param_gather: bool = Field(
        default=False, description="With zero_stage 1 or 2, the updated weights' all-gather runs beside the next "
        "forward, each layer waiting for its own (Megatron-LM's --overlap-param-gather, NeMo's overlap_param_sync), "
        "not after the optimizer step: one layer ahead, or under the interleaved schedule chunk by chunk, aligned "
        "across the stages.")
    defer_embedding_wgrad_compute: bool = Field(
        default=False, description="The output layer's weight-gradient GEMM of the first wgrad_deferral_limit "
        "microbatches runs at the pipeline flush on the last stage, its inputs and output gradients held until then "
        "(Megatron-Core's defer_embedding_wgrad_compute, NeMo's recipes); needs framework megatron and pipeline > 1.")
    wgrad_deferral_limit: Annotated[int, Field(ge=0, le=10_000_000)] = Field(
        default=0, description="Microbatches whose output-layer weight gradient defer_embedding_wgrad_compute defers "
        "(the first ones); 0: all of them.")
    tp_comm_overlap: bool = Field(
        default=False, description="Tensor-parallel collectives overlapped with the GEMMs beside them (Transformer "
        "Engine's userbuffers, Megatron-LM's --tp-comm-overlap, NeMo's ub_tp_comm_overlap): the forward all-gather "
        "runs under the block's compute, the forward reduce-scatter under it in num_splits chunks with the last "
        "exposed, the backward's all-gather and reduce-scatter under the backward's GEMMs; needs framework megatron, "
        "tensor > 1 and sequence_parallel.")
    tp_grad_overlap: bool | None = Field(
        default=None, description="In the backward, each column-parallel linear layer's input-gradient reduction "
        "(all-reduce, or reduce-scatter with sequence_parallel) runs beside its weight-gradient GEMM, and with "
        "sequence_parallel the saved input's all-gather beside its data-gradient GEMM (Megatron-LM's "
        "--async-tensor-model-parallel-allreduce since Aug 2021, Transformer Engine's Linear); false: each "
        "reduction after the block's backward, blocking.",
        json_schema_extra={"default_doc": "the framework's: megatron on, others off"})
    moe_dispatcher: Literal["alltoall", "deepep", "hybridep"] = Field(
        default="alltoall", description="How a mixture of experts' tokens reach their experts: alltoall, NCCL's "
        "all-to-all (Megatron-Core's --moe-token-dispatcher-type alltoall), every routed copy sent on its own and, with "
        "more than one expert a rank, sorted by local expert on arrival and back; deepep or hybridep "
        "(--moe-token-dispatcher-type flex with that --moe-flex-dispatcher-backend), a token sent to another node once "
        "and forwarded over NVLink there, to each rank holding one of its experts once.")
    moe_a2a_overlap: bool = Field(
        default=False, description="Megatron-Core's expert-parallel all-to-all overlap (--overlap-moe-expert-parallel-"
        "comm, Megatron-Bridge's moe_a2a_overlap): in the 1F1B steady state one microbatch's forward and another's "
        "backward run merged layer by layer, each one's dispatch and combine beside the other's compute, after one "
        "more warm-up forward; needs framework megatron, model.moe with expert > 1, the interleaved schedule when "
        "pipeline > 1 (1f1b without pipelining) and no full recompute.")
    delay_wgrad_compute: bool = Field(
        default=False, description="With moe_a2a_overlap, a merged backward's weight-gradient GEMMs run after its "
        "input gradients are sent on: the experts' after the dispatch's backward is issued, the attention block's at "
        "the end of the layer pair (Megatron-Core's --delay-wgrad-compute).")
    p2p_scatter_gather: bool | None = Field(
        default=None, description="Each tensor rank sends 1/tensor of the activation and the receiving stage "
        "all-gathers it over the tensor group (Megatron-LM before Megatron-Core, Jan 2023; DeepSpeed's pipeline "
        "engine); false: every tensor rank sends all of it. Sequence parallelism sends 1/tensor either way.",
        json_schema_extra={"default_doc": "the framework's: deepspeed on, others off"})

    @model_validator(mode="after")
    def _interleave(self) -> "ParallelismSpec":
        if self.virtual_stages > 1 and "schedule" not in self.model_fields_set:
            self.schedule = "interleaved"
        return self
