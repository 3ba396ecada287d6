"""The file reference (``docs/reference.md``), generated from the spec models so it cannot go stale.

    python -m simcluster.spec.reference > docs/reference.md

Every key a user may write in a workload, cluster or sweep file becomes one table row: its
dotted key, its type (allowed names for names checked against the catalogue, bounds for
bounded numbers), its default, its unit where it is a quantity, and the ``description`` of
its pydantic ``Field``. Sections take their text from the model's docstring. A field may
say in words what its default means when the model's own default is a placeholder
(``json_schema_extra={"default_doc": "4 × hidden"}``). ``tests/spec/test_reference.py``
fails when ``docs/reference.md`` differs from :func:`render_reference` or a key has no
description.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, cast

from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from simcluster import catalogue
from simcluster.spec import fields
from simcluster.spec.cluster import ClusterSpec, list_presets, load_cluster
from simcluster.spec.sweep import SweepSpec
from simcluster.spec.workload import SEARCH_KEYS, WorkloadSpec

#: Quantity types: the metadata object that parses them -> (unit in SI, an example string).
_QUANTITIES: dict[int, tuple[str, str]] = {
    id(typing.get_args(alias)[1]): unit
    for alias, unit in ((fields.Bytes, ("bytes", '"80 GiB"')), (fields.Bandwidth, ("bytes/s", '"200 Gb/s"')),
                        (fields.Seconds, ("s", '"2 us"')), (fields.FlopRate, ("FLOP/s", '"312 TFLOP/s"')))
}

#: Names checked against the catalogue: the validator's metadata object -> the allowed names.
_NAMES: dict[int, tuple[str, ...]] = {
    id(typing.get_args(getattr(fields, alias))[1]): names
    for alias, names in (("ScheduleName", catalogue.SCHEDULES), ("FabricName", catalogue.FABRICS),
                         ("AlgorithmName", catalogue.COLLECTIVE_ALGORITHMS), ("OpName", catalogue.COLLECTIVE_OPS))
    if hasattr(fields, alias)
}

_SI_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


@dataclass(frozen=True)
class Row:
    """One key of a file: what the reference prints about it."""

    key: str
    type: str
    default: str
    unit: str
    description: str


def _code(value: Any) -> str:
    return f"`{value}`"


def _names(names: typing.Iterable[str]) -> str:
    return " \\| ".join(_code(n) for n in names)


def _metadata(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """``(base type, every metadata object)`` with Annotated layers and nested Field()s unwrapped."""
    meta = []
    for m in metadata:
        meta += m.metadata if isinstance(m, FieldInfo) else [m]
    while typing.get_origin(annotation) is Annotated:
        base, *extra = typing.get_args(annotation)
        for m in extra:
            meta += m.metadata if isinstance(m, FieldInfo) else [m]
        annotation = base
    return annotation, meta


def _number(value: Any) -> str:
    """A bound as the reference prints it: integers with thousands separated (``100,000``)."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else f"{value:g}"


def _bounds(meta: list[Any]) -> str:
    """Bounds as prose, lower bounds first: ``> 0, ≤ 3``."""
    lower, upper, length = [], [], []
    for m in meta:
        if isinstance(m, fields.Range):
            lower.append(m.describe())
        elif isinstance(m, Gt):
            lower.append(f"> {_number(m.gt)}")
        elif isinstance(m, Ge):
            lower.append(f"≥ {_number(m.ge)}")
        elif isinstance(m, Lt):
            upper.append(f"< {_number(m.lt)}")
        elif isinstance(m, Le):
            upper.append(f"≤ {_number(m.le)}")
        elif isinstance(m, MinLen):
            length.append(f"at least {m.min_length} item{'s' if m.min_length != 1 else ''}")
    return ", ".join(lower + upper + length)


