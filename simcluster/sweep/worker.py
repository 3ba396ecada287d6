"""What a worker process does with one point: simulate it and return a plain record.

:func:`simulate_point` never raises for a problem of the point itself: a simulation that
fails becomes ``status: error`` with the exception's message, a workload the simulator
finds impossible (a SpecError raised late) ``status: invalid``. The record holds only
JSON types, so it can cross process boundaries (pickle, dask) and go into the store.
"""

from __future__ import annotations

import time
from typing import Any

MESSAGE_CHARS = 500


def plain(value: Any) -> Any:
    """``value`` with numpy scalars turned into Python numbers (recursively for dicts and lists)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (TypeError, ValueError):
            return str(value)
    return value


def memory_message(summary: dict[str, Any]) -> str:
    """"does not fit in memory: ..." for a point whose peak exceeds the device, else ""."""
    if summary.get("fits_in_memory") is not False:
        return ""
    peak, cap = summary.get("peak_memory_bytes"), summary.get("memory_capacity_bytes")
    try:
        return f"does not fit in memory: peak {float(peak) / 2**30:.1f} GiB > {float(cap) / 2**30:.1f} GiB"
    except (TypeError, ValueError):
        return "does not fit in memory"


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, shortened."""
    text = " ".join(str(exc).split()) or "(no message)"
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def simulate_point(spec: Any) -> dict[str, Any]:
    """Simulate one validated workload; ``{status, message, summary, wall_s}``."""
    from simcluster.errors import SpecError
    from simcluster.run import simulate_workload

    start = time.perf_counter()
    try:
        summary = plain(simulate_workload(spec).summary)
    except SpecError as exc:
        reason = "; ".join(f"{p.key}: {p.reason}" if p.key else p.reason for p in exc.problems)
        return {"status": "invalid", "message": reason, "summary": None, "wall_s": time.perf_counter() - start}
    except Exception as exc:  # noqa: BLE001 - any failure of one point is that point's result
        return {"status": "error", "message": one_line(exc), "summary": None, "wall_s": time.perf_counter() - start}
    wall = time.perf_counter() - start
    return {"status": "ok", "message": memory_message(summary), "summary": summary, "wall_s": wall}
