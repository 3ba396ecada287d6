"""Closed forms the reports draw beside the simulated figures."""

from __future__ import annotations


def _int(v: object, default: int = 1) -> int:
    try:
        return int(v)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return default


def microbatches(config: dict | None, summary: dict | None = None) -> int:
    """Microbatches per pipeline per iteration: ``summary["microbatches"]`` or
    global_batch / (micro_batch × data) from the config."""
    m = (summary or {}).get("microbatches")
    if isinstance(m, (int, float)) and m > 0:
        return int(m)
    tr = (config or {}).get("training") or {}
    par = (config or {}).get("parallelism") or {}
    return max(1, _int(tr.get("global_batch"), 1) // max(1, _int(tr.get("micro_batch"), 1) * _int(par.get("data"), 1)))


def theoretical_bubble(config: dict | None, summary: dict | None = None) -> tuple[float | None, str]:
    """``(fraction, formula)`` of the pipeline bubble with equal stage times and free
    communication (CONTRACT.md; Narayanan et al. 2021 eqs. 1–2; Qi et al. 2023 for ZB-H1 with
    equal F, B and W times); ``(None, reason)`` for a schedule without a closed form here."""
    par = (config or {}).get("parallelism") or {}
    p, v = _int(par.get("pipeline"), 1), _int(par.get("virtual_stages"), 1)
    schedule = str(par.get("schedule") or "1f1b")
    m = microbatches(config, summary)
    if p <= 1:
        return 0.0, "no pipeline (p = 1)"
    if schedule in ("gpipe", "1f1b") and v == 1:
        return (p - 1) / (m + p - 1), f"(p−1)/(m+p−1) with p={p}, m={m}"
    if schedule == "interleaved" or (schedule == "1f1b" and v > 1):
        return (p - 1) / (v * m + p - 1), f"(p−1)/(v·m+p−1) with p={p}, v={v}, m={m}"
    if schedule == "zero-bubble":
        return (p - 1) / (3 * m + p - 1), f"ZB-H1, equal F/B/W: (p−1)/(3m+p−1) with p={p}, m={m}"
    return None, f"no closed form for schedule {schedule}"
