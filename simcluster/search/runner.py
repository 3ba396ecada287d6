"""One search, end to end: workload → space → tier 1 (estimate, prune, rank) → tier 2 (simulate
the best) → ranking.csv, best.yaml, estimates.csv, search.json, plots, report.html.

```python
outcome = run_search(SearchOptions(workload="workloads/gpt3-175b.yaml", gpus=(None, 1024)))
outcome.table.iloc[0]        # the best simulated layout
```
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from simcluster.errors import Problem, SpecError
from simcluster.run import build_cluster
from simcluster.runfolder import check_out_dir
from simcluster.search.estimate import Estimator
from simcluster.search.layout import Layout, layout_from_values, layout_of
from simcluster.search.results import OBJECTIVES, Agreement, Entry, agreement, objective_value, ranking_table
from simcluster.search.screen import Screening, screen
from simcluster.search.simulate import layout_sweep, make_executor, simulate
from simcluster.search.space import Space, make_space
from simcluster.spec import load_workload, parse_override
from simcluster.spec.fields import MAX_DEVICES
from simcluster.spec.sweep import split_list
from simcluster.spec.workload import SEARCH_KEYS, SearchSpec
from simcluster.spec.yamlio import parse_scalar

MAX_SEARCH_GPUS = MAX_DEVICES  # the largest cluster a workload may give (spec.fields)
SHARE = 0.05  # tier 2 simulates the best 5 % of the layouts that fit ...
DEFAULT_MAX_SIMULATIONS = 64  # ... but at most this many (at least --top)
PARETO_POINTS = 12  # with a range of GPU counts: the best layout of up to this many counts too
NEUTRAL = ("parallelism.tensor=1", "parallelism.pipeline=1", "parallelism.data=1", "parallelism.context=1",
           "training.micro_batch=1", "parallelism.virtual_stages=1", "parallelism.schedule=1f1b",
           "parallelism.sequence_parallel=false", "parallelism.zero_stage=0")
FIX_FILE = "--fix"


@dataclass
class SearchOptions:
    """What the command line (or a caller) asks for; None: the workload's ``search:`` section or the default."""

    workload: str | Path
    out: Path | None = None
    gpus: tuple[int | None, int] | None = None  # (at least, at most); at least None: more than half
    top: int | None = None
    objective: str | None = None
    fix: list[str] = field(default_factory=list)
    max_simulations: int | None = None
    executor: str = "local"
    jobs: int | None = None
    scheduler: str | None = None
    fresh: bool = False
    reports: bool = True
    progress: bool | None = None


@dataclass
class SearchOutcome:
    """What a search found and wrote."""

    name: str
    out_dir: Path
    objective: str
    top: int
    space: Space
    screening: Screening
    table: pd.DataFrame  # ranking.csv
    agreement: Agreement
    simulated: int  # layouts sent to the simulator
    budget: dict[str, Any]
    wall_s: float
    baseline: str | None  # label of the workload's own layout
    reference: str | None  # label of the best layout with the workload's own degrees
    ranged: bool = False  # a range of GPU counts was asked for (the Pareto front is drawn)
    files: list[Path] = field(default_factory=list)


def _fixes(items: list[str]) -> tuple[dict[str, list[Any]], list[str]]:
    """``--fix`` into (limits on search keys, plain overrides of other workload keys)."""
    limits: dict[str, list[Any]] = {}
    overrides: list[str] = []
    problems: list[Problem] = []
    for text in items:
        try:
            ov = parse_override(text)
        except ValueError as exc:
            problems.append(Problem(FIX_FILE, None, text.partition("=")[0].strip(), str(exc)))
            continue
        if ov.key not in SEARCH_KEYS:
            overrides.append(text)
            continue
        raw = text.partition("=")[2].strip()
        items_ = split_list(raw)
        limits[ov.key] = [parse_scalar(i) for i in items_] if items_ is not None else [ov.value]
    try:
        SearchSpec.model_validate({"space": limits})  # the checks of a search: section
    except ValidationError as err:
        for e in err.errors():
            problems.append(Problem(FIX_FILE, None, "", e["msg"].removeprefix("Value error, ")))
    if problems:
        raise SpecError(problems)
    return limits, overrides


def _load(path: str | Path, overrides: list[str]) -> tuple[Any, Layout | None]:
    """The workload (with ``overrides``) and its own layout; a workload whose layout is impossible
    is searched all the same (with no layout of its own to compare)."""
    try:
        spec = load_workload(path, overrides=overrides)
        return spec, layout_of(spec)
    except SpecError as first:
        try:
            return load_workload(path, overrides=[*overrides, *NEUTRAL]), None
        except SpecError:
            raise first from None


