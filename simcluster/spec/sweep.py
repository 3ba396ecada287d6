"""Sweep files: a base workload, a grid of dotted keys, zip groups and filters.

```yaml
name: toy-layouts              # default: the file's stem
base: ../toy-8gpu.yaml         # the workload every point starts from (relative to this file)
set:                           # fixed overrides applied to every point (optional)
  cluster.nodes: 1
grid:                          # every combination of these values; the last key varies fastest
  parallelism.tensor: [1, 2, 4, 8]
  training.micro_batch: [1, 2]
zip:                           # groups of keys whose values vary together (lists of equal length)
  - parallelism.pipeline: [1, 2, 4]
    parallelism.virtual_stages: [1, 2, 2]
filters:                       # keep a point only when every expression is true
  - parallelism.tensor * parallelism.pipeline <= 8
rank_by: tokens_per_s          # tokens_per_s | mfu | model_tflops_per_gpu | iteration_time_s
```

A point applies ``set`` and then its own values to the base workload exactly as ``--set``
would, and is validated like any workload (:meth:`Sweep.workload`). ``run --set key=a,b,c``
builds the same kind of sweep from the command line (:func:`quick_sweep`).
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticUndefined

from simcluster.errors import Problem, SpecError
from simcluster.spec.fields import FileName, as_file_name
from simcluster.spec.filters import Filter, compile_filter
from simcluster.spec.overrides import SET_FILE, apply_overrides, parse_override
from simcluster.spec.problems import Locator, known_keys, problems_from_error
from simcluster.spec.workload import WorkloadSpec, workload_from_data
from simcluster.spec.yamlio import YamlDoc, is_file, load_yaml, parse_scalar

#: Summary figures a sweep may rank by, and whether larger is better.
RANK_METRICS: dict[str, bool] = {
    "tokens_per_s": True,
    "mfu": True,
    "model_tflops_per_gpu": True,
    "iteration_time_s": False,
}
_KEY = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")
_CLUSTER_SECTION_KEYS = ("devices", "path", "preset")
#: Points a sweep may expand to before its filters (each is validated, most simulated).
MAX_POINTS = 50_000
SWEEP_KEYS = ("base", "grid", "zip")  # a YAML file with any of these (and no `model`) is a sweep

NonEmptyList = Annotated[list[Any], Field(min_length=1)]


class SweepSpec(BaseModel):
    """The sweep file as written (keys checked, values not yet applied to the workload)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: FileName = Field(description="Output in reports/<name>/.", json_schema_extra={"default_doc": "the file's stem"})
    base: str = Field(description="The workload file every point starts from, relative to this file.")
    set: dict[str, Any] = Field(default_factory=dict, description="Dotted workload keys fixed for every point "
                                "(null: the schema default).")
    grid: dict[str, NonEmptyList] = Field(default_factory=dict, description="Dotted key → values; every "
                                          "combination is a point, the last key varies fastest.")
    zip: list[Annotated[dict[str, NonEmptyList], Field(min_length=1)]] = Field(
        default_factory=list, description="Groups of keys whose equal-length lists vary together.")
    filters: list[str] = Field(default_factory=list, description="Expressions over dotted keys; a point is "
                               "kept when all hold (see docs/sweeps.md).")
    rank_by: Literal["tokens_per_s", "mfu", "model_tflops_per_gpu", "iteration_time_s"] = Field(
        "tokens_per_s", description="The summary figure that ranks the points (iteration_time_s: smallest "
        "first).")


