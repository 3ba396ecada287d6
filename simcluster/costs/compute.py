"""How long compute takes on one device: GEMMs, bandwidth-bound kernels, attention.

Model (constants and their fit in :mod:`simcluster.costs.efficiency`)
-------------------------------------------------------------------------
Every kernel's time is its *body* combined with a launch floor::

    t = (t_launch^p + t_body^p)^(1/p)        t_launch = 31.3 µs, p = 1.52
    t_body = max(FLOPs / (peak · e(shape)),  bytes / (bandwidth · f_kind))

i.e. a roofline (Williams et al., CACM 2009) whose compute ceiling is scaled
by a shape-dependent efficiency fitted to measured H100 kernels, plus a
soft floor for launch latency. ``roofline_time`` is the bare contract for one
op (no floor); ``gemm_time`` etc. add the fitted efficiency and the floor.

Fit errors on the H100 calibration (|predicted/measured − 1|):
    GEMM, 720 rows: median 5.3 %, 90th percentile 14.4 %, max 44 %.
    Flash attention, 6 rows: forward max 6.8 %, backward max 12.1 %.

Launch overhead
    ``kernel_overhead_s`` defaults to the fitted 31.3 µs: the smallest
    calibration GEMMs (0.1–0.8 GFLOP, < 1 µs of arithmetic) all took 28–31 µs.
    That is the latency of an *isolated*, individually timed PyTorch op; in a
    training loop whose host runs ahead of the GPU (or under CUDA graphs)
    the GPU-side gap between kernels is a few µs. Pass
    ``kernel_overhead_s=5e-6`` (say) to model that regime; 0 disables it.

Other devices (per-device calibration, :mod:`simcluster.costs.devices`)
    Each device's curves are the H100 fit rescaled by like-for-like published
    measurements (best GEMM fraction of peak, achieved copy bandwidth, flash
    attention), as fractions of the device's *own* datasheet peak and
    bandwidth: an A100 is charged e(shape) · r_gemm · 312 TFLOP/s and
    f_kind · r_mem · 2.04 TB/s. Curves without data keep ratio 1 (the H100
    curve at the device's peak) and say so in ``self.calibration``. The
    ridge point (peak / bandwidth) and the shapes that turn bandwidth-bound
    move with the device; the launch floor is kept as measured (host-side).

TPU MXU padding (:meth:`simcluster.costs.devices.Calibration.mxu_fill`)
    On a TPU every GEMM body efficiency is multiplied by the share of the 128×128 systolic array
    that is not padding, m/⌈m⌉₈ · k/⌈k⌉₁₂₈ · n/⌈n⌉₁₂₈ (per product of a batched GEMM), and the
    flash curve by d/⌈d⌉₁₂₈ ("How to Scale Your Model", tpus.md). GPUs: 1.

Precision
    bf16 and fp16 use ``device.peak_flops`` and 2-byte elements; fp32 uses
    ``device.peak_flops_fp32`` and 4-byte elements with the same efficiency
    curves (untested assumption: no fp32 measurements exist).

FP8 (``precision="fp8"``, Transformer Engine's recipes and DeepSeek-V3 §3.3's; ``training.fp8_recipe``)
    Only the GEMMs run in FP8: at the device's dense FP8 peak
    (:data:`simcluster.catalogue.FP8_PEAK_FLOPS`, 1,979 TFLOP/s on H100/H200/H800) with the
    BF16 curve's shape and its ceiling scaled by the measured FP8/BF16 ratio r_fp8
    (:func:`simcluster.costs.fp8_gemm.fp8_gemm_curve`: 0.884 for cuBLASLt's per-tensor-scaled GEMMs, 0.96 for
    DeepSeek-V3's block-scaled ones); operands are 1 byte, the output bf16. Each FP8 GEMM first quantizes both
    operands, memory-bound kernels whose bytes per element depend on the recipe (Transformer Engine v2.5,
    ``transformer_engine/pytorch/csrc/extensions/cast.cpp`` ``quantize_impl``):

    - ``delayed`` (TE's default ``DelayedScaling``): one cast with the scale of past steps' amax history, the
      amax updated inside the same kernel: read bf16, write FP8 once per layout it is needed in;
    - ``current`` (``Float8CurrentScaling``, NeMo's "FP8-CS"): ``nvte_compute_amax`` reads the tensor first
      (2 B), ``nvte_compute_scale_from_amax`` (one tiny kernel), then the cast: three kernels;
    - ``te_blockwise`` (Transformer Engine's ``Float8BlockScaling``, Megatron-Core's ``--fp8-recipe blockwise``):
      DeepSeek-V3's tiles and blocks, quantized once per tensor like the per-tensor recipes, one kernel writing
      each layout with its fp32 scales, 2 + layouts·(1 + 4/128) B; cuBLASLt's block-scaled GEMMs
      (:data:`simcluster.costs.fp8_gemm.TE_BLOCKWISE_RATIO`);
    - ``blockwise`` (DeepSeek-V3 §3.3.2: 1×128 activation tiles; its 128×128 weight blocks need fewer scales,
      counted alike): one kernel writing one fp32 scale per 128 elements, 2 + 1 + 4/128 B, before every
      GEMM for both of its operands:

        t_gemm,fp8(m, n, k) = floor(body_fp8) + t_quant(m·k) + t_quant(k·n)

    Under the per-tensor recipes a tensor is quantized once for all its GEMMs: Hopper's FP8 GEMMs take
    only the "TN" layout, so TE's cast writes the row-wise copy and, where the backward needs it, the
    column-wise (transposed) one in the same kernel (``cast_transpose``; a Linear's input quantizer has both
    usages in training): X before the forward GEMM and dY before the data gradient, 2 + 1 + 1 B each, and
    the weight gradient's GEMM quantizes nothing (:func:`simcluster.plan.costing.op_time`).

    Weights are re-quantized in every GEMM, unless ``training.fp8_weight_cache``: Transformer Engine casts a
    weight once per step and reuses it while ``is_first_microbatch`` is False (Megatron-Core's TE wrappers,
    megatron/core/extensions/transformer_engine.py at core_r0.10.0, set it True on the first microbatch
    only), so the forward's and the data gradient's weight quantize count 1/m of a microbatch's. Attention,
    norms, activations and everything else stay bf16 (2-byte values, the 16-bit peak).
    A device without FP8 tensor cores raises ``ValueError``.
"""

