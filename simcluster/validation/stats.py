"""Summary figures of signed relative errors, as the validation scripts print them.

MAPE: the mean of |predicted / published − 1| (what ``validate-published`` reports); the median of the
signed errors says whether a set of rows leans fast (+, for throughput) or slow.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from simcluster.metrics.error_bars import LEVEL, metric_interval


def held_out_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """A held-out script's command line: ``doc``'s first line as its description and ``--json FILE``."""
    parser = argparse.ArgumentParser(prog=prog, description=(doc or "").splitlines()[0] if doc else None)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    return parser


def error_summary(errors: Sequence[float], *, absolute_median: bool = False) -> str:
    """``N rows, MAPE m %, median e %`` of signed relative errors, with ``, median |error| a %`` if asked."""
    line = (f"{len(errors)} rows, MAPE {statistics.fmean(abs(e) for e in errors):.2%}, "
            f"median {statistics.median(errors):+.1%}")
    if absolute_median:
        line += f", median |error| {statistics.median(abs(e) for e in errors):.1%}"
    return line


def implied_stack_sigma(log_errors: Sequence[float], other_sigmas: Sequence[float]) -> float:
    """The software stack's σ the rows imply (method of moments): if ln(predicted / published) =
    Σ_i w_i σ_i ε_i + σ_stack ε_stack with independent standard normal ε, its mean square over the rows is
    mean(σ_rest²) + σ_stack², so σ_stack = √max(mean(r²) − mean(σ_rest²), 0). The mean square keeps the rows'
    common bias in (a bias the intervals do not know of is error all the same)."""
    ms = statistics.fmean(r * r for r in log_errors)
    return math.sqrt(max(ms - statistics.fmean(s * s for s in other_sigmas), 0.0))


def sigma_without_stack(uncertainty: Mapping[str, Any]) -> float:
    """σ of ln T of a run without its software-stack term (``details["uncertainty"]``: the iteration time's σ
    with ``stack_sigma`` taken out in quadrature), the σ_rest of :func:`implied_stack_sigma`."""
    total, stack = float(uncertainty["iteration_time_sigma"]), float(uncertainty["stack_sigma"])
    return math.sqrt(max(total * total - stack * stack, 0.0))


def interval_holds(summary: Mapping[str, Any], metric: str, published: float, per: float = 1.0) -> bool:
    """Whether ``published`` lies in the interval of summary figure ``metric`` (its default level, 80 %), both
    bounds divided by ``per`` (a per-GPU figure against a whole-run summary: ``per`` = the GPUs)."""
    lo, hi = metric_interval(metric, float(summary[metric]), summary)
    return lo / per <= published <= hi / per


def held_line(held: Sequence[bool]) -> str:
    """``80 % intervals hold k of N published figures (p %)`` for a held-out script's rows (``held``: whether each
    published figure lies in its interval; the corpus' own line is :func:`simcluster.validation.acceptance.coverage_line`)."""
    n = len(held)
    return (f"{LEVEL:.0%} intervals hold {sum(held)} of {n} published figures"
            f" ({sum(held) / n:.0%})" if n else f"{LEVEL:.0%} intervals: no rows")


def group_lines(records: Sequence[Mapping[str, Any]], label: Callable[[Mapping[str, Any]], str]) -> list[str]:
    """One ``<label>: <error_summary>; <held_line>`` line per distinct ``label(record)`` (sorted), then ``all: ...``:
    what a held-out script prints under its rows (``records`` carry ``error`` and ``inside``)."""
    out = []
    for name in sorted({label(r) for r in records}):
        sel = [r for r in records if label(r) == name]
        out.append(f"{name}: {error_summary([r['error'] for r in sel])}; {held_line([r['inside'] for r in sel])}")
    return out + [f"all: {error_summary([r['error'] for r in records])}; {held_line([r['inside'] for r in records])}"]


def step_record(summary: Mapping[str, Any], published_tokens_per_s: float, step_s: float, **fields: Any) -> dict[str, Any]:
    """A held-out row measured as seconds per step: ``fields``, then the measured and the predicted step, the
    tokens/s published (global batch × sequence / step) and predicted, their signed error and whether the
    published figure lies in the prediction's interval."""
    tok = float(summary["tokens_per_s"])
    return {**fields, "step_s": step_s, "predicted_step_s": float(summary["iteration_time_s"]),
            "published": published_tokens_per_s, "predicted": tok, "error": tok / published_tokens_per_s - 1,
            "inside": interval_holds(summary, "tokens_per_s", published_tokens_per_s)}


def step_line(rec: Mapping[str, Any]) -> str:
    """``step 11.071 s  predicted 11.237 s  tokens/s  -1.5%  in`` (and the row's caveat) of a :func:`step_record`."""
    caveat = rec.get("caveat") or ""
    return (f"step {rec['step_s']:7.3f} s  predicted {rec['predicted_step_s']:7.3f} s  tokens/s {rec['error']:+6.1%}  "
            f"{'in' if rec['inside'] else 'OUTSIDE':7s}{'  [' + caveat + ']' if caveat else ''}")


def report(records: Sequence[Mapping[str, Any]], label: Callable[[Mapping[str, Any]], str], json_path: Any = None) -> int:
    """Print a held-out script's :func:`group_lines` and write its rows as JSON to ``json_path`` (a Path) if given;
    the script's exit status (0)."""
    print("\n".join(group_lines(records, label)))
    if json_path:
        json_path.write_text(json.dumps(list(records), indent=1) + "\n")
    return 0
