"""Compute slowed while communication kernels share the GPU.

NCCL runs collectives and point-to-point transfers as CUDA kernels: each channel is a
thread block resident on one SM (an all-gather on an H100 takes 24 of its 132 SMs, ~18 %),
and the copies it makes draw on the same HBM. While such a kernel runs beside a GEMM or an
attention kernel on the same GPU, that kernel gets fewer SMs (and loses whole waves to the
tail effect when its grid was sized for all of them) and less memory bandwidth.

Lee et al. 2025, "Characterizing Compute-Communication Overlap in GPU-Accelerated
Distributed Deep Learning: Performance and Power Implications" (arXiv:2507.03114), measured
GPT and Llama training kernels on A100, H100, MI250 and MI210 with and without concurrent
collectives: compute is slowed by 18.9 % on average (40 % at most). The engine applies that
average as a rate: while any communication task is running on a GPU, the compute task running
there progresses at ``1 − OVERLAP_COMPUTE_SLOWDOWN`` of its speed (and at full speed again once
the communication ends), so only the overlapped part of a kernel pays, and exposed
communication costs nothing extra. Tensor-parallel collectives that block the compute stream
never overlap compute, so they cost nothing here either. Pipeline sends are left out: NCCL runs
a point-to-point transfer on the few channels per peer (``NCCL_NCHANNELS_PER_NET_PEER``, 2 by
default), i.e. ~2 of 108–132 SMs, an order of magnitude below the collectives measured.
"""

from __future__ import annotations

#: Fraction by which compute slows while a communication kernel shares the GPU (Lee et al. 2025, mean).
OVERLAP_COMPUTE_SLOWDOWN = 0.189
