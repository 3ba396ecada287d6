"""Human units for the terminal and the HTML page, and the summary table ``run`` prints."""

from __future__ import annotations

import math
from typing import Callable

GiB = 1024**3


def _finite(v: object) -> float | None:
    """``v`` as a finite float, else None."""
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def fmt_seconds(v: object) -> str:
    """``1.234 s``, ``12.3 ms``, ``45.6 µs``."""
    f = _finite(v)
    if f is None:
        return "—"
    a = abs(f)
    if a >= 1 or a == 0:
        return f"{f:.3f} s"
    if a >= 1e-3:
        return f"{f * 1e3:.4g} ms"
    return f"{f * 1e6:.4g} µs"


def fmt_pct(v: object) -> str:
    """A fraction as a percentage: ``0.4567`` -> ``45.67 %``."""
    f = _finite(v)
    return "—" if f is None else f"{f * 100:.2f} %"


def fmt_gib(v: object) -> str:
    """Bytes in GiB: ``85899345920`` -> ``80.00 GiB``."""
    f = _finite(v)
    return "—" if f is None else f"{f / GiB:.2f} GiB"


def fmt_tflops(v: object) -> str:
    """A TFLOP/s figure: ``123.4 TFLOP/s``."""
    f = _finite(v)
    return "—" if f is None else f"{f:.1f} TFLOP/s"


def accelerator(device: object = None) -> str:
    """What one accelerator of ``device`` is called in the printed table and the report: "GPU", "chip" on a TPU."""
    return "chip" if str(device or "").lower().startswith("tpu") else "GPU"


def gpus_word(n: object, device: object = None) -> str:
    """``n`` accelerators in a title: "GPU" / "GPUs", "TPU chip" / "TPU chips" on a TPU device."""
    word = "TPU chip" if accelerator(device) == "chip" else "GPU"
    return word if _finite(n) == 1 else word + "s"


def fmt_count(v: object, unit: str = "") -> str:
    """A large count with thousands separators: ``1,234,567 tokens/s``."""
    f = _finite(v)
    if f is None:
        return "—"
    s = f"{f:,.0f}" if abs(f) >= 100 else f"{f:.3g}"
    return f"{s} {unit}".strip()


def fmt_bool(v: object) -> str:
    """``yes`` / ``no`` / ``—``."""
    return "—" if v is None else ("yes" if v else "no")


def fmt_range(summary: dict, key: str, fmt: Callable[[object], str]) -> str:
    """`` (80 %: 27.9–31.9 s)``: the ``KEY_interval`` of ``summary`` in ``fmt``'s units, the unit
    written once when both ends share it; empty when the summary has no such interval."""
    iv = summary.get(f"{key}_interval")
    if not isinstance(iv, (list, tuple)) or len(iv) != 2:
        return ""
    lo, hi = fmt(iv[0]), fmt(iv[1])
    if "—" in (lo, hi):
        return ""
    lo_num, _, lo_unit = lo.rpartition(" ")
    hi_num, _, hi_unit = hi.rpartition(" ")
    span = f"{lo_num}–{hi_num} {hi_unit}" if lo_num and lo_unit == hi_unit else f"{lo}–{hi}"
    level = _finite(summary.get("interval_level"))
    return f" ({level * 100:.0f} %: {span})" if level is not None else f" ({span})"


def with_range(summary: dict, key: str, fmt: Callable[[object], str]) -> str:
    """A figure in ``fmt``'s units followed by its interval (:func:`fmt_range`)."""
    return fmt(summary.get(key)) + fmt_range(summary, key, fmt)


def _per_s(v: object) -> str:
    return fmt_count(v, "tokens/s")


#: The figures that carry an interval (``KEY_interval``) and the formatter of each.
RANGED: dict[str, Callable[[object], str]] = {
    "iteration_time_s": fmt_seconds, "tokens_per_s": _per_s, "mfu": fmt_pct, "peak_memory_bytes": fmt_gib}
#: Summary keys the rows below show beside their figure.
INTERVAL_KEYS = frozenset({f"{k}_interval" for k in RANGED} | {"interval_level"})


def summary_rows(summary: dict) -> list[tuple[str, str, str]]:
    """``(key, label, value in human units)`` for the contract's summary figures present in ``summary``,
    each with its interval where the summary has one."""
    s = summary
    rows = [
        ("num_gpus", "GPUs", fmt_count(s.get("num_gpus"))),
        ("iteration_time_s", "iteration time", with_range(s, "iteration_time_s", fmt_seconds)),
        ("tokens_per_s", "throughput", with_range(s, "tokens_per_s", _per_s)),
        ("model_tflops_per_gpu", "model TFLOP/s per GPU", fmt_tflops(s.get("model_tflops_per_gpu"))),
        ("hardware_tflops_per_gpu", "hardware TFLOP/s per GPU", fmt_tflops(s.get("hardware_tflops_per_gpu"))),
        ("mfu", "MFU", with_range(s, "mfu", fmt_pct)),
        ("hfu", "HFU", fmt_pct(s.get("hfu"))),
        ("bubble_fraction", "pipeline bubble", fmt_pct(s.get("bubble_fraction"))),
        ("exposed_comm_fraction", "exposed communication", fmt_pct(s.get("exposed_comm_fraction"))),
        ("compute_utilization", "compute utilization", fmt_pct(s.get("compute_utilization"))),
        ("host_wait_fraction", "host wait (GPU idle)", fmt_pct(s.get("host_wait_fraction"))),
        ("peak_memory_bytes", "peak memory per GPU", with_range(s, "peak_memory_bytes", fmt_gib)),
        ("peak_memory_reserved_bytes", "peak reserved per GPU (allocator)", fmt_gib(s.get("peak_memory_reserved_bytes"))),
        ("memory_capacity_bytes", "memory capacity", fmt_gib(s.get("memory_capacity_bytes"))),
        ("fits_in_memory", "fits in memory", fmt_bool(s.get("fits_in_memory"))),
    ]
    return [r for r in rows if r[0] in s]