def _bounds(opts: SearchOptions, section: SearchSpec, cluster_gpus: int) -> tuple[int, int]:
    if opts.gpus is not None:
        lo, hi = opts.gpus
    else:
        lo, hi = section.min_gpus, section.gpus or cluster_gpus
    lo = lo if lo is not None else hi // 2 + 1
    if lo > hi:
        raise SpecError([Problem("--gpus", None, "", f"the range {lo}-{hi} is empty")])
    if hi > MAX_SEARCH_GPUS:
        raise SpecError([Problem("--gpus", None, "", f"{hi:,} GPUs: a search covers at most {MAX_SEARCH_GPUS:,}")])
    return lo, hi


def _score(objective: str, tokens: float, price: float | None):
    if objective == "throughput":
        return lambda T, gpus: tokens / T
    return lambda T, gpus: objective_value("cost", tokens / T, gpus, price)


def _pareto(screening: Screening, n: int) -> list[Layout]:
    """Up to ``n`` layouts of tier 1's front (no layout on fewer GPUs scores higher), spread over GPU counts."""
    front, best = [], -math.inf
    for gpus, cand in sorted(screening.per_gpus.items()):
        if cand.score > best:
            front.append(cand.layout)
            best = cand.score
    if len(front) <= n:
        return front
    return [front[round(i * (len(front) - 1) / (n - 1))] for i in range(n)]


def run_search(opts: SearchOptions) -> SearchOutcome:
    """Run a search; raises SpecError for bad input (and the executors' set-up errors)."""
    start = time.perf_counter()
    executor = make_executor(opts.executor, opts.jobs, opts.scheduler)  # MissingExtra before any work
    limits, overrides = _fixes(opts.fix)
    spec, baseline = _load(opts.workload, overrides)
    section = spec.search or SearchSpec()
    lo, hi = _bounds(opts, section, spec.cluster.num_gpus)
    fixed = [*overrides, "parallelism.stage_layers=null"]
    if hi > spec.cluster.num_gpus:  # more GPUs than the cluster has: grow it by whole nodes
        fixed.append(f"cluster.nodes={-(-hi // spec.cluster.gpus_per_node)}")
        spec, baseline = _load(opts.workload, fixed)
    out = Path(opts.out) if opts.out else Path("reports") / f"{spec.name}-search"
    check_out_dir(out)  # before screening and simulating
    objective = opts.objective or section.objective
    top = opts.top or section.top
    price = spec.cluster.price_per_gpu_hour
    if objective == "cost" and not price:
        raise SpecError([Problem(spec.cluster.source, None, "price_per_gpu_hour",
                                 "needed by the cost objective (dollars per GPU-hour): add it to the cluster "
                                 "file or to the workload's cluster section")])
    max_sims = opts.max_simulations or section.max_simulations or DEFAULT_MAX_SIMULATIONS
    space = make_space(spec, hi, lo, {**section.space, **limits})
    tokens = spec.training.global_batch * spec.model.seq_len
    score = _score(objective, tokens, price)
    estimator = Estimator(spec, build_cluster(spec.cluster))  # SpecError for a cluster it cannot build
    watch = {(baseline.tensor, baseline.pipeline, baseline.data, baseline.context)} if baseline else set()
    from simcluster.search.progress import screening_bar

    with screening_bar(spec.name, opts.progress) as bar:
        screening = screen(spec, space, estimator, score, keep=max(top, max_sims), progress=bar, watch=watch)
    share = math.ceil(SHARE * screening.fitting)
    n_sim = min(screening.fitting, max(top, min(share, max_sims)))
    entries = [Entry(c.layout, "candidate", c.estimate, c.score, c.rank) for c in screening.best[:n_sim]]
    seen = {e.layout for e in entries}
    extra: list[tuple[Layout, str]] = []
    ranged = opts.gpus[0] is not None if opts.gpus is not None else section.min_gpus is not None
    if ranged:
        extra += [(lay, "pareto") for lay in _pareto(screening, PARETO_POINTS)]
    ref = None
    if baseline is not None:
        extra.append((baseline, "baseline"))
        ref = screening.per_degrees.get((baseline.tensor, baseline.pipeline, baseline.data, baseline.context))
        if ref is not None:
            extra.append((ref.layout, "reference"))
    for lay, role in extra:
        if lay not in seen:
            seen.add(lay)
            est = estimator.estimate(lay)
            entries.append(Entry(lay, role, est, score(est.iteration_time_s, lay.gpus), None))
    budget = {"fitting": screening.fitting, "share": SHARE, "share_count": share, "max_simulations": max_sims,
              "top": top, "candidates": n_sim, "simulated": len(entries)}
    table = pd.DataFrame()
    if entries:
        sweep = layout_sweep(Path(opts.workload), f"{spec.name}-search", _set(fixed), [e.layout for e in entries],
                             spec)
        sims, _ = simulate(sweep, out, executor, fresh=opts.fresh,
                           progress=opts.progress)
        table = ranking_table(entries, sims, objective, tokens, price)
    agree = agreement(table, objective, 10) if not table.empty else Agreement(float("nan"), 0, 0, 0)
    outcome = SearchOutcome(spec.name, out, objective, top, space, screening, table, agree, len(entries), budget,
                            0.0, baseline.label() if baseline else None,
                            ref.layout.label() if ref is not None else None, ranged)
    outcome.files = _write(outcome, sweep if entries else None, opts.reports)
    outcome.wall_s = time.perf_counter() - start
    _write_json(outcome)
    return outcome


