"""Error bars: where the σ of each part of a prediction come from.

How they combine into an interval (the model, its correlation groups, the derived figures):
:mod:`simcluster.metrics.error_bars`.

Where each σ comes from (every figure is recomputed by ``python -m simcluster.metrics.uncertainty``
and checked by tests/metrics/test_uncertainty.py):

- kernels on a calibrated device (H100; H200 has the same compute die): the H100 calibration
  residuals r = ln(predicted / measured) of :mod:`simcluster.costs.calibration`, taken at the level
  they enter an iteration, which sums a layer's kernels: GEMM, the 60 (hidden, tensor, M) groups of
  the table (each the 12 GEMMs of one layer at one micro batch: QKV, projection, FC1, FC2 forward,
  data and weight gradient), r = ln(Σ predicted / Σ measured), RMS 0.0464 (kernel by kernel the
  same rows give 0.0533 weighted by measured time: part of a shape's error cancels inside its
  layer); flash attention, the 6 shapes' forward + backward, RMS 0.0652 (0.0599 pass by pass);
  memory-bound kernels (7 rows, no layer grouping in the table) RMS 0.0416. A compute part
  reads the three curves with the shares of its seconds (:mod:`simcluster.costs.curve_shares`,
  from the plan's block costs); under full correlation its σ is the share-weighted mean
  Σ_c s_c σ_c (:func:`kernel_sigma`), at most the largest without shares.
- devices without a calibration of their own: the H100 curves are reused as fractions of the
  device's datasheet peak (:mod:`simcluster.costs.compute`), so the error of that transfer is
  added in quadrature. Its size is the scatter of ln(MAMF efficiency / H100's) over the other
  accelerators of the Maximum Achievable Matmul FLOPS table (BF16, Bekman, *Machine Learning
  Engineering Open Book*, compute/accelerator/README.md): NVIDIA rows 0.0565; every vendor
  (for TPUs: another architecture, none in the table) 0.183.
- communication: links whose efficiency was calibrated to NCCL's published bus bandwidths
  (A100/H100/H200 NVLink, EDR/HDR/NDR InfiniBand): the model's residual against those four
  figures (docs/model.md, large messages: 229.9/230, 369.8/370, 190.6/192, 48.0/48 GB/s;
  RMS 0.0037) and the precision of the quoted figures (NDR quoted as 46–48 of 50 GB/s: a
  uniform range, σ = ln(48/46)/√12 = 0.0123), in quadrature: 0.0128. Other links (V100
  NVLink2, PCIe, TPU torus: set, not calibrated): the scatter of ln(efficiency) over the
  calibrated classes (0.767, 0.822, 0.96, 0.94), 0.108. :func:`links_calibrated` says which
  applies to a run.
- software stack: Megatron-LM is the stack whose kernels the cost model times (the
  calibration ran the same cuBLAS/flash kernels); what remains is the kernel-library version,
  the spread of the MAMF table's repeated measurements of the same accelerator under two
  torch/CUDA releases (A100 SXM 267.9/271.2, GH200 821.0/828.6, A100 PCIe 256.4/252.9, H100
  792.1/794.5 TFLOP/s; RMS 0.0104). Plain PyTorch (FSDP): measured on held-out rows, the 87
  8-GPU rows of llm-foundry's H100 and A100 80GB benchmark tables the corpus does not hold
  (``benchmarks/validation/foundry_tables.py``, MPT-125M to 30B at sequence 512 to 65,536):
  if ln(predicted / published) = Σ w_i σ_i ε_i + σ_stack ε_stack, its mean square over the rows is
  mean(σ_rest²) + σ_stack² (σ_rest: each row's σ_T without the stack term), so σ_stack =
  √max(mean(r²) − mean(σ_rest²), 0) = 0 (:data:`PYTORCH_STACK_SIGMA`; tests/validation/test_foundry_tables.py
  recomputes it): since session 17 the compute part carries the σ of the flash curve a run uses where it is
  published only as a ratio to another (Triton, FA2 on Hopper, FA1: :func:`compute_sigma`), and with it
  mean(σ_rest²) exceeds these rows' mean(r²); the stack keeps the kernel-library version's 0.0104 (0.0249 before,
  with the H100's attention σ on every kernel). DeepSpeed:
  measured the same way on BigScience's 49 layout trials before BLOOM
  (``benchmarks/validation/bloom_prequel.py``: Megatron-DeepSpeed's pipeline engine with Megatron
  tensor parallelism 1 to 8 on 40 to 48 A100 nodes of Jean Zay, none of them a corpus row, on the
  cluster's measured NIC efficiency), σ_stack = 0.1186 (:data:`DEEPSPEED_STACK_SIGMA`; the mean square
  keeps the rows' bias in: median +9.4 %, the 19 rows of 02-21/02-23 +11.1 % and the 30 of 02-25/02-26,
  after the cluster's PCIe/NUMA fix, +4.3 %). 0.185 from the 19 rows alone before the NIC efficiency (session
  15–18); the estimate 0.05 before that held none of them in its 80 % intervals. JAX: its
  mechanisms are simulated from their documentation and no held-out set large enough times them
  (six MaxText rows); 0.05 is an *estimate* (no source), to be replaced when it brings measurements.
- peak memory: the activation formulas reproduce Korthikanti et al. 2022 Table 2 exactly
  (tests/costs/test_costs_memory_closed_forms.py), so the formula term is 0; the allocator
  term is PyTorch's caching-allocator fragmentation, 15 % on average (up to 33 %) over eight
  LLMs on A100-80GB (Guo et al. 2024, GMLake, ASPLOS, abstract): σ_M = ln(1.15) = 0.140
  (33 % is then ≈ 2σ).

Interface for per-device calibrations (issue 12 item 2): pass any :class:`CurveSigmas`
(``measured``, ``sigma_gemm``, ``sigma_attention``, ``sigma_memory``; e.g. the record of
``simcluster.costs.devices.device_calibration``) to :func:`compute_sigma`; its σ then replace
the H100 ones and the transfer term. Without one, a device counts as calibrated when
:data:`CALIBRATED_DEVICES` lists it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol

from simcluster.metrics.error_bars import LEVEL, z_score

# --- kernel curves (H100 calibration residuals; recomputed by calibration_sigmas) ---------------
GEMM_SIGMA = 0.0464  # RMS of ln(Σpred/Σmeas) over the 60 layer groups (12 GEMMs each) of the 720 rows
ATTENTION_SIGMA = 0.0652  # RMS of ln(pred/meas) of forward + backward over the 6 flash shapes
MEMORY_BOUND_SIGMA = 0.0416  # RMS over the 7 copy / gelu / layernorm rows
CURVE_SIGMAS: dict[str, float] = {"gemm": GEMM_SIGMA, "attention": ATTENTION_SIGMA, "memory": MEMORY_BOUND_SIGMA}

#: Devices whose compute curves were measured (H100) or share the measured die (H200: the MAMF
#: table notes "H200 is the same" as H100 SXM for BF16 matmul).
CALIBRATED_DEVICES = frozenset({"h100", "h200"})

#: Maximum Achievable Matmul FLOPS, BF16, efficiency = MAMF / datasheet peak (Bekman, Machine
#: Learning Engineering Open Book, compute/accelerator/README.md, "Maximum Achievable Matmul
#: FLOPS comparison table"): (accelerator, vendor, efficiency).
MAMF_BF16: tuple[tuple[str, str, float], ...] = (
    ("Intel Gaudi 2", "intel", 0.969), ("NVIDIA A100 SXM", "nvidia", 0.869),
    ("NVIDIA GH200 SXM", "nvidia", 0.838), ("NVIDIA A100 PCIe", "nvidia", 0.811),
    ("NVIDIA H100 SXM", "nvidia", 0.803), ("NVIDIA B300 SXM", "nvidia", 0.786),
    ("NVIDIA B200 SXM", "nvidia", 0.776), ("Intel Gaudi 3", "intel", 0.741),
    ("NVIDIA GB200 SXM", "nvidia", 0.729), ("AMD MI355X", "amd", 0.680),
    ("AMD MI325X", "amd", 0.604), ("AMD MI300X", "amd", 0.514),
)
#: The same table's earlier edition against its current one (TFLOP/s, two torch/CUDA releases).
MAMF_REPEATS: tuple[tuple[str, float, float], ...] = (
    ("NVIDIA A100 SXM", 267.9, 271.2), ("NVIDIA GH200 SXM", 821.0, 828.6),
    ("NVIDIA A100 PCIe", 256.4, 252.9), ("NVIDIA H100 SXM", 792.1, 794.5),
)

# --- communication ----------------------------------------------------------------------------
#: (simulated, NCCL) large-message all-reduce busbw in GB/s, docs/model.md "Collectives".
NCCL_BUSBW: tuple[tuple[float, float], ...] = ((229.9, 230.0), (369.8, 370.0), (190.6, 192.0), (48.0, 48.0))
#: NDR per-NIC busbw as quoted, 46–48 of 50 GB/s (simcluster/topology/efficiency.py).
NCCL_QUOTE_RANGE = (46.0, 48.0)
#: Calibrated link efficiencies (A100 NVLink3, H100 NVLink4, EDR/HDR, NDR).
CALIBRATED_LINK_EFFICIENCY = (230 / 300, 370 / 450, 0.96, 0.94)
#: Devices whose NVLink efficiency was calibrated to a published NCCL figure.
CALIBRATED_LINK_DEVICES = frozenset({"a100-40gb", "a100-80gb", "h100", "h200"})
#: NIC line rates (bytes/s per direction) with a published NCCL figure: EDR, HDR, NDR.
CALIBRATED_NIC_RATES = (100e9 / 8, 200e9 / 8, 400e9 / 8)

# --- software stack ---------------------------------------------------------------------------
#: Stacks the mechanisms were never timed for: an estimate, not a measurement (module docstring).
UNTIMED_STACK_SIGMA = 0.05
#: The ``pytorch`` stack's σ (all of it, the kernel-library version included), measured on llm-foundry's 87
#: held-out table rows by the method of moments (module docstring; benchmarks/validation/foundry_tables.py).
PYTORCH_STACK_SIGMA = 0.0
#: The ``deepspeed`` stack's σ, measured the same way on BigScience's 49 held-out layout trials
#: (benchmarks/validation/bloom_prequel.py).
DEEPSPEED_STACK_SIGMA = 0.1186

# --- memory -----------------------------------------------------------------------------------
MEMORY_FORMULA_SIGMA = 0.0  # Korthikanti et al. 2022 Table 2 reproduced exactly
ALLOCATOR_FRAGMENTATION = 0.15  # GMLake (Guo et al. 2024): 15 % on average over eight LLMs


def rms(values: Iterable[float]) -> float:
    """sqrt(mean(v²)) (0 for no values)."""
    v = list(values)
    return math.sqrt(sum(x * x for x in v) / len(v)) if v else 0.0


def transfer_sigma(vendor: str) -> float:
    """σ of reusing the H100 curves on another device: RMS of ln(e / e_H100) over the MAMF table's
    other rows, the same vendor's for NVIDIA devices, every row for any other vendor."""
    h100 = next(e for name, _, e in MAMF_BF16 if name == "NVIDIA H100 SXM")
    rows = [e for name, v, e in MAMF_BF16 if name != "NVIDIA H100 SXM" and (vendor != "nvidia" or v == "nvidia")]
    return rms(math.log(e / h100) for e in rows)