from __future__ import annotations

from simcluster.costs import efficiency as eff
from simcluster.catalogue import FP8_PEAK_FLOPS
from simcluster.costs.attention_kernels import with_attention_kernel
from simcluster.costs.devices import Calibration, device_calibration
from simcluster.costs.fp8_gemm import fp8_gemm_curve
from simcluster.topology.devices import Device
from simcluster.workload.ops import DTYPE_BYTES, FP8_OPERAND_BYTES
from simcluster.workload.sliding_window import window_pair_ratio

#: Bytes an FP8 quantize kernel moves per element: read bf16 (2), write FP8 (1) and one fp32 scale
#: per 128 elements (DeepSeek-V3 §3.3.2, 1×128 tiles).
QUANTIZE_BYTES_PER_ELEMENT: float = 2 + FP8_OPERAND_BYTES + 4 / 128
#: Bytes per element of current scaling's amax pass (``nvte_compute_amax`` reads the bf16 tensor).
AMAX_BYTES_PER_ELEMENT: float = 2


# Unfused attention (Korthikanti et al. 2022 §4.1): bytes per score element.
#   forward : fused scale+mask+softmax reads and writes e bytes (normalization);
#             dropout reads e, writes e and a 1-byte mask (elementwise).
#   backward: dropout-backward reads the gradient (e) and the mask (1), writes e;
#             softmax-backward reads the gradient and the softmax output, writes e.
# These tensors (2+2+1 bytes stored) are the 5·a·s/h term of the activation memory.