def memory_verdict(summary: dict, details: dict | None = None) -> list[tuple[str, str]]:
    """The rows that say plainly that a layout does not fit, with the peak stage's breakdown.

    Empty when it fits (or nothing is known). ``details["memory"]`` is the per-stage list of
    :func:`simcluster.metrics.summary.summarize` (weights, gradients, optimizer_states,
    activations, buffers, total in bytes).
    """
    if summary.get("fits_in_memory") is not False:
        return []
    need, cap = summary.get("peak_memory_bytes"), summary.get("memory_capacity_bytes")
    rows = [("DOES NOT FIT", f"needs {fmt_gib(need)} per GPU, the device has {fmt_gib(cap)}")]
    stages = (details or {}).get("memory") or []
    if stages:
        peak = max(stages, key=lambda m: m.get("total", 0))
        parts = ", ".join(f"{label} {fmt_gib(peak.get(key))}" for key, label in (
            ("weights", "weights"), ("gradients", "gradients"), ("optimizer_states", "optimizer states"),
            ("activations", "activations"), ("buffers", "buffers")) if key in peak)
        rows.append((f"stage {peak.get('stage', 0)} memory", parts))
    return rows


#: The exposed-communication kinds of details.json's breakdown, as the summary line names them.
EXPOSED_KINDS = (("exposed_tp_comm", "TP"), ("exposed_ep_comm", "EP"), ("exposed_pp_comm", "PP"),
                 ("exposed_dp_comm", "DP"))


def _exposed_split(s: dict, details: dict | None) -> str:
    """`` (TP 0.7 %, PP 3.7 %, DP 1.4 %)``: the exposed communication by kind, shares of the
    iteration averaged over the stages of ``details``' breakdown (what the compute waited on,
    :mod:`simcluster.metrics.waits`); kinds under 0.05 % left out; empty without a breakdown."""
    stages = (details or {}).get("breakdown") or []
    T = float(s.get("iteration_time_s") or 0.0)
    if not stages or T <= 0:
        return ""
    parts = []
    for key, name in EXPOSED_KINDS:
        share = sum(float(b.get(key, 0.0)) for b in stages) / len(stages) / T
        if share >= 0.0005:
            parts.append(f"{name} {fmt_pct(share)}")
    return f" ({', '.join(parts)})" if parts else ""


def print_summary(summary: dict, config: dict | None = None, details: dict | None = None) -> str:
    """A short aligned text table of a run's headline figures (returned, not printed).

    Iteration time, tokens/s, TFLOP/s per GPU, MFU, bubble, exposed communication (by kind
    when ``details`` are given), peak
    memory against capacity and whether it fits, each headline figure with its interval
    (``29.8 s (80 %: 27.9–31.9 s)``); a layout that does not fit says so in
    capitals, with the peak stage's memory by category when ``details`` are given.
    """
    s = summary or {}
    cfg = config or {}
    par = cfg.get("parallelism") or {}
    layout = " × ".join(f"{k[0].upper()}P{par[k]}" for k in ("tensor", "pipeline", "data", "context")
                        if k in par and not (k == "context" and par[k] == 1))
    cluster = cfg.get("cluster") or {}
    device = cluster.get("device")
    device = device.get("name") if isinstance(device, dict) else device
    head = str(cfg.get("name") or "run")
    where = ", ".join(str(x) for x in (layout and f"{layout}", device) if x)
    rows = [
        ("iteration time", with_range(s, "iteration_time_s", fmt_seconds)),
        ("throughput", with_range(s, "tokens_per_s", _per_s)),
        (f"TFLOP/s per {accelerator(device)}", f"{fmt_tflops(s.get('model_tflops_per_gpu'))} model, "
                            f"{fmt_tflops(s.get('hardware_tflops_per_gpu'))} hardware"),
        ("MFU / HFU", f"{fmt_pct(s.get('mfu'))} / {fmt_pct(s.get('hfu'))}" + fmt_range(s, "mfu", fmt_pct)
         .replace(": ", ": MFU ", 1)),
        ("pipeline bubble", fmt_pct(s.get("bubble_fraction"))),
        ("exposed comm", fmt_pct(s.get("exposed_comm_fraction")) + _exposed_split(s, details)),
    ] + ([("host wait", fmt_pct(s.get("host_wait_fraction")) + " (host work, the GPU idle)")]
         if s.get("host_wait_fraction") else []) + [
        ("peak memory", f"{fmt_gib(s.get('peak_memory_bytes'))} of {fmt_gib(s.get('memory_capacity_bytes'))}"
                        + fmt_range(s, "peak_memory_bytes", fmt_gib)),
    ] + ([("peak reserved", f"{fmt_gib(s.get('peak_memory_reserved_bytes'))} (tensors + the caching allocator's "
                             "reserve)")] if "peak_memory_reserved_bytes" in s else []) + [
        ("fits in memory", fmt_bool(s.get("fits_in_memory"))),
    ] + memory_verdict(s, details)
    width = max(len(k) for k, _ in rows)
    title = f"{head} on {fmt_count(s.get('num_gpus'))} {gpus_word(s.get('num_gpus'), device)}" + (
        f" ({where})" if where else "")
    lines = [title, "-" * max(len(title), width + 24)]
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)