def _set(fixed: list[str]) -> dict[str, Any]:
    out = {}
    for text in fixed:
        ov = parse_override(text)
        out[ov.key] = ov.value
    return out


def _write(outcome: SearchOutcome, sweep: Any, reports: bool) -> list[Path]:
    """ranking.csv, estimates.csv, best.yaml and (with reports) the plots and report.html."""
    out = outcome.out_dir
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "ranking.csv", out / "estimates.csv"]
    outcome.table.to_csv(files[0], index=False, lineterminator="\n")
    _estimates(outcome).to_csv(files[1], index=False, lineterminator="\n")
    best = _best(outcome.table)
    yaml_path = out / "best.yaml"
    if best is not None and sweep is not None:
        values = layout_from_values(best.to_dict()).values()
        header = (f"best layout of simcluster search of {sweep.base_file} by {OBJECTIVES[outcome.objective]}: "
                  f"{best['layout']}\n{best['iteration_time_s']:.4g} s per iteration, MFU {best['mfu']:.1%} "
                  f"(simulated); run it with: python -m simcluster run {yaml_path}")
        yaml_path.write_text(sweep.workload_yaml(values, header), encoding="utf-8")
        files.append(yaml_path)
    elif yaml_path.exists():
        yaml_path.unlink()
    if reports and not outcome.table.empty:
        from simcluster.search.report import write_report  # matplotlib: only when drawing

        files += write_report(outcome)
    return files


def _best(table: pd.DataFrame) -> pd.Series | None:
    if table.empty:
        return None
    first = table.iloc[0]
    return first if first["status"] == "ok" and bool(first["fits_in_memory"]) else None


def _estimates(outcome: SearchOutcome) -> pd.DataFrame:
    """Tier 1's ranking of the best layouts it kept (simulated or not)."""
    metric = OBJECTIVES[outcome.objective]
    rows = [{"est_rank": c.rank, "layout": c.layout.label(), **c.layout.values(), "gpus": c.layout.gpus,
             f"est_{metric}": c.score, "est_iteration_time_s": c.estimate.iteration_time_s,
             "est_peak_memory_bytes": c.estimate.peak_memory_bytes,
             **{f"est_{k}_s": v for k, v in c.estimate.parts().items()}} for c in outcome.screening.best]
    return pd.DataFrame(rows)


def _write_json(outcome: SearchOutcome) -> None:
    s, a = outcome.screening, outcome.agreement
    info = {"name": outcome.name, "objective": outcome.objective, "gpus": [outcome.space.min_gpus, outcome.space.max_gpus],
            "layouts": s.layouts, "fitting": s.fitting, "screening_s": round(s.wall_s, 3),
            "layouts_per_s": round(s.rate), "budget": outcome.budget, "spearman": a.spearman,
            "top10_overlap": a.overlap, "top10_of": a.top, "wall_s": round(outcome.wall_s, 3),
            "baseline": outcome.baseline, "reference": outcome.reference,
            "space": {k: (v if len(v) <= 24 else f"{len(v)} values from {v[0]} to {v[-1]}")
                      for k, v in outcome.space.values.items()}}
    path = outcome.out_dir / "search.json"
    path.write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
    outcome.files.append(path)