def version_sigma() -> float:
    """σ of the kernel-library version: RMS of ln(new / old) over the MAMF table's repeats."""
    return rms(math.log(new / old) for _, old, new in MAMF_REPEATS)


def link_sigma(calibrated: bool) -> float:
    """σ of a collective's time: fit residual and quote precision in quadrature where the link
    efficiency was calibrated; the scatter of the calibrated efficiencies elsewhere."""
    if calibrated:
        lo, hi = NCCL_QUOTE_RANGE
        quote = math.log(hi / lo) / math.sqrt(12.0)
        return math.hypot(rms(math.log(s / n) for s, n in NCCL_BUSBW), quote)
    logs = [math.log(e) for e in CALIBRATED_LINK_EFFICIENCY]
    mean = sum(logs) / len(logs)
    return math.sqrt(sum((x - mean) ** 2 for x in logs) / (len(logs) - 1))


def links_calibrated(devices: Iterable[str], intra: str, inter: str, nic_bandwidth: float, nodes: int,
                     explicit: bool = False, nic_measured: bool = False) -> bool:
    """Whether every link a run uses had its efficiency calibrated to a published NCCL figure: the
    devices' NVLink (:data:`CALIBRATED_LINK_DEVICES`) behind NVSwitch, and across nodes a fat tree
    or rail-optimized network of EDR, HDR or NDR NICs, or of NICs whose share of their line rate was
    measured on the cluster itself (``nic_measured``: ``inter_node.nic_efficiency`` given). An explicit
    graph, a PCIe, NVLink-mesh or torus fabric counts as not calibrated."""
    if explicit or not all(d in CALIBRATED_LINK_DEVICES for d in devices) or intra not in ("nvswitch", "none"):
        return False
    if nodes <= 1:
        return True
    return inter in ("fat-tree", "rail-optimized") and (nic_measured or any(
        abs(nic_bandwidth - r) <= 1e-3 * r for r in CALIBRATED_NIC_RATES))


