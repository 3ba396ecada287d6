"""Attention kernels (``training.attention_kernel``): the flash curves of the kernel a run dispatches.

A device's flash curves (:mod:`simcluster.costs.devices`) are those of the kernel its calibration measured:
on the H100 the Hopper-native class (FlashAttention-3, cuDNN's fused attention), on the A100 FlashAttention-2.
Runs that dispatch another kernel swap them here, each by a published like-for-like figure:

- ``fa2`` on Hopper: FlashAttention-2's forward + backward at [AZURE]'s shape against the calibrated
  curve there, 0.633 (:func:`_flash2_hopper`);
- ``triton``: FlashAttention in Triton (2022; llm-foundry's ``attn_impl: triton``), FA2's curves over
  [FA2TRITON]'s speed-ups, 1.396 forward and 2.0 backward (:func:`_triton_curves`);
- ``fa1``: FlashAttention (v1, 2022; Transformer Engine before 1.0 calls it), FA2's curves times FA1's share of
  FA2's speed in the FA2 paper's own figures, 0.436 on H100 and 0.446 on A100 (:func:`_flash1_curves`);
- ``fa3``: the calibration itself, Hopper only.

``auto`` resolves by the software stack (:func:`attention_kernel`). Sources: the tags of
:data:`simcluster.costs.devices.SOURCES`.
"""

from __future__ import annotations

import math
from dataclasses import replace

from simcluster.catalogue import HOPPER_DEVICES
from simcluster.costs.devices import (FA2_H100_AZURE, SIGMA_H100_ATTENTION, Calibration, Curve, combine_sigmas,
                                      device_calibration, flash_fwd_bwd_flops, geomean, half_log_spread)
from simcluster.costs.frameworks import Stack, framework

#: [AZURE] where the FlashAttention-2 figure was taken: flash-attention's benchmark_flash_attention.py,
#: causal, head dim 128, batch 2, seq 8192, model dim 2048 (16 heads), forward + backward (3.5x the
#: causal forward FLOPs, as :meth:`ComputeModel.attention_flops` counts).
FA2_AZURE_SHAPE: tuple[int, int, int, int] = (2, 16, 8192, 128)
# --- [SDPA] torch SDPA as dispatched (FlashAttention-2) and cuDNN on one H100, same shape, TFLOP/s ---------
SDPA_FA2_H100_TFLOPS: float = 329.483
SDPA_CUDNN_H100_TFLOPS: float = 631.338
# --- [FA2TRITON] FlashAttention-2 over FlashAttention in Triton: forward range, backward ------------------
FA2_OVER_TRITON_FWD: tuple[float, float] = (1.3, 1.5)
FA2_OVER_TRITON_BWD: float = 2.0
# --- [FA2FIG]/[FA2FIGH100] FlashAttention (v1) and FlashAttention-2, forward + backward, causal, head dim 128 ---
#: TFLOP/s as labelled at sequence 1k, 2k, 4k, 8k, 16k (batch x sequence = 16k tokens): (FA1 bars, FA2 bars).
FA1_FA2_CAUSAL_D128: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "h100": ((109, 108, 126, 135, 137), (221, 265, 294, 308, 328)),
    "a100": ((62, 69, 76, 80, 83), (133, 155, 173, 182, 189)),
}

#: Attention kernels a run can name (``training.attention_kernel``): ``fa2`` FlashAttention-2 (Dao's
#: package, or PyTorch SDPA's flash backend, which dispatches it); ``fa3`` the Hopper-native kernels —
#: FlashAttention-3 and cuDNN's fused attention (Transformer Engine, SDPA's cuDNN backend), within 0.1 %
#: of each other in [SDPA] — at the speed the H100 calibration measured; ``triton`` FlashAttention in Triton
#: (``flash_attn_triton.py``, 2022; llm-foundry's ``attn_impl: triton``), :func:`_triton_curves`; ``fa1``
#: FlashAttention v1 (flash-attn < 2.0; Transformer Engine 0.x's ``flash_attn_unpadded_func``), :func:`_flash1_curves`.
ATTENTION_KERNELS: tuple[str, ...] = ("fa1", "fa2", "fa3", "triton")