@dataclass
class Sweep:
    """A loaded sweep: its spec, the base workload as read, and the compiled filters."""

    spec: SweepSpec
    file: str
    base_file: Path
    base_doc: YamlDoc
    filters: list[Filter] = field(default_factory=list)  # compiled, aligned with spec.filters
    doc: YamlDoc | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def keys(self) -> list[str]:
        """The swept keys in file order: grid keys, then each zip group's keys."""
        out = list(self.spec.grid)
        for group in self.spec.zip:
            out += list(group)
        return out

    def line_of(self, key: str) -> int | None:
        """Line of a dotted key of the sweep file (``filters.0``), when known."""
        return self.doc.line_of(key) if self.doc is not None else None

    def lookup(self, key: str, values: dict[str, Any]) -> Any:
        """The value of workload key ``key`` at a point, as written: the point's own value, else
        ``set``, else the base file, else the schema's default. Raises KeyError when none."""
        if key in values:
            return values[key]
        if key in self.spec.set:
            return self.spec.set[key]
        node: Any = self.base_doc.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            return node
        found, default = schema_default(key)
        if found:
            return default
        raise KeyError(key)

    def overrides(self, values: dict[str, Any]) -> list[str]:
        """``--set`` strings for a point: ``set`` first, then the point's values."""
        items = list(self.spec.set.items()) + list(values.items())
        return [f"{key}={yaml_value(value)}" for key, value in items]

    def workload(self, values: dict[str, Any]) -> WorkloadSpec:
        """The validated workload of a point; raises SpecError when the point is invalid."""
        return workload_from_data(self.base_doc.data, source=str(self.base_file), overrides=self.overrides(values),
                                  doc=self.base_doc, base_dir=self.base_file.parent)

    def workload_yaml(self, values: dict[str, Any], header: str = "") -> str:
        """The base workload with a point's values written in, as YAML ready for ``run``."""
        data = copy.deepcopy(self.base_doc.data)
        apply_overrides(data, self.overrides(values))
        cluster = data.get("cluster")
        if isinstance(cluster, dict) and isinstance(cluster.get("path"), str) and not Path(cluster["path"]).is_absolute():
            cluster["path"] = str((self.base_file.parent / cluster["path"]).resolve())
        model = data.get("model")
        if isinstance(model, dict) and isinstance(model.get("from"), str) and not Path(model["from"]).is_absolute():
            model["from"] = str((self.base_file.parent / model["from"]).resolve())  # best.yaml lives elsewhere
        comment = "".join(f"# {line}\n" for line in header.splitlines())
        return comment + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)


def yaml_value(value: Any) -> str:
    """``value`` written so that reading it back as YAML gives it again (one line)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, allow_unicode=True)
    if text.endswith("\n...\n"):
        text = text[: -len("\n...\n")]
    return text.strip()


def schema_default(key: str) -> tuple[bool, Any]:
    """``(True, default)`` when the workload schema gives ``key`` a plain (non-null) default."""
    model: Any = WorkloadSpec
    parts = key.split(".")
    if parts[0] == "cluster":  # a cluster's defaults come from its preset or file, not the schema
        return False, None
    for depth, part in enumerate(parts):
        info = getattr(model, "model_fields", {}).get(part)
        if info is None:
            return False, None
        if depth == len(parts) - 1:
            if info.default is PydanticUndefined or info.default is None:
                return False, None
            return True, info.default
        model = info.annotation
    return False, None


def _key_problem(key: str) -> str | None:
    """Why ``key`` cannot be set in a workload, or None when it can (as far as the schema says)."""
    if not _KEY.match(key):
        return "expected a dotted key like 'parallelism.tensor'"
    parts = tuple(key.split("."))
    known = known_keys(WorkloadSpec, parts[:-1])
    if known is None:
        return None
    if parts[:-1] == ("cluster",):
        known = sorted(set(known) | set(_CLUSTER_SECTION_KEYS))
    if parts[-1] not in known:
        where = f" of {'.'.join(parts[:-1])}" if len(parts) > 1 else ""
        return f"unknown workload key; known keys{where}: {', '.join(known)}"
    return None


def _sections(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(where, mapping of dotted keys)`` for ``set``, ``grid`` and each zip group, as far as
    they are mappings (the schema reports what is not)."""
    out = [(name, data.get(name)) for name in ("set", "grid")]
    zips = data.get("zip")
    out += [(f"zip.{i}", g) for i, g in enumerate(zips)] if isinstance(zips, list) else []
    return [(where, keys) for where, keys in out if isinstance(keys, dict)]


def _key_checks(data: dict[str, Any], file: str, doc: YamlDoc | None) -> list[Problem]:
    """Unknown or repeated keys, zip groups of unequal lengths (on the data as written)."""
    problems: list[Problem] = []

    def add(where: str, reason: str) -> None:
        problems.append(Problem(file, doc.line_of(where) if doc else None, where, reason))

    seen: dict[str, str] = {}
    for section, keys in _sections(data):
        for key in keys:
            where = f"{section}.{key}"
            reason = _key_problem(str(key))
            if reason:
                add(where, reason)
            if key in seen:
                add(where, f"{key} is already given in {seen[key]}")
            seen.setdefault(key, section)
        if section.startswith("zip."):
            lengths = {k: len(v) for k, v in keys.items() if isinstance(v, list)}
            if len(set(lengths.values())) > 1:
                add(section, "the lists of a zip group must have equal lengths, got "
                    + ", ".join(f"{k}: {n}" for k, n in lengths.items()))
    return problems