class CurveSigmas(Protocol):
    """What a per-device calibration says about its curves: whether they rest on measurements of
    that device, and each curve's σ of ln(predicted / measured) kernel time *including* the
    uncertainty of carrying a curve over where it was not measured (the shape of
    ``simcluster.costs.devices.Calibration``, issue 12 item 2)."""

    @property
    def measured(self) -> bool: ...
    @property
    def sigma_gemm(self) -> float: ...
    @property
    def sigma_attention(self) -> float: ...
    @property
    def sigma_memory(self) -> float: ...


@dataclass(frozen=True)
class DeviceCalibration:
    """A :class:`CurveSigmas` written out (tests, and callers without a calibration module)."""

    measured: bool
    sigma_gemm: float
    sigma_attention: float
    sigma_memory: float


def kernel_sigma(shares: Mapping[str, float] | None = None) -> float:
    """σ of a compute part from the H100 curves it reads: Σ_c s_c σ_c with ``shares`` s_c of its seconds by
    curve (``gemm``, ``attention``, ``memory``; :mod:`simcluster.costs.curve_shares`), the curves' errors
    fully correlated; without shares (or all 0) the largest curve σ, which bounds that mean."""
    total = sum(shares.values()) if shares else 0.0
    if not shares or total <= 0.0:
        return max(CURVE_SIGMAS.values())
    return sum(CURVE_SIGMAS[c] * s for c, s in shares.items()) / total


