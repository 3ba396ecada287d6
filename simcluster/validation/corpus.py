"""The validation corpus: groups of published training runs, each a YAML file of rows.

A group is ``simcluster/data/validation/<group>.yaml`` (package data)::

    name: famous
    title: every system the field cites, as published
    tolerance: 0.15            # default for the group's rows (else by metric, below)
    acceptance: {mape: 0.08}   # and every row within its tolerance
    rows:
      - key: gpt3-175b                      # what --only takes; unique over the corpus
        workload: workloads/gpt3-175b.yaml  # see below
        overrides: []                       # --set strings applied to it
        metric: hardware_tflops_per_gpu     # a summary.json key (METRICS)
        published: 140
        tolerance: 0.15                     # optional
        source: Narayanan et al. 2021 (SC'21) §5.1
        device: a100-80gb
        framework: megatron
        system: GPT-3 175B on 1,024 A100 80GB   # optional, one line for tables
        paper: Narayanan et al. 2021 (SC'21)    # optional: the publication, for --leave-one-source-out
                                                # (default: ``source`` up to its first colon)

A row's ``workload`` is a path. ``workloads/<name>.yaml`` is the repository's own folder,
resolved against the repository root beside the package (``<root>/simcluster`` and
``<root>/workloads``): a source checkout has it, an installed copy does not, and running such a
row there is an error that says so. Any other path is package data, relative to
``simcluster/data/validation/`` (Table 1's ``narayanan2021/gpt-<row>.yaml``). Keys a group's
rows carry beyond these stay in :attr:`Row.extra` for the group's own module.

Tolerance: the row's, else the group's, else 10 % for time and throughput and 15 % for MFU and
memory (issue 12).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from simcluster.metrics.error_bars import MEMORY_LIKE
from simcluster.spec.yamlio import load_yaml

#: Package data: the groups (``<group>.yaml``) and Table 1's workloads (``narayanan2021/``).
DATA = Path(str(resources.files("simcluster").joinpath("data", "validation")))
#: The repository root a source checkout puts beside the package (holds ``workloads/``).
ROOT = Path(str(resources.files("simcluster"))).parent
#: Groups in the order they run.
GROUPS = ("table1", "famous", "megatron", "stacks", "memory", "moe")

#: metric -> (what it is, default tolerance, how to print a value)
METRICS: dict[str, tuple[str, float, str]] = {
    "hardware_tflops_per_gpu": ("TFLOP/s per GPU, recompute included", 0.10, "{:.1f}"),
    "model_tflops_per_gpu": ("model TFLOP/s per GPU", 0.10, "{:.1f}"),
    "mfu": ("model FLOPs utilization", 0.15, "{:.1%}"),
    "tokens_per_s": ("tokens per second", 0.10, "{:,.0f}"),
    "iteration_time_s": ("seconds per iteration", 0.10, "{:.2f} s"),
    "peak_memory_bytes": ("peak memory per GPU", 0.15, "{:.1f} GiB"),
    "peak_memory_reserved_bytes": ("peak memory per GPU the caching allocator reserves", 0.15, "{:.1f} GiB"),
    "torch_max_memory_allocated_bytes": ("torch.cuda.max_memory_allocated per GPU", 0.15, "{:.1f} GiB"),
    "torch_max_memory_reserved_bytes": ("torch.cuda.max_memory_reserved per GPU", 0.15, "{:.1f} GiB"),
}
#: The memory metrics (printed in GiB): the peak and the figures whose interval is the peak's.
MEMORY_METRICS = ("peak_memory_bytes", *MEMORY_LIKE)
#: The keys of a row that every group understands; the rest go to Row.extra.
ROW_KEYS = ("key", "workload", "overrides", "metric", "published", "tolerance", "source", "device",
            "framework", "system", "paper")


class CorpusError(ValueError):
    """Bad input to the corpus: an unknown group or row, a malformed group file, no workloads/."""


@dataclass(frozen=True)
class Row:
    """One published figure and the workload that should reproduce it."""

    group: str
    key: str
    workload: str  # as the group file writes it
    metric: str
    published: float
    tolerance: float
    source: str
    device: str
    framework: str
    overrides: tuple[str, ...] = ()
    system: str = ""
    paper: str = ""  # the publication (what leave-one-source-out holds out together)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def in_repository(self) -> bool:
        """True when the workload is the repository's ``workloads/`` (not package data)."""
        return Path(self.workload).parts[:1] == ("workloads",)

    @property
    def path(self) -> Path:
        """The workload file; :class:`CorpusError` if it lives in a ``workloads/`` that is not there."""
        if not self.in_repository:
            return DATA / self.workload
        if not (ROOT / "workloads").is_dir():
            raise CorpusError(
                f"row {self.key} of group {self.group} runs {self.workload}, which lives in the repository's "
                f"workloads/ folder; resolved against the repository root beside the package, {ROOT}, there is "
                f"no {ROOT / 'workloads'} (an installed copy without a source checkout). Run from a checkout, "
                "or choose rows whose workloads are package data (--group table1)")
        return ROOT / self.workload

    def result(self, predicted: float) -> dict[str, Any]:
        """The fields every run row reports: who, what, the published and predicted figures, the error."""
        error = predicted / self.published - 1.0
        return {"group": self.group, "row": self.key, "key": self.key, "system": self.system, "device": self.device,
                "framework": self.framework, "source": self.source, "paper": self.paper, "metric": self.metric,
                "published": self.published, "predicted": predicted, "error": error, "tolerance": self.tolerance,
                "within": abs(error) <= self.tolerance}

    def format(self, value: float) -> str:
        """``value`` of this row's metric, printed (memory in GiB)."""
        if self.metric in MEMORY_METRICS:
            value /= 2**30
        return METRICS[self.metric][2].format(value)