def _flash2_hopper() -> Curve:
    """FlashAttention-2 on Hopper: the calibrated (FA3-class) curve scaled so that forward + backward at
    [AZURE]'s shape takes what FlashAttention-2 took there::

        r_fa2 = (1/e_fwd + 2.5/e_bwd) · 327.9 TFLOP/s / (3.5 · 989 TFLOP/s)

    with e_fwd, e_bwd the H100 curve's body efficiencies at (2, 16, 8192, 128): 0.633. One ratio for both
    passes ([AZURE] times them together). [SDPA]'s like-for-like forward (SDPA as dispatched over cuDNN on
    one H100) gives 0.522; sigma_ratio is half the log range of the two, ln(0.633 / 0.522) / 2 = 0.10.
    [FA2H100]'s 'up to 335 TFLOP/s' agrees with [AZURE] within 2 %."""
    ratio = FA2_H100_AZURE * 1e12 / flash_fwd_bwd_flops("h100", FA2_AZURE_SHAPE)
    like_for_like = SDPA_FA2_H100_TFLOPS / SDPA_CUDNN_H100_TFLOPS
    return Curve(ratio, True, f"[AZURE] FlashAttention-2 forward + backward {FA2_H100_AZURE} TFLOP/s on H100 at "
                 f"{FA2_AZURE_SHAPE} over the calibrated curve there; [SDPA] SDPA/cuDNN {like_for_like:.3f}",
                 combine_sigmas(SIGMA_H100_ATTENTION, half_log_spread((ratio, like_for_like))))


def _triton_curves(fa2: Calibration) -> tuple[Curve, Curve]:
    """FlashAttention in Triton: the device's FlashAttention-2 curves over [FA2TRITON]'s speed-ups,

        r_triton,fwd = r_fa2,fwd / 1.396  (the geometric middle of "1.3-1.5x"; sigma_ratio ln(1.5/1.3)/2 = 0.07)
        r_triton,bwd = r_fa2,bwd / 2.0    ("around 2x"; sigma_ratio ln(2.5/2.0) = 0.22, the paper's 1.3-2.5x
                                            overall range above it)

    measured on an A100 and taken alike on Hopper (the 2022 Triton kernel uses none of Hopper's features,
    as FlashAttention-2 does not: an assumption)."""
    lo, hi = FA2_OVER_TRITON_FWD
    fwd, bwd = fa2.attention_fwd, fa2.attention_bwd
    src = "[FA2TRITON] FlashAttention in Triton: the FlashAttention-2 curve over {:g} ({})"
    return (Curve(fwd.ratio / geomean((lo, hi)), True, src.format(round(geomean((lo, hi)), 3), "forward"),
                  combine_sigmas(fwd.sigma, half_log_spread((lo, hi)))),
            Curve(bwd.ratio / FA2_OVER_TRITON_BWD, True, src.format(FA2_OVER_TRITON_BWD, "backward"),
                  combine_sigmas(bwd.sigma, math.log(2.5 / FA2_OVER_TRITON_BWD))))


def flash1_share(device: str) -> tuple[float, float]:
    """(FA1's speed over FA2's, its sigma) on ``device``: the geometric mean over sequence 1k-16k of the
    FA2 paper's causal head-dim-128 bars, FlashAttention over FlashAttention-2, measured in one harness on one
    GPU ([FA2FIG] A100 80GB, [FA2FIGH100] H100 80GB SXM5); sigma half the log range of the five quotients.
    Hopper devices take the H100's, the others the A100's (FA1 has no Hopper-specific path either)."""
    fa1, fa2 = FA1_FA2_CAUSAL_D128["h100" if device in HOPPER_DEVICES else "a100"]
    q = tuple(a / b for a, b in zip(fa1, fa2))
    return geomean(q), half_log_spread(q)