def _excess(sigma: float, reference: float) -> float:
    """The σ a curve adds to the reference curve's: √max(σ² − σ_ref², 0)."""
    return math.sqrt(max(sigma ** 2 - reference ** 2, 0.0))


def _share(shares: Mapping[str, float] | None, curve: str) -> float:
    """``curve``'s share of the seconds in ``shares``; 1 without shares (or all 0), the bound."""
    total = sum(shares.values()) if shares else 0.0
    return shares.get(curve, 0.0) / total if shares and total > 0.0 else 1.0


def peak_sigma(peak_range: tuple[float, float] | None) -> float:
    """σ of a dense peak known only to lie in [low, high] (``cluster.device.peak_flops_range``: a power-capped part
    whose source brackets its peak): a uniform spread over ln(high/low) in log time, ln(high/low)/√12 (the
    convention of :func:`clock_sigma`); 0 without a range."""
    if not peak_range:
        return 0.0
    low, high = peak_range
    return abs(math.log(high / low)) / math.sqrt(12.0)


def compute_sigma(device_name: str, vendor: str = "nvidia", calibration: CurveSigmas | None = None,
                  reference: CurveSigmas | None = None, shares: Mapping[str, float] | None = None,
                  flash: bool = True, peak_range: tuple[float, float] | None = None) -> float:
    """σ of a compute part on ``device_name``: the H100 fit's curve σ weighted by the part's ``shares`` of
    seconds by curve (:func:`kernel_sigma`; the largest curve σ without them), widened in quadrature by the uncertainty of
    carrying the fit to this device and by that of its sustained clock (:func:`clock_sigma`). With ``calibration`` (this device's record of
    :func:`simcluster.costs.devices.device_calibration`, with the run's attention kernel swapped in:
    :func:`simcluster.costs.attention_kernels.with_attention_kernel`) and ``reference`` (the H100's), that is
    the GEMM σ the device's rescaling adds to the H100's, √(σ_dev² − σ_H100²) (GEMMs dominate a
    training step's compute), and the attention σ its flash curve adds to the H100's, √(σ_att² − σ_att,H100²),
    on the attention's share of the seconds only (the A100's FlashAttention-2 curve, a kernel published only as a
    ratio to another: FA2 on Hopper, FlashAttention 1, Triton; the attention errors correlate with each other,
    not with the GEMMs'; ``flash`` False: the attention runs unfused, on the GEMM and memory-bound curves, and
    no flash curve's σ is added); without them, :func:`transfer_sigma` unless :data:`CALIBRATED_DEVICES`
    lists the device. ``peak_range``: the device's peak known only within it (:func:`peak_sigma`), in quadrature on
    the tensor cores' share of the seconds (GEMMs and attention; memory-bound kernels keep the HBM's speed)."""
    kernels = kernel_sigma(shares)
    tensor = 1.0 - _share(shares, "memory") if shares and sum(shares.values()) > 0.0 else 1.0  # GEMMs and attention
    peak = tensor * peak_sigma(peak_range)
    if calibration is not None:
        if reference is None:
            return math.hypot(max(calibration.sigma_gemm, calibration.sigma_attention, calibration.sigma_memory), peak)
        extra = _excess(calibration.sigma_gemm, reference.sigma_gemm)
        attention = (_share(shares, "attention") * _excess(calibration.sigma_attention, reference.sigma_attention)
                     if flash else 0.0)
        return math.hypot(kernels, extra, attention, clock_sigma(getattr(calibration, "clock_ratio", 1.0)), peak)
    return math.hypot(kernels if device_name in CALIBRATED_DEVICES else math.hypot(kernels, transfer_sigma(vendor)),
                      peak)