def _optional(annotation: Any) -> tuple[Any, bool]:
    """``(annotation without None, whether None was allowed)``."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) < len(typing.get_args(annotation)):
            return (args[0] if len(args) == 1 else Union[tuple(args)]), True
    return annotation, False


def _type(annotation: Any, metadata: Sequence[Any] = ()) -> tuple[str, str]:
    """``(type as prose, SI unit or "")`` of an annotation."""
    annotation, nullable = _optional(annotation)
    base, meta = _metadata(annotation, list(metadata))
    base, inner_null = _optional(base)
    nullable = nullable or inner_null
    unit = ""
    text = ""
    for m in meta:
        if id(m) in _QUANTITIES:
            unit, _ = _QUANTITIES[id(m)]
            text = "quantity"
        elif id(m) in _NAMES:
            text = _names(_NAMES[id(m)])
    origin = typing.get_origin(base)
    if text:
        pass
    elif base is catalogue.Device:
        text = f"device name ({_names(catalogue.DEVICES.names())}) or a mapping of its figures (`device.*`)"
    elif origin is Literal:
        text = _names(typing.get_args(base))
    elif origin is list:
        (item,) = typing.get_args(base)
        text = f"list of {_type(item)[0]}"
    elif origin is dict:
        key, value = typing.get_args(base)
        text = f"mapping {_type(key)[0]} → {_type(value)[0]}"
    elif base is bool:
        text = "`true` \\| `false`"
    elif base is int:
        text = "integer"
    elif base is float:
        text = "number"
    elif base is str and fields.FILE_NAME_CHECK in meta:
        text = "file name (letters, digits, `.` `-` `_`; at most 100)"
    elif base is str:
        text = "string"
    elif base is Any:
        text = "any value"
    else:
        text = getattr(base, "__name__", str(base))
    bounds = _bounds(meta)
    if base is str and bounds.startswith("at least 1 item"):
        text, bounds = "non-empty string", ""
    if bounds:
        text += f" {bounds}" if text in ("integer", "number", "quantity") else f" ({bounds})"
    if nullable:
        text += " or `null`"
    return text, unit


def _si(value: float, unit: str) -> str:
    """``25e6`` bytes -> ``25 MB``: a default as a user would write it."""
    short = {"bytes": "B", "bytes/s": "B/s", "FLOP/s": "FLOP/s", "s": "s"}[unit]
    if value == 0:
        return f"0 {short}"
    if unit == "s":
        for scale, prefix in ((1, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n")):
            if abs(value) >= scale:
                return f"{value / scale:g} {prefix}s"
    for scale, prefix in _SI_PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:g} {prefix}{short}"
    return f"{value:g} {short}"


def _default(info: FieldInfo, unit: str) -> str:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "default_doc" in extra:
        return str(extra["default_doc"])
    if info.default_factory is not None:
        # no model here uses a factory that takes the validated data
        value = cast(Callable[[], Any], info.default_factory)()
        if isinstance(value, BaseModel):
            return "see below"
        return _code(value if value else ("{}" if isinstance(value, dict) else "[]"))
    if info.default is PydanticUndefined:
        return "**required**"
    value = info.default
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return _code(str(value).lower())
    if unit and isinstance(value, (int, float)):
        return _code(_si(float(value), unit))
    return _code(value)


def _doc(model: type) -> str:
    """The first paragraph of a model's docstring, on one line, in Markdown."""
    text = inspect.getdoc(model) or ""
    return " ".join(text.split("\n\n")[0].split()).replace("``", "`")


def _sub_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """``(model, is a list of it)`` when a field holds a section (or a list of sections)."""
    annotation, _ = _optional(annotation)
    base, _ = _metadata(annotation, [])
    if inspect.isclass(base) and issubclass(base, BaseModel):
        return base, False
    if typing.get_origin(base) is list:
        (item,) = typing.get_args(base)
        if inspect.isclass(item) and issubclass(item, BaseModel):
            return item, True
    return None, False


