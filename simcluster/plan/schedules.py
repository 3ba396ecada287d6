"""Pipeline schedules: the order in which a stage runs forward and backward passes.

A schedule maps (p stages, m microbatches, v chunks per stage, stage s) to the
compute-stream order of that stage: a list of ``(pass, microbatch, chunk)``
with pass ``"F"`` or ``"B"``. Registered by name (``parallelism.schedule``).

- ``gpipe`` (Huang et al. 2019): all m forwards, then all m backwards.
- ``1f1b`` (PipeDream-Flush, Narayanan et al. 2021 §2.2.1): stage s runs
  min(p−s−1, m) warm-up forwards, then alternates one forward and one backward,
  then drains the remaining backwards.
- ``interleaved`` (Narayanan et al. 2021 §2.2.2, Megatron-LM's schedule):
  each stage holds v model chunks; units are taken in groups of p
  microbatches per chunk; warm-up of (p−s−1)·2 + (v−1)·p forward units.

- ``dualpipe`` (DeepSeek-V3 §3.2.1): here 1F1B's order of passes; what it adds is the MoE
  all-to-all overlapped with compute (:mod:`simcluster.plan.moe`). Its bidirectional
  pipeline's smaller bubble, (p/2 − 1)·(F&B + B − 3W), and its two copies of the
  parameters are not modelled.

With equal stage times and free communication the bubble is (p−1)/(m+p−1) for
the first two and (p−1)/(v·m+p−1) for the interleaved one (ibid., eqs. 1–2).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

from simcluster.registry import Registry

Unit = tuple[str, int, int]  # (pass, microbatch, chunk)
Schedule = Callable[[int, int, int, int], list[Unit]]

SCHEDULES: Registry[Schedule] = Registry("schedule")


@SCHEDULES.register("gpipe")
def gpipe(p: int, m: int, v: int, s: int) -> list[Unit]:
    if v != 1:
        raise ValueError("gpipe runs one model chunk per stage (virtual_stages: 1)")
    return [("F", i, 0) for i in range(m)] + [("B", i, 0) for i in range(m)]


@SCHEDULES.register("1f1b")
def one_f_one_b(p: int, m: int, v: int, s: int, warm_extra: int = 0) -> list[Unit]:
    """``warm_extra`` more warm-up forwards (Megatron-Core's merged 1F1B: :mod:`simcluster.plan.ep_overlap`)."""
    if v != 1:
        return interleaved_order(p, m, v, s, warm_extra)
    warm = warm_units("1f1b", p, m, 1, s, warm_extra)
    order: list[Unit] = [("F", i, 0) for i in range(warm)]
    for i in range(m - warm):
        order += [("F", warm + i, 0), ("B", i, 0)]
    order += [("B", i, 0) for i in range(m - warm, m)]
    return order


@SCHEDULES.register("dualpipe")
def dualpipe(p: int, m: int, v: int, s: int) -> list[Unit]:
    """DualPipe's passes in 1F1B's order (see the module docstring)."""
    if v != 1:
        raise ValueError("dualpipe runs one model chunk per stage (virtual_stages: 1)")
    return one_f_one_b(p, m, v, s)


@SCHEDULES.register("interleaved")
def interleaved(p: int, m: int, v: int, s: int, warm_extra: int = 0) -> list[Unit]:
    """Megatron-LM's order (:func:`interleaved_order`)."""
    return interleaved_order(p, m, v, s, warm_extra)


def interleaved_order(p: int, m: int, v: int, s: int, warm_extra: int = 0) -> list[Unit]:
    """Megatron-LM's order; ``warm_extra`` more warm-up forward units (Megatron-Core's
    ``get_pp_rank_microbatches``: one more under ``overlap_moe_expert_parallel_comm``)."""
    if m % p != 0:
        raise ValueError("the interleaved schedule needs microbatches to be a multiple of pipeline")
    total = m * v

    def unit(k: int, forward: bool) -> Unit:
        chunk = (k // p) % v
        if not forward:
            chunk = v - 1 - chunk
        mb = (k // (p * v)) * p + k % p
        return ("F" if forward else "B", mb, chunk)

    warm = warm_units("interleaved", p, m, v, s, warm_extra)
    order = [unit(k, True) for k in range(warm)]
    for k in range(total - warm):
        order += [unit(warm + k, True), unit(k, False)]
    order += [unit(k, False) for k in range(total - warm, total)]
    return order


@SCHEDULES.register("zero-bubble")
def zero_bubble_h1(p: int, m: int, v: int, s: int,
                   times: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> list[Unit]:
    """ZB-H1 (Qi et al. 2023, "Zero Bubble Pipeline Parallelism", §3.1).

    The backward pass is split into B (input gradients, on the critical path)
    and W (weight gradients, free to move). Every stage keeps 1F1B's order of
    F and B passes, so peak activation memory stays 1F1B's (p−s microbatches),
    keeps at most s W passes pending (later stages finish their B passes
    earlier and drain their W passes while the last B travels up) and runs a
    pending W whenever its next F or B is not ready yet: the W passes fill the
    bubbles. A pending W holds only its GEMM inputs, and the first stage,
    which holds the most activations, defers none, so peak memory is 1F1B's. Like the paper's scheduler, the order is
    found by simulating the pipeline with the passes' estimated durations
    ``times`` = (T_F, T_B, T_W) (equal by default, the paper's assumption);
    the bubble falls from (p−1)(T_F + T_B + T_W) to about (p−1)(T_F + T_B − T_W).
    """
    if v != 1:
        raise ValueError("zero-bubble runs one model chunk per stage (virtual_stages: 1)")
    return list(_zb_orders(p, m, tuple(float(x) for x in times))[s])


@lru_cache(maxsize=64)
def _zb_orders(p: int, m: int, times: tuple[float, float, float]) -> tuple[tuple[Unit, ...], ...]:
    """Greedy list scheduling of all stages at once (deterministic: ties by stage)."""
    dur = {"F": times[0], "B": times[1], "W": times[2]}
    fb = [one_f_one_b(p, m, 1, s) for s in range(p)]
    ptr = [0] * p
    pending: list[list[int]] = [[] for _ in range(p)]
    end: dict[tuple[str, int, int], float] = {}
    orders: list[list[Unit]] = [[] for _ in range(p)]
    free = [0.0] * p
    blocked: set[int] = set()
    while True:
        cand = [s for s in range(p) if ptr[s] < len(fb[s])]
        if not cand:
            break
        s = min(cand, key=lambda x: (free[x], x in blocked, x))
        now = free[s]
        if len(pending[s]) > s:  # stage s keeps at most s W's back, for its cool-down
            orders[s].append(("W", pending[s].pop(0), 0))
            free[s] = now + dur["W"]
            continue
        kind, mb, _ = fb[s][ptr[s]]
        if kind == "F":
            dep = end.get(("F", s - 1, mb)) if s > 0 else 0.0
        else:
            dep = end.get(("B", s + 1, mb)) if s < p - 1 else end.get(("F", s, mb))
        if dep is not None and dep <= now:
            ptr[s] += 1
            end[(kind, s, mb)] = free[s] = now + dur[kind]
            orders[s].append((kind, mb, 0))
            if kind == "B":
                pending[s].append(mb)
            blocked.clear()
        elif pending[s]:
            orders[s].append(("W", pending[s].pop(0), 0))
            free[s] = now + dur["W"]
        elif dep is not None:
            free[s] = dep
        else:  # wait until another stage moves
            later = [free[x] for x in cand if x != s and free[x] > now]
            if s in blocked or not later and all(x in blocked or x == s for x in cand if free[x] == now):
                if not later:
                    raise RuntimeError("zero-bubble schedule: no stage can progress")
            if later and all(x in blocked or x == s for x in cand if free[x] == now):
                free[s] = min(later)
            blocked.add(s)
    for s in range(p):
        orders[s] += [("W", mb, 0) for mb in pending[s]]
    return tuple(tuple(o) for o in orders)


def warm_units(schedule: str, p: int, m: int, v: int, s: int, warm_extra: int = 0) -> int:
    """Warm-up forward units of stage ``s`` under 1F1B (min(p − s − 1, m)) or the interleaved schedule
    (min(2(p − s − 1) + (v − 1)·p, m·v)), each with ``warm_extra`` more; the steady state then runs m·v of them
    less, one forward and one backward at a time."""
    if schedule == "interleaved" or v > 1:
        return min(2 * (p - s - 1) + (v - 1) * p + warm_extra, m * v)
    return min(p - s - 1 + warm_extra, m)


def microbatches_in_flight(schedule: str, p: int, m: int, v: int, s: int, warm_extra: int = 0) -> int:
    """Microbatches whose activations stage ``s`` holds at its peak: ⌈units in flight / v⌉.

    Forward units in flight (:func:`peak_in_flight` of the schedule's order; a test checks
    the two agree): GPipe m; 1F1B and ZB-H1 min(p − s, m); interleaved w + 1 (w when there
    is no steady state) with w = min(2(p − s − 1) + (v − 1)·p, m·v) warm-up units; ``warm_extra``
    more warm-up units (1F1B and interleaved) hold as many more.
    """
    if schedule == "gpipe":
        units = m
    elif schedule == "interleaved" or (schedule == "1f1b" and v > 1):
        warm = warm_units("interleaved", p, m, v, s, warm_extra)
        units = warm + 1 if m * v > warm else warm
    elif schedule == "1f1b":
        units = min(p - s + warm_extra, m)
    else:  # zero-bubble (ZB-H1 keeps 1F1B's order of forward and backward passes), dualpipe
        units = min(p - s, m)
    return -(-units // v)


def peak_in_flight(order: list[Unit] | tuple[Unit, ...]) -> int:
    """Most forward units whose activations are held at once (forwards not yet backwarded)."""
    held = peak = 0
    for kind, _, _ in order:
        if kind == "W":
            continue  # W keeps only the GEMM inputs, freed with the rest at B (ZB-H1 §3.1)
        held += 1 if kind == "F" else -1
        peak = max(peak, held)
    return peak