def clock_sigma(clock_ratio: float) -> float:
    """σ of a sustained-clock factor r (:attr:`simcluster.costs.devices.Calibration.clock_ratio`): a run may hold
    any clock between the one assumed sustained and the one measured, a uniform spread over |ln r| in log time,
    whose standard deviation is |ln r| / √12 (0.023 for the H100's 1,830 / 1,980 MHz; the convention of
    :func:`link_sigma` for a quoted range)."""
    return abs(math.log(clock_ratio)) / math.sqrt(12.0)


def stack_sigma(framework: str) -> float:
    """σ of the software stack: the kernel-library version for Megatron-LM, the cost model's own
    stack; for PyTorch and DeepSpeed the σ their held-out rows imply (:data:`PYTORCH_STACK_SIGMA`,
    :data:`DEEPSPEED_STACK_SIGMA`, not below the version's); :data:`UNTIMED_STACK_SIGMA` in quadrature for
    the others."""
    v = version_sigma()
    if framework == "megatron":
        return v
    if framework == "pytorch":
        return max(v, PYTORCH_STACK_SIGMA)
    if framework == "deepspeed":
        return max(v, DEEPSPEED_STACK_SIGMA)
    return math.hypot(v, UNTIMED_STACK_SIGMA)


def memory_sigma() -> float:
    """σ of peak memory: the formula's (0: Table 2 exact) and the allocator's, in quadrature."""
    return math.hypot(MEMORY_FORMULA_SIGMA, math.log(1.0 + ALLOCATOR_FRAGMENTATION))


