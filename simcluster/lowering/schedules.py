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

With equal stage times and free communication the bubble is (p−1)/(m+p−1) for
the first two and (p−1)/(v·m+p−1) for the interleaved one (ibid., eqs. 1–2).
"""

from __future__ import annotations

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
def one_f_one_b(p: int, m: int, v: int, s: int) -> list[Unit]:
    if v != 1:
        return interleaved(p, m, v, s)
    warm = min(p - s - 1, m)
    order: list[Unit] = [("F", i, 0) for i in range(warm)]
    for i in range(m - warm):
        order += [("F", warm + i, 0), ("B", i, 0)]
    order += [("B", i, 0) for i in range(m - warm, m)]
    return order


@SCHEDULES.register("interleaved")
def interleaved(p: int, m: int, v: int, s: int) -> list[Unit]:
    if m % p != 0:
        raise ValueError("the interleaved schedule needs microbatches to be a multiple of pipeline")
    total = m * v

    def unit(k: int, forward: bool) -> Unit:
        chunk = (k // p) % v
        if not forward:
            chunk = v - 1 - chunk
        mb = (k // (p * v)) * p + k % p
        return ("F" if forward else "B", mb, chunk)

    warm = min((p - s - 1) * 2 + (v - 1) * p, total)
    order = [unit(k, True) for k in range(warm)]
    for k in range(total - warm):
        order += [unit(warm + k, True), unit(k, False)]
    order += [unit(k, False) for k in range(total - warm, total)]
    return order


def peak_in_flight(order: list[Unit]) -> int:
    """Most forward units whose activations are held at once (forwards not yet backwarded)."""
    held = peak = 0
    for kind, _, _ in order:
        held += 1 if kind == "F" else -1
        peak = max(peak, held)
    return peak