@dataclass(frozen=True)
class Group:
    """A group file: its rows and its acceptance rule (every row within tolerance, MAPE ≤ limit)."""

    name: str
    title: str
    mape_limit: float
    rows: tuple[Row, ...]
    data: dict[str, Any] = field(default_factory=dict)  # the whole file, for the group's own module


def _row(group: str, raw: Any, default_tolerance: float | None, where: str) -> Row:
    if not isinstance(raw, dict):
        raise CorpusError(f"{where}: a row must be a mapping, not {type(raw).__name__}")
    missing = [k for k in ("key", "workload", "metric", "published", "source", "device", "framework") if k not in raw]
    if missing:
        raise CorpusError(f"{where}: row {raw.get('key', '?')} lacks {', '.join(missing)}")
    metric = str(raw["metric"])
    if metric not in METRICS:
        raise CorpusError(f"{where}: row {raw['key']}: unknown metric {metric!r}; known: {', '.join(METRICS)}")
    tolerance = raw.get("tolerance", default_tolerance if default_tolerance is not None else METRICS[metric][1])
    return Row(group=group, key=str(raw["key"]).lower(), workload=str(raw["workload"]), metric=metric,
               published=float(raw["published"]), tolerance=float(tolerance), source=str(raw["source"]),
               device=str(raw["device"]), framework=str(raw["framework"]),
               overrides=tuple(str(o) for o in raw.get("overrides") or ()), system=str(raw.get("system", "")),
               paper=str(raw.get("paper") or str(raw["source"]).split(":")[0]),
               extra={k: v for k, v in raw.items() if k not in ROW_KEYS})


def load_group(name: str) -> Group:
    """The group ``name`` as its package-data file gives it."""
    if name not in GROUPS:
        raise CorpusError(f"unknown group {name}; known: {', '.join(GROUPS)}")
    path = DATA / f"{name}.yaml"
    data = load_yaml(path).data
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise CorpusError(f"{path}: needs a mapping with a list of rows")
    default = data.get("tolerance")
    rows = tuple(_row(name, r, None if default is None else float(default), str(path)) for r in data["rows"])
    acceptance = data.get("acceptance") or {}
    return Group(name=name, title=str(data.get("title", name)), mape_limit=float(acceptance.get("mape", 0.05)),
                 rows=rows, data=data)


def load_corpus(names: tuple[str, ...] = GROUPS) -> list[Group]:
    """The groups ``names`` in corpus order; row keys are unique over them."""
    for n in names:
        if n not in GROUPS:
            raise CorpusError(f"unknown group {n}; known: {', '.join(GROUPS)}")
    groups = [load_group(n) for n in GROUPS if n in names]
    seen: dict[str, str] = {}
    for g in groups:
        for r in g.rows:
            if r.key in seen:
                raise CorpusError(f"row {r.key} is in both {seen[r.key]} and {g.name}")
            seen[r.key] = g.name
    return groups


def select(groups: list[Group], only: str | None) -> list[Group]:
    """The groups restricted to the rows named in ``only`` ("1.7b,gpt3-175b"; None: all).

    Groups left without rows are dropped; an unknown row is a :class:`CorpusError` naming the
    known ones.
    """
    if not only:
        return groups
    keys = [k.strip().lower() for k in only.split(",") if k.strip()]
    known = {r.key for g in groups for r in g.rows}
    bad = [k for k in keys if k not in known]
    if bad:
        raise CorpusError(f"unknown row {', '.join(bad)}; known: {', '.join(r.key for g in groups for r in g.rows)}")
    out = []
    for g in groups:
        rows = tuple(r for k in keys for r in g.rows if r.key == k)
        if rows:
            out.append(Group(g.name, g.title, g.mape_limit, rows, g.data))
    return out


def mape(results: list[dict[str, Any]]) -> float:
    """Mean absolute percentage error of run rows (each with ``error``), as a fraction."""
    return statistics.fmean(abs(r["error"]) for r in results)


def accepted(results: list[dict[str, Any]], mape_limit: float) -> bool:
    """A group's acceptance: every row within its tolerance (``within``) and the MAPE ≤ ``mape_limit``."""
    return all(r["within"] for r in results) and mape(results) <= mape_limit