def _rows(model: type[BaseModel], prefix: str) -> list[tuple[str, type[BaseModel], list[Row]]]:
    """``(section key, model, rows)`` for ``model`` and, after it, each of its sub-sections."""
    hidden = set(getattr(model, "hidden_keys", ()))
    rows: list[Row] = []
    sections: list[tuple[str, type[BaseModel], list[Row]]] = []
    for name, info in model.model_fields.items():
        if name in hidden and not info.alias:  # an alias is the key users write (`class` for link_class)
            continue
        shown = info.alias or name
        key = f"{prefix}{shown}"
        description = " ".join((info.description or "").split())
        sub, many = _sub_model(info.annotation)
        if sub is not None and sub is not ClusterSpec:
            where = f"{key}[]" if many else key
            kind = "list of sections" if many else "section"
            if _optional(info.annotation)[1]:
                kind += " or `null`"
            rows.append(Row(key, kind, _default(info, ""), "", description))
            sections += _rows(sub, f"{where}.")
            continue
        if sub is ClusterSpec:
            rows.append(Row(key, "section", "**required**", "", description))
            continue
        text, unit = _type(info.annotation, info.metadata)
        rows.append(Row(key, text, _default(info, unit), unit, description))
        user = getattr(model, "user_sections", {}).get(name)
        if user is not None and name != "links":
            sections += _rows(user, f"{key}.")
    return [(prefix.rstrip("."), model, rows)] + sections


def reference_rows() -> list[Row]:
    """Every key of every file, as the reference prints them (tests check each has a description)."""
    out: list[Row] = []
    for model in (WorkloadSpec, ClusterSpec, SweepSpec):
        for _, _, rows in _rows(model, ""):
            out += rows
    return out


def _table(rows: list[Row]) -> list[str]:
    out = ["| key | type | default | unit | description |", "|---|---|---|---|---|"]
    for r in rows:
        cells = (_code(r.key), r.type, r.default, r.unit, r.description.replace("|", "\\|"))
        out.append("| " + " | ".join(cells) + " |")
    return out


def _sections(model: type[BaseModel], intro: str) -> list[str]:
    out: list[str] = []
    for key, sub, rows in _rows(model, ""):
        out += ["", f"### {_code(key) if key else 'top level'}", ""]
        doc = _doc(sub) if key else intro
        if doc:
            out += [doc, ""]
        out += _table(rows)
    return out


def _devices() -> list[str]:
    out = ["| name | 16-bit peak | fp32 peak | memory | memory bandwidth | vendor |", "|---|---|---|---|---|---|"]
    for name in catalogue.DEVICES.names():
        d = catalogue.DEVICES.get(name)
        out.append(f"| {_code(name)} | {d.peak_flops / 1e12:g} TFLOP/s | {d.peak_flops_fp32 / 1e12:.4g} TFLOP/s | "
                   f"{_memory(d.memory_bytes)} | {d.memory_bandwidth / 1e9:g} GB/s | {d.vendor} |")
    return out


def _memory(nbytes: float) -> str:
    return f"{nbytes / 2**30:g} GiB" if nbytes % 2**30 == 0 else f"{nbytes / 1e9:g} GB"


def _presets() -> list[str]:
    out = ["| preset | device | GPUs per node | inside a node | between nodes |", "|---|---|---|---|---|"]
    for name in list_presets():
        c = load_cluster(name)
        intra = f"{c.intra_node.fabric}, {_si(c.intra_node.bandwidth, 'bytes/s')} per device"
        inter = c.inter_node
        if inter.fabric == "torus":
            dims = " × ".join(str(d) for d in inter.torus or ())
            between = f"torus {dims}, {_si(inter.link_bandwidth or inter.nic_bandwidth, 'bytes/s')} per link"
        elif inter.fabric == "none":
            between = "none"
        else:
            rate = inter.nic_bandwidth * 8
            between = f"{inter.fabric}, {inter.nics_per_node} × {rate / 1e9:g} Gb/s NICs"
        out.append(f"| {_code(name)} | {_code(c.device.name)} | {c.gpus_per_node} | {intra} | {between} |")
    return out


_CLUSTER_IN_WORKLOAD = [
    "| key | type | default | unit | description |",
    "|---|---|---|---|---|",
    "| `cluster.preset` | preset name | | | A cluster file in `topologies/` by name (table below). |",
    "| `cluster.path` | string | | | A cluster file by path, relative to the workload file. |",
    "| `cluster.devices` | integer > 0 | | | The total number of accelerators instead of `nodes`; "
    "whole nodes, or fewer GPUs than one node holds: one node with that many of its GPUs (switched "
    "nodes; a torus takes whole hosts). |",
    "| `cluster.<key>` | | | | Any key of the cluster file (next section) overrides the file's value; "
    "`intra_node`, `inter_node` and a device mapping are merged key by key (over a preset's named device, its "
    "catalogue figures: `--set cluster.device.memory=96GB`). |",
]


