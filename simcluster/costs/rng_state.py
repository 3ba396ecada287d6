"""Megatron-LM 2019's CUDA RNG-state swaps: synchronous copies of the generator state in every layer.

Megatron-LM as released for Shoeybi et al. 2019 (NVIDIA/Megatron-LM commit abe36e2, 2019-07-29,
``mpu/random.py``, ``mpu/transformer.py``) keeps a separate CUDA RNG state for the dropout inside the
model-parallel region and swaps it in around the attention-probability dropout of every layer
(``with get_cuda_rng_tracker().fork():``): ``fork`` reads the current state
(``torch.cuda.get_rng_state()``), sets the tracked one (``_set_cuda_rng_state``), and on exit reads it
back and restores the original — 2 reads and 2 writes per layer forward, run again by the recomputed
forward under activation checkpointing. ``CheckpointFunction`` (``--checkpoint-activations``) adds its
own: one read in its forward, and in its backward one read, one write of the forward's state and one
write back — 4 more per layer under full recompute.

Each read or write copies the whole generator state between the GPU and pageable host memory: PyTorch's
THC generator of that time (``aten/src/THC/THCTensorRandom.cu``, ``THCRandom_getRNGState`` /
``THCRandom_setRNGState``: ``cudaMemcpy`` of ``MAX_NUM_BLOCKS * sizeof(curandStateMtgp32)``) moves its
200 MTGP32 states of 4,120 B, :data:`STATE_BYTES` = 824,000 B (PyTorch's later ``CUDAGeneratorImpl::
get_state`` keeps the figure "for BC reason": "MAX_NUM_BLOCKS was 200 and sizeof(curandStateMtgp32) is
4120"). ``cudaMemcpy`` from the device to the host returns only once the copy has completed, and from
pageable host memory to the device performs a stream sync first (CUDA Runtime API, "API synchronization
behavior", CUDA 9.2 and later): the GPU's queue drains at every copy, so the copies add to the layer's time
instead of hiding behind queued kernels. Each copy is taken at the host link's rate, PCIe 3.0 x16 on the
V100 (:data:`PCIE3_X16_BYTES_PER_S`: 8 GT/s per lane, 128b/130b encoding, 16 lanes; pageable copies
reach less, so this is a lower bound), plus one host op for the launch the drained GPU then waits for:

    copy = 824,000 B / 15.75 GB/s + host_op_s;  fork: 4 copies per layer forward;  checkpoint: 4 per layer
"""

from __future__ import annotations

#: Bytes of one CUDA RNG-state read or write: 200 MTGP32 states × 4,120 B (module docstring).
STATE_BYTES = 200 * 4120
#: PCIe 3.0 x16, one direction: 16 lanes × 8 GT/s × 128/130 / 8 bits = 15.75 GB/s (PCI-SIG PCIe 3.0 base spec).
PCIE3_X16_BYTES_PER_S = 16 * 8e9 * 128 / 130 / 8
#: RNG-state copies of ``fork`` around the attention dropout, per layer forward (2 reads, 2 writes).
FORK_COPIES = 4
#: RNG-state copies of ``CheckpointFunction`` per layer under full recompute (forward 1 read; backward 1 read,
#: 2 writes).
CHECKPOINT_COPIES = 4


def copy_s(host_op_s: float) -> float:
    """Seconds of one synchronous RNG-state copy: ``STATE_BYTES / PCIe 3.0 x16 + host_op_s``."""
    return STATE_BYTES / PCIE3_X16_BYTES_PER_S + host_op_s


def fork_s(host_op_s: float) -> float:
    """Seconds the attention dropout's ``fork`` adds to every forward (and recomputed forward) of a layer."""
    return FORK_COPIES * copy_s(host_op_s)


def checkpoint_s(host_op_s: float) -> float:
    """Seconds ``CheckpointFunction``'s own state copies add per layer and step under full recompute."""
    return CHECKPOINT_COPIES * copy_s(host_op_s)
