"""Tensor-parallel communication overlapped with GEMMs (``parallelism.tp_comm_overlap``).

Transformer Engine's userbuffers (Megatron-LM's ``--tp-comm-overlap``, NeMo's ``ub_tp_comm_overlap``)
split the sequence-parallel all-gathers and reduce-scatters of a layer's linear layers into chunks that
travel while the GEMM beside them computes. Sources: NVIDIA/TransformerEngine
``transformer_engine/pytorch/module/base.py`` ``initialize_ub`` at v1.12, its default methods

- ``ring_exchange`` for ``qkv_fprop``, ``fc1_fprop``, ``proj_dgrad``, ``fc2_dgrad``: the all-gather as t
  point-to-point steps on the copy engines (``use_ce``, 1 SM); each step's GEMM runs on the chunk at hand
  while the next chunk travels, the first on the rank's own chunk;
- ``pipeline`` for ``proj_fprop``, ``fc2_fprop``: the GEMM in ``num_splits`` = 4 chunks, the
  reduce-scatter of chunk i (16 SMs by default; ``set_sm_margin``) under the GEMM of chunk i + 1, the
  last chunk's reduce-scatter after the GEMM;
- ``bulk`` for ``qkv_dgrad``, ``fc1_dgrad`` (the input's all-gather for the weight gradient under the
  data-gradient GEMM) and ``qkv_wgrad``, ``fc1_wgrad`` (the data gradient's reduce-scatter under the
  weight-gradient GEMM);

and the NeMo recipes that set them (NVIDIA/dgxc-benchmarking 35a9aec ``ub_tp_comm_overlap_cfg``: GPT-3
175B ``proj_fprop`` num_sm 24, ``fc2_fprop`` 20, both ``num_splits: 4``; the rest as above).

Simulated per block (the attention half, the MLP half), as :func:`block_steps` lays out:

- forward (and a full recompute's forward): the all-gather and (n − 1)/n of the reduce-scatter's bytes
  beside the block's compute, the last 1/n (n = :data:`TE_PIPELINE_SPLITS`) after it, blocking;
- backward: the all-gather and the reduce-scatter beside the block's backward.

A block then costs max(t_compute, t_beside) + t_tail. The GEMM chunks are the block's own compute: a
block's compute includes its attention core or activation, more than the GEMM a collective pairs
with, which matters only where the collective outlasts that GEMM (t_AG / t_qkv ≈ 648·(t − 1)/h at
360 GB/s and 700 TFLOP/s: 0.16 for h = 12,288, t = 4). The communication kernels' SMs (24 of 132 for
GPT-3's ``proj_fprop``, 18 %) slow the compute beside them at the engine's contention rate
(:mod:`simcluster.costs.contention`, 18.9 %). Left out: the copy engines' share of memory bandwidth and
the smaller chunks' lower GEMM efficiency.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simcluster.plan.steps import Step

#: Chunks of a ``pipeline`` GEMM + reduce-scatter (TE v1.12 ``initialize_ub`` default ``num_splits``; the
#: NeMo recipes' ``proj_fprop`` and ``fc2_fprop``): the last chunk's reduce-scatter is exposed.
TE_PIPELINE_SPLITS = 4


def block_steps(gather: Step | None, ring: list[Step], compute: Step, reduce: Step, fwd: bool) -> list[Step]:
    """One block's steps under userbuffers overlap: the tensor collectives beside ``compute``
    (``overlap=True``, ``share`` the part of the activation bytes they move), the forward's last
    reduce-scatter chunk after it (module docstring)."""
    beside = [replace(gather, overlap=True)] if gather is not None else []
    if not fwd:
        return beside + [replace(reduce, overlap=True)] + ring + [compute]
    n = TE_PIPELINE_SPLITS
    return (beside + [replace(reduce, overlap=True, share=(n - 1) / n, tag=f"{reduce.tag}.chunks")] + ring
            + [compute, replace(reduce, share=1 / n, tag=f"{reduce.tag}.last")])