def _model_sources() -> list[str]:
    from simcluster.spec.models import list_model_presets

    return [
        "| key | type | default | unit | description |",
        "|---|---|---|---|---|",
        "| `model.from` | string | | | A Hugging Face `config.json` (or its folder), relative to the workload file: "
        "layers, hidden, heads, kv_heads, ffn_hidden, vocab, seq_len (max_position_embeddings), head_dim, "
        "tied_embeddings and mlp (`silu` → swiglu) are read from it, and a mixture of experts (Mixtral, "
        "Qwen2/Qwen3-MoE, OLMoE, DeepSeek: `moe`) and latent attention (DeepSeek-V2/V3: `attention: mla`, `mla`); "
        "keys it cannot map are errors. |",
        "| `model.preset` | preset name | | | A shipped architecture (`simcluster/data/models/NAME.yaml`, each "
        f"with its source): {_names(list_model_presets())}. |",
        "| `model.<key>` | | | | Any model key beside `from` or `preset` overrides what was read (inside `moe` "
        "and `mla` key by key). |",
    ]


def render_reference() -> str:
    """``docs/reference.md``: every key of the workload, cluster and sweep files, as Markdown."""
    out = [
        "# File reference: workload, cluster and sweep keys",
        "",
        "<!-- Generated by `python -m simcluster.spec.reference > docs/reference.md` from the pydantic",
        "     models in simcluster/spec/; tests/spec/test_reference.py fails when this file is stale. -->",
        "",
        "Generated from the models in `simcluster/spec/` (`workload.py`, `cluster.py`, `sweep.py`): "
        "regenerate with `python -m simcluster.spec.reference > docs/reference.md`. "
        "`python -m simcluster validate FILE.yaml` checks a file against the same models.",
        "",
        "- Unknown keys are errors, and values are not coerced (`\"4\"` is not an integer).",
        "- Quantities (unit column) may be numbers in SI base units (bytes, bytes/s, seconds, FLOP/s) or "
        "strings with a unit: `\"80 GiB\"`, `\"25 MB\"`, `\"300 GB/s\"`, `\"200 Gb/s\"` (lowercase b: bits), "
        "`\"2 us\"`, `\"312 TFLOP/s\"`; decimal prefixes k M G T P E, binary Ki Mi Gi Ti Pi Ei "
        "(`simcluster/units.py`).",
        "- `--set KEY=VALUE` takes any dotted workload key below (`--set parallelism.tensor=4`); "
        "a comma list (`--set parallelism.tensor=1,2,4`) makes `run` a sweep.",
        "",
        "## Workload file",
    ]
    out += _sections(WorkloadSpec, "The model, how it is trained, how it is split over the GPUs, and the cluster "
                                   "(examples: `workloads/*.yaml`).")
    out += ["", "### `model.from`, `model.preset`", "",
            "The model may be read from a file instead of written out (docs/api.md, Models from files).", ""]
    out += _model_sources()
    out += ["", "### `cluster`", "",
            "The cluster the workload runs on: a cluster file named by `preset` or `path`, "
            "with any of its keys overridden.", ""]
    out += _CLUSTER_IN_WORKLOAD
    out += ["", f"`search.space` keys: {_names(SEARCH_KEYS)}.", "",
            "## Cluster file (`topologies/NAME.yaml`, or a workload's `cluster:` section)"]
    out += _sections(ClusterSpec, "The devices, the nodes and the fabrics inside and between them "
                                  "(examples: `topologies/*.yaml`).")
    out += ["", "### Devices", "", "Datasheet figures; sources in `simcluster/catalogue.py`.", ""]
    out += _devices()
    out += ["", "### Presets", "", "The cluster files in `topologies/` (sources in each file's comments).", ""]
    out += _presets()
    out += ["", "## Sweep file (`python -m simcluster sweep FILE.yaml`)"]
    out += _sections(SweepSpec, "A base workload and the keys to vary (examples: `workloads/sweeps/*.yaml`).")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render_reference(), end="")