def calibration_sigmas() -> dict[str, float]:
    """The kernel σ recomputed from the H100 calibration tables (what the constants above hold)."""
    import numpy as np

    from simcluster.costs import calibration as cal
    from simcluster.costs.compute import ComputeModel

    model = ComputeModel(cal.H100, sustained=False)  # the measurements' own (burst) clock
    g = cal.gemm_table()
    g = g.assign(pred=[model.gemm_time(m, n, k) for m, n, k in zip(*(g[c].to_numpy(int).tolist() for c in "mnk"))])
    layers = g.groupby(["hidden", "tp", "M"])[["pred", "time_s"]].sum()  # one layer's 12 GEMMs at one micro batch
    gemm = rms(np.log(layers.pred / layers.time_s).tolist())
    f = cal.flash_table()
    shapes = list(zip(*(f[c].to_numpy(int).tolist() for c in ("batch", "heads", "seq", "head_dim"))))
    r = [math.log((model.attention_time(*s) + model.attention_time(*s, backward=True)) / (fwd + bwd))
         for s, fwd, bwd in zip(shapes, f["fwd_s"], f["bwd_s"])]
    mb = cal.load_csv(cal.MEMORY_CSV)
    rm = [math.log(model.memory_time(b, k) / (ms * 1e-3)) for b, k, ms in zip(mb.bytes_moved, mb.kernel, mb.ms_median)]
    return {"gemm": gemm, "attention": rms(r), "memory": rms(rm)}


def table() -> list[tuple[str, float, str]]:
    """(term, σ, source) of every σ the intervals use, for the docs and the command below."""
    return [
        ("GEMM (H100 calibration)", GEMM_SIGMA, "RMS of ln(Σpred/Σmeas), 60 layers of 12 GEMMs (720 rows)"),
        ("flash attention (H100)", ATTENTION_SIGMA, "RMS of ln(pred/meas), 6 shapes, fwd + bwd summed"),
        ("memory-bound (H100)", MEMORY_BOUND_SIGMA, "RMS of ln(pred/meas), 7 rows"),
        ("compute, calibrated device", compute_sigma("h100"), "largest curve σ (a run: share-weighted mean)"),
        ("compute, other NVIDIA", compute_sigma("a100-80gb"), "⊕ MAMF scatter, NVIDIA rows"),
        ("compute, other vendor (TPU)", compute_sigma("tpu-v4", "google"), "⊕ MAMF scatter, every row"),
        ("communication, calibrated links", link_sigma(True), "NCCL busbw residual ⊕ quote range"),
        ("communication, other links", link_sigma(False), "scatter of calibrated link efficiencies"),
        ("stack: megatron", stack_sigma("megatron"), "MAMF repeats across torch/CUDA releases"),
        ("stack: pytorch", stack_sigma("pytorch"), "87 held-out llm-foundry rows (method of moments)"),
        ("stack: deepspeed", stack_sigma("deepspeed"), "49 held-out BigScience layout trials (method of moments)"),
        ("stack: jax", stack_sigma("jax"), "⊕ 0.05 estimate (untimed mechanisms)"),
        ("peak memory", memory_sigma(), "ln(1.15): GMLake's mean fragmentation"),
    ]


def main() -> None:  # pragma: no cover - a report for humans
    print("recomputed from simcluster/data/calibration:",
          {k: round(v, 4) for k, v in calibration_sigmas().items()})
    print(f"z at {LEVEL:.0%}: {z_score():.4f}")
    for term, sigma, source in table():
        print(f"{term:<34} σ = {sigma:.4f}  (±{math.expm1(z_score() * sigma):.1%} at 80 %)  {source}")


if __name__ == "__main__":  # pragma: no cover
    main()