def _size_checks(spec: SweepSpec, doc: YamlDoc) -> list[Problem]:
    """A grid too large to expand: more than :data:`MAX_POINTS` combinations before filters."""
    sizes = [len(values) for values in spec.grid.values()]
    sizes += [min((len(v) for v in group.values()), default=1) for group in spec.zip]
    total = 1
    for n in sizes:
        total *= n
    if total <= MAX_POINTS:
        return []
    key = "grid" if spec.grid else "zip"
    return [Problem(doc.file, doc.line_of(key), key, f"{' × '.join(map(str, sizes))} = {total:,} points before "
                    f"filters; at most {MAX_POINTS:,} (split the sweep, or sweep fewer values per key)")]


def _filter_checks(sweep: Sweep) -> list[Problem]:
    """Compile the filters; every key they read must have a value at every point."""
    problems: list[Problem] = []
    for i, text in enumerate(sweep.spec.filters):
        where = f"filters.{i}"
        try:
            flt = compile_filter(text)
        except ValueError as exc:
            problems.append(Problem(sweep.file, sweep.line_of(where), where, str(exc)))
            continue
        sweep.filters.append(flt)
        for name in flt.names:
            try:
                sweep.lookup(name, dict.fromkeys(sweep.keys))
            except KeyError:
                problems.append(Problem(sweep.file, sweep.line_of(where), where,
                                        f"{name} is neither swept, nor set, nor written in the base workload, "
                                        "nor has a default"))
    return problems


def sweep_from_doc(doc: YamlDoc, base_dir: Path | None = None) -> Sweep:
    """Validate a sweep file read by :func:`~simcluster.spec.yamlio.load_yaml`; raises SpecError."""
    base_dir = base_dir if base_dir is not None else Path(doc.file).parent
    data = dict(doc.data)
    data.setdefault("name", as_file_name(Path(doc.file).stem))
    where = Locator(doc)
    problems = _key_checks(data, doc.file, doc)
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(problems_from_error(err, SweepSpec, where) + problems) from None
    problems += _size_checks(spec, doc)
    if problems:
        raise SpecError(problems)
    base_file = Path(os.path.normpath(Path(spec.base) if Path(spec.base).is_absolute() else base_dir / spec.base))
    if not is_file(base_file):
        raise SpecError([Problem(doc.file, doc.line_of("base"), "base", f"workload file not found: {base_file}")])
    base_doc = load_yaml(base_file)
    if "model" not in base_doc.data:
        raise SpecError([Problem(doc.file, doc.line_of("base"), "base", f"{base_file} is not a workload (no `model` key)")])
    sweep = Sweep(spec, doc.file, base_file, base_doc, doc=doc)
    problems = _filter_checks(sweep)
    if problems:
        raise SpecError(problems)
    return sweep


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate the sweep file at ``path``; raises SpecError carrying every problem."""
    return sweep_from_doc(load_yaml(path))


def is_sweep_data(data: dict[str, Any]) -> bool:
    """Whether a YAML mapping looks like a sweep file (and not a workload)."""
    return "model" not in data and any(k in data for k in SWEEP_KEYS)


def split_list(text: str) -> list[str] | None:
    """The items of a ``--set`` comma list ``a,b,c`` (commas inside brackets or quotes don't
    count), or None when ``text`` is a single value."""
    items, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    if not items:
        return None
    items.append(text[start:].strip())
    return items


def quick_sweep(workload: str | Path, overrides: list[str]) -> Sweep | None:
    """The sweep that ``run WORKLOAD --set k=a,b,c ...`` asks for, or None when no ``--set`` is a
    comma list. Single values become ``set``, comma lists the grid (in the order given)."""
    fixed: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    problems: list[Problem] = []
    for text in overrides:
        key, eq, raw = text.partition("=")
        items = split_list(raw) if eq else None
        try:
            if items is None:
                override = parse_override(text)
                fixed[override.key] = override.value
            else:
                grid[parse_override(f"{key}=0").key] = [parse_scalar(item) for item in items]
        except ValueError as exc:
            problems.append(Problem(SET_FILE, None, key.strip(), str(exc)))
    if problems:
        raise SpecError(problems)
    if not grid:
        return None
    base_doc = load_yaml(workload)
    name = base_doc.data.get("name") if isinstance(base_doc.data.get("name"), str) else Path(workload).stem
    spec_data = {"name": as_file_name(f"{name}-sweep"), "base": str(Path(workload).resolve()), "set": fixed, "grid": grid}
    try:
        return sweep_from_doc(YamlDoc(spec_data, SET_FILE), base_dir=Path.cwd())
    except SpecError as exc:  # name the key as given to --set, not its place in the sweep
        raise SpecError([Problem(p.file, p.line, re.sub(r"^(grid|set)\.", "", p.key), p.reason)
                         for p in exc.problems]) from None