class ComputeModel:
    """Kernel times on ``device`` at ``precision`` ("bf16", "fp16", "fp32" or "fp8"), SI units."""

    def __init__(self, device: Device, precision: str = "bf16", *, kernel_overhead_s: float | None = None,
                 attention_kernel: str | None = None, sustained: bool = True, fp8_recipe: str = "delayed"):
        if precision not in DTYPE_BYTES:
            raise ValueError(f"unknown precision {precision!r}; known: {', '.join(DTYPE_BYTES)}")
        self.device = device
        self.precision = precision
        self.peak_flops: float = device.peak_flops_fp32 if precision == "fp32" else device.peak_flops
        self.memory_bandwidth: float = device.memory_bandwidth
        self.element_bytes: int = DTYPE_BYTES[precision]
        #: The device's curves, its flash curves those of ``attention_kernel`` (None: as calibrated;
        #: ``fa2`` on Hopper: FlashAttention-2's, :func:`simcluster.costs.attention_kernels.with_attention_kernel`).
        self.calibration: Calibration = with_attention_kernel(device_calibration(device.name), attention_kernel)
        self.kernel_overhead_s: float = eff.LAUNCH_FLOOR_S if kernel_overhead_s is None else kernel_overhead_s
        if self.kernel_overhead_s < 0:
            raise ValueError("kernel_overhead_s must be >= 0")
        self.fp8: bool = precision == "fp8"
        #: ``training.fp8_recipe`` (module docstring): how FP8 operands are scaled, which GEMMs consume them.
        self.fp8_recipe: str = fp8_recipe
        #: The GEMMs' peak and efficiency ceiling (the FP8 ones at fp8, else the precision's).
        self.gemm_peak_flops: float = self.peak_flops
        #: Sustained over measured clock (:attr:`Calibration.clock_ratio`): a training run's compute-bound kernels
        #: (GEMM, attention) at the clock the device holds under load; ``sustained=False`` gives the measurements'
        #: own conditions (millisecond bursts), which the calibration checks compare with.
        self.clock_ratio: float = self.calibration.clock_ratio if sustained else 1.0
        self.gemm_eff_max: float = self.calibration.gemm_eff_max * self.clock_ratio
        if self.fp8:
            curve = fp8_gemm_curve(device.name, fp8_recipe)
            if curve is None:
                raise ValueError(f"device {device.name} has no FP8 tensor cores (fp8 needs one of "
                                 f"{', '.join(sorted(FP8_PEAK_FLOPS))})")
            self.gemm_peak_flops = FP8_PEAK_FLOPS[device.name]
            self.gemm_eff_max = self.calibration.gemm_eff_max * curve.ratio * self.clock_ratio

    # --- contracts ---------------------------------------------------------------
    def roofline_time(self, flops: float, nbytes: float, efficiency: float = 1.0,
                      bandwidth_efficiency: float = 1.0) -> float:
        """max(flops / (peak · efficiency), nbytes / (bandwidth · bandwidth_efficiency)).

        The single-op contract (no launch floor): with the defaults, the ideal
        roofline of the datasheet figures.
        """
        if not (0 < efficiency <= 1 and 0 < bandwidth_efficiency <= 1):
            raise ValueError("efficiencies must lie in (0, 1]")
        return max(flops / (self.peak_flops * efficiency),
                   nbytes / (self.memory_bandwidth * bandwidth_efficiency))

    def kernel_time(self, body_s: float) -> float:
        """One kernel's time from its body time: (t_launch^p + body^p)^(1/p)."""
        return eff.soft_floor(body_s, self.kernel_overhead_s)

    # --- GEMM --------------------------------------------------------------------
    def gemm_bytes(self, m: int, n: int, k: int, batch: int = 1) -> float:
        """Bytes a GEMM must move at least once: read X and W, write Y (FP8 X and W, bf16 Y at fp8)."""
        if self.fp8:
            return float(batch * ((m * k + k * n) * FP8_OPERAND_BYTES + m * n * self.element_bytes))
        return float(batch * (m * k + k * n + m * n) * self.element_bytes)

    def gemm_body_time(self, m: int, n: int, k: int) -> float:
        """One FP8-or-16-bit GEMM's body at the GEMM peak (no launch floor, no quantization):
        max(2mnk / (peak_gemm · e(m, n, k)), bytes / (bandwidth · f_copy))."""
        e = eff.gemm_body_efficiency(m, n, k, self.gemm_eff_max, self.calibration.gemm_size_half)
        e *= self.calibration.mxu_fill(m, n, k)
        return max(2.0 * m * n * k / (self.gemm_peak_flops * e),
                   self.gemm_bytes(m, n, k) / (self.memory_bandwidth * self.calibration.bandwidth_fraction("copy")))

    @property
    def fp8_per_tensor(self) -> bool:
        """Whether FP8 runs one of Transformer Engine's recipes (delayed, current, te_blockwise): one cast per tensor,
        in both layouts, for all its GEMMs (DeepSeek-V3's blockwise quantizes both operands of every GEMM)."""
        return self.fp8 and self.fp8_recipe != "blockwise"

    def quantize_time(self, elements: float, layouts: int = 1) -> float:
        """Quantizing ``elements`` bf16 values to FP8 (0 unless fp8), at the elementwise bandwidth fraction, by
        the recipe (module docstring): delayed one cast kernel reading 2 B and writing 1 B per ``layouts``
        (row-wise, and column-wise for the backward); current an amax pass (2 B), the scale kernel and that
        cast; blockwise one kernel with its tile scales (QUANTIZE_BYTES_PER_ELEMENT, ``layouts`` ignored)."""
        if not self.fp8 or elements <= 0:
            return 0.0
        if self.fp8_recipe == "blockwise":
            return self.memory_time(QUANTIZE_BYTES_PER_ELEMENT * elements, "elementwise")
        if self.fp8_recipe == "te_blockwise":  # one kernel: 1×128 tiles (128×128 for weights) in each layout
            return self.memory_time((2 + (FP8_OPERAND_BYTES + 4 / 128) * layouts) * elements, "elementwise")
        cast = self.memory_time((2 + FP8_OPERAND_BYTES * layouts) * elements, "elementwise")
        if self.fp8_recipe == "current":
            return self.memory_time(AMAX_BYTES_PER_ELEMENT * elements, "elementwise") + self.kernel_time(0.0) + cast
        return cast

    def gemm_time(self, m: int, n: int, k: int, batch: int = 1, *, fp8: bool | None = None,
                  weight_share: float = 1.0, quantize: bool = True) -> float:
        """Time of Y[m,n] = X[m,k]·W[k,n] (``batch`` independent products in one kernel).

        FLOPs 2·batch·m·n·k; body efficiency e(batch·m, n, k) from
        :func:`efficiency.gemm_body_efficiency` (a batched product fills the
        GPU like one with batch·m rows); bandwidth term at the copy fraction.
        At fp8 (unless ``fp8=False``: attention's products stay bf16) the body runs at the FP8
        peak and ceiling and both operands are quantized first (module docstring); ``weight_share`` scales the
        second operand's (W's) quantize, the share of microbatches that cast the weight (1: every one; 1/m
        under Transformer Engine's ``is_first_microbatch`` cache, ``training.fp8_weight_cache``);
        ``quantize=False``: the operands arrive quantized (the per-tensor recipes' one cast per tensor, which
        the caller charges with :meth:`quantize_time`).
        """
        if min(m, n, k, batch) <= 0:
            return 0.0
        if self.fp8 and fp8 is not False:
            body = self.kernel_time(self.gemm_body_time(batch * m, n, k))
            if not quantize:
                return body
            return body + self.quantize_time(batch * m * k) + weight_share * self.quantize_time(batch * k * n)
        body = self.roofline_time(
            2.0 * batch * m * n * k,
            float(batch * (m * k + k * n + m * n) * self.element_bytes),  # 16-bit operands here
            eff.gemm_body_efficiency(batch * m, n, k, self.calibration.gemm_eff_max * self.clock_ratio,
                                     self.calibration.gemm_size_half) * self.calibration.mxu_fill(m, n, k),
            self.calibration.bandwidth_fraction("copy"),
        )
        return self.kernel_time(body)

    def gemm_efficiency(self, m: int, n: int, k: int, batch: int = 1) -> float:
        """Achieved FLOP/s of :meth:`gemm_time` divided by the precision's peak (launch included).

        So ``roofline_time(2mnk, 0, gemm_efficiency(m, n, k)) == gemm_time(m, n, k)``.
        """
        t = self.gemm_time(m, n, k, batch)
        return 2.0 * batch * m * n * k / (t * self.gemm_peak_flops) if t > 0 else 0.0

    # --- bandwidth-bound kernels ---------------------------------------------------
    def memory_time(self, nbytes: float, kind: str = "elementwise") -> float:
        """A bandwidth-bound kernel moving ``nbytes`` (reads + writes).

        body = nbytes / (bandwidth · f_kind) with f_kind from the copy / gelu /
        layernorm measurements (H100: ``copy`` 0.88, ``elementwise`` 0.84,
        ``normalization`` 0.54; aliases gelu, dropout, layernorm, softmax, ...),
        times the device's bandwidth ratio (``self.calibration``).
        The body is linear in bytes; the launch floor is added as everywhere.
        """
        return self.kernel_time(self.memory_body_time(nbytes, kind))

    def memory_body_time(self, nbytes: float, kind: str = "elementwise") -> float:
        """The body of :meth:`memory_time` without the launch floor: nbytes / (bandwidth · f_kind)."""
        return nbytes / (self.memory_bandwidth * self.calibration.bandwidth_fraction(kind))

    # --- attention -----------------------------------------------------------------
    def attention_flops(self, batch: int, heads: int, seq: int, head_dim: int, *,
                        causal: bool = True, flash: bool = True, backward: bool = False, window: int = 0) -> float:
        """FLOPs the attention core executes.

        Forward: 4·b·a·s²·d (QKᵀ and AV); a flash kernel skips the masked half
        when causal, and under a sliding window of ``window`` keys the blocks outside it
        (P_w/P of the causal work: :mod:`simcluster.workload.sliding_window`). Backward: 2.5×
        forward for flash (recomputes the scores), 2× forward for the unfused GEMMs (which compute
        the whole square, window or not).
        """
        fwd = 4.0 * batch * heads * seq * seq * head_dim
        if flash:
            fwd = fwd / 2 * window_pair_ratio(seq, window) if causal else fwd
            return fwd * eff.FLASH_BWD_FLOP_RATIO if backward else fwd
        return 2.0 * fwd if backward else fwd

    def attention_time(self, batch: int, heads: int, seq: int, head_dim: int, *,
                       causal: bool = True, flash: bool = True, backward: bool = False, dropout: bool = True,
                       alibi: bool = False, window: int = 0) -> float:
        """Attention-core time: forward, or backward only when ``backward``.

        flash=True: one fused kernel, body efficiency from the fitted power law
        (non-causal uses the causal curve on twice the FLOPs); bandwidth term
        q,k,v,o (forward) or q,k,v,o,dO,dq,dk,dv (backward).
        flash=False (Megatron's unfused path, Korthikanti 2022 §4.1): batched
        GEMMs QKᵀ [s,d]·[d,s] and A·V [s,s]·[s,d] over b·a heads (backward:
        four), plus softmax and dropout over b·a·s² elements, computed in full
        even when causal (the mask is applied, not skipped). ``dropout`` False (an attention dropout of 0,
        ``model.attention_dropout``): no dropout kernel, as PyTorch's ``dropout`` returns its input at p = 0
        (ATen ``_dropout_impl``); flash attention fuses its dropout either way. ``alibi`` (``model.alibi``): the
        unfused forward's ``baddbmm(alibi, q, kᵀ, beta=1)`` copies the broadcast bias into the scores and the GEMM
        reads them back (ATen ``baddbmm_out``: the input is copied into the result when beta ≠ 0): two passes.
        ``window`` (``model.sliding_window``, causal): the flash kernel does the window's share of the work at the
        efficiency of the full sequence's kernel; the unfused path masks the whole square (no saving).
        """
        b, a, s, d = batch, heads, seq, head_dim
        e = self.element_bytes
        if flash:
            flops = self.attention_flops(b, a, s, d, causal=causal, flash=True, backward=backward, window=window)
            io = (8 if backward else 4) * b * a * s * d * e
            body = self.roofline_time(flops, io, self.clock_ratio * self.calibration.flash_efficiency(
                b, a, s, d, backward=backward), self.calibration.bandwidth_fraction("copy"))
            return self.kernel_time(body)
        ba, scores = b * a, b * a * s * s
        if not backward:
            gemms = self.gemm_time(s, s, d, ba, fp8=False) + self.gemm_time(s, d, s, ba, fp8=False)
            mem = self.memory_time(2 * e * scores, "softmax")
            if dropout:
                mem += self.memory_time((2 * e + 1) * scores, "dropout")
            if alibi:
                mem += self.memory_time(2 * e * scores, "copy")
            return gemms + mem
        # dP = dO·Vᵀ, dV = Pᵀ·dO, dQ = dS·K, dK = dSᵀ·Q
        gemms = self.gemm_time(s, s, d, ba, fp8=False) + 3 * self.gemm_time(s, d, s, ba, fp8=False)
        mem = self.memory_time(3 * e * scores, "softmax")
        if dropout:
            mem += self.memory_time((2 * e + 1) * scores, "dropout")
        return gemms + mem

    def __repr__(self) -> str:
        return (f"ComputeModel({self.device.name}, {self.precision}, peak={self.peak_flops:.3g} FLOP/s, "
                f"bw={self.memory_bandwidth:.3g} B/s, launch={self.kernel_overhead_s * 1e6:.1f} µs)")