def _flash1_curves(fa2: Calibration) -> tuple[Curve, Curve]:
    """FlashAttention (v1): the device's FlashAttention-2 curves times :func:`flash1_share`, both passes (the
    figures time forward and backward together)::

        r_fa1 = r_fa2 · geomean(FA1 / FA2)      0.436 on H100 (0.408-0.493), 0.446 on A100 (0.439-0.466)

    One factor per device where the bars vary with the sequence (H100: 0.49 at 1k, 0.41 at 2k): the curves
    carry no per-kernel sequence shape; the spread is in sigma."""
    share, spread = flash1_share(fa2.device)
    src = (f"[FA2FIG]/[FA2FIGH100] FlashAttention (v1) at {share:.3f} of FlashAttention-2, causal head dim 128, "
           f"1k-16k")

    def scaled(c: Curve) -> Curve:
        return Curve(c.ratio * share, True, src, combine_sigmas(c.sigma, spread))

    return scaled(fa2.attention_fwd), scaled(fa2.attention_bwd)


def with_attention_kernel(cal: Calibration, kernel: str | None) -> Calibration:
    """``cal`` with the flash curves of ``kernel`` (None: the device's own, as calibrated).

    On Hopper (:data:`HOPPER_DEVICES`) ``fa2`` swaps in :func:`_flash2_hopper`'s curve for both passes;
    ``fa3`` keeps the calibrated one; ``triton`` is ``fa2``'s over :func:`_triton_curves`' speed-ups on any
    device, ``fa1`` ``fa2``'s times :func:`_flash1_curves`' share. Elsewhere ``fa2`` is the device's own curve (the A100's is
    FlashAttention-2's [FA2]) and ``fa3`` raises ``ValueError``: FlashAttention-3 and cuDNN's fast
    attention need Hopper.
    """
    if kernel is None or (kernel == "fa3" and cal.device in HOPPER_DEVICES):
        return cal
    if kernel not in ATTENTION_KERNELS:
        raise ValueError(f"unknown attention kernel {kernel!r}; known: {', '.join(ATTENTION_KERNELS)}")
    if kernel in ("triton", "fa1"):
        fwd, bwd = (_triton_curves if kernel == "triton" else _flash1_curves)(with_attention_kernel(cal, "fa2"))
        return replace(cal, attention_fwd=fwd, attention_bwd=bwd)
    if kernel == "fa3":
        raise ValueError(f"attention kernel fa3 (FlashAttention-3, cuDNN fused attention) needs Hopper "
                         f"({', '.join(HOPPER_DEVICES)}), not {cal.device}")
    if cal.device not in HOPPER_DEVICES:
        return cal
    return replace(cal, attention_fwd=_FLASH2_HOPPER, attention_bwd=_FLASH2_HOPPER)


_FLASH2_HOPPER = _flash2_hopper()


def attention_kernel(setting: str, stack: Stack, device: str) -> str | None:
    """The flash kernel a run uses (``training.attention_kernel``): ``fa2`` or ``fa3`` as named; ``auto``
    is the stack's (:attr:`Stack.attention`) on Hopper and the device's own curve (None) elsewhere.

    Each stack's kernel on Hopper (module docstring, "Attention kernels"): Megatron-Core runs Transformer
    Engine's ``DotProductAttention``, cuDNN's fused attention on Hopper; MaxText's ``cudnn_flash_te``
    alike (fa3); PyTorch's SDPA dispatches by a fixed priority that puts its FlashAttention-2 backend
    before cuDNN's, and DeepSpeed's models call the ``flash_attn`` package (fa2).
    """
    if setting != "auto":
        return setting
    return stack.attention if device in HOPPER_DEVICES else None


def run_calibration(device: str, setting: str, framework_name: str) -> Calibration:
    """The calibration a run on ``device`` times its kernels with: the device's, with the flash curves of the
    kernel ``training.attention_kernel`` ``setting`` resolves to under the stack ``framework_name``
    (:func:`attention_kernel`), as :func:`simcluster.plan.plan.compute_model` builds it; the error bars read
    its σ (:func:`simcluster.metrics.uncertainty.compute_sigma`)."""
    return with_attention_kernel(device_calibration(device), attention_kernel(setting, framework(framework_name), device))
