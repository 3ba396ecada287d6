"""The output layer's weight gradient deferred to the pipeline flush (``parallelism.defer_embedding_wgrad_compute``).

Source: Megatron-Core core_r0.9.0. ``LinearWithGradAccumulationAndAsyncCommunication.backward``
(tensor_parallel/layers.py) skips the weight-gradient GEMM of the output layer on the last pipeline stage while
fewer than ``wgrad_deferral_limit`` microbatches are buffered (0: always), appending the layer's input to
``embedding_activation_buffer`` and its output gradient to ``grad_output_buffer``; after the schedule's last
backward ``finish_embedding_wgrad_compute`` (pipeline_parallel/schedules.py) calls
``drain_embedding_wgrad_compute`` (utils.py), which runs the buffered GEMMs one after another, each
microbatch's sequence-parallel input all-gathered over the tensor group while the previous GEMM runs
(double-buffered), and only then ``finalize_model_grads`` reduces the gradients over data parallelism. NeMo's
recipes set it for the pipelined Llama 3.1 405B (limit 50 of 63 microbatches), 70B (22) and Nemotron-4 340B (22)
(NVIDIA/dgxc-benchmarking 35a9aec). The last stage, which carries the output layer and the loss besides its
layers, sheds that GEMM from its steady state and runs it in the flush, where it otherwise waits for the earlier
stages' last backwards.

Simulated: the head's backward of a deferred microbatch is its backward less the output GEMM's weight gradient
(:meth:`simcluster.plan.plan.Plan.deferred_wgrad`); after the stage's last unit one all-gather of a microbatch's
input (with sequence parallelism) and one compute task of all the deferred GEMMs, which produces the head's
gradients for the data-parallel reduction. Memory: the buffered inputs and output gradients of the deferred
microbatches on the last stage (:func:`held_bytes`).
"""

from __future__ import annotations

from simcluster.spec.parallelism import ParallelismSpec
from simcluster.spec.training import TrainingSpec
from simcluster.workload import DTYPE_BYTES

#: The output layer's GEMM in the head block (:mod:`simcluster.workload.graph`).
OUTPUT_GEMM = "logits"


def deferred_count(parallelism: ParallelismSpec, microbatches: int, pipeline: int | None = None) -> int:
    """Microbatches of ``microbatches`` whose output-layer weight gradient is deferred: the first
    ``wgrad_deferral_limit`` (all with 0); 0 when the option is off or without a pipeline (``pipeline``: the
    layout's stages, the workload's by default)."""
    stages = parallelism.pipeline if pipeline is None else pipeline
    if not parallelism.defer_embedding_wgrad_compute or stages < 2:
        return 0
    limit = parallelism.wgrad_deferral_limit
    return microbatches if limit == 0 else min(limit, microbatches)


def deferred(training: TrainingSpec, parallelism: ParallelismSpec) -> int:
    """:func:`deferred_count` of the step's microbatches per pipeline (``WorkloadSpec.num_microbatches``)."""
    microbatches = training.global_batch // (training.micro_batch * (parallelism.data or 1))
    return deferred_count(parallelism, max(1, microbatches))


def held_bytes(model_seq: int, hidden: int, vocab: int, training: TrainingSpec, parallelism: ParallelismSpec) -> float:
    """Bytes the last stage holds for the deferred GEMMs at the flush: each deferred microbatch's input
    (b·s/c·h, split over the tensor ranks with sequence parallelism) and output gradient (b·s/c·V/t)."""
    n = deferred(training, parallelism)
    if not n:
        return 0.0
    t, b, c = parallelism.tensor, training.micro_batch, parallelism.context
    dt = DTYPE_BYTES[training.precision]
    tokens = b * model_seq / c
    x = tokens * hidden / (t if parallelism.sequence_parallel else 1)
    return n * dt * (x + tokens * vocab / t)
