"""Workload files: the model, how it is trained, how it is split over the cluster.

``load_workload(path, overrides)`` reads the file, applies ``--set`` overrides, resolves
the cluster (preset or file plus overrides), validates every section and the parallel
layout, and returns a :class:`WorkloadSpec` with every default filled in. All problems
found are raised together in one :class:`~simcluster.errors.SpecError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, Field, TypeAdapter, ValidationError, field_validator, model_validator

from simcluster.errors import Problem, SpecError
from simcluster.spec.checks import check_workload
from simcluster.spec.cluster import ClusterSpec, resolve_cluster
from simcluster.spec.fields import STRICT, AlgorithmName, Bytes, PositiveInt, ScheduleName
from simcluster.spec.overrides import apply_overrides
from simcluster.spec.problems import Locator, problems_from_error
from simcluster.spec.yamlio import load_yaml


def _collective_ops() -> tuple[str, ...]:
    from simcluster.collectives.algorithms import OPS

    return tuple(OPS)


def _check_op(value: str) -> str:
    if value not in _collective_ops():
        raise ValueError(f"unknown collective {value!r}; known: {', '.join(_collective_ops())}")
    return value


OpName = Annotated[str, AfterValidator(_check_op)]


class ModelSpec(BaseModel):
    """A decoder-only transformer. ``ffn_hidden`` and ``kv_heads`` are filled in when omitted."""

    model_config = STRICT
    layers: PositiveInt
    hidden: PositiveInt
    heads: PositiveInt
    seq_len: PositiveInt
    vocab: PositiveInt
    ffn_hidden: PositiveInt | None = None  # default 4 * hidden
    kv_heads: PositiveInt | None = None  # default heads; fewer = grouped-query attention
    mlp: Literal["gelu", "swiglu"] = "gelu"
    tied_embeddings: bool = True

    @model_validator(mode="after")
    def _fill(self) -> "ModelSpec":
        if self.ffn_hidden is None:
            self.ffn_hidden = 4 * self.hidden
        if self.kv_heads is None:
            self.kv_heads = self.heads
        return self


class TrainingSpec(BaseModel):
    """One training iteration: batch sizes, numeric precision, optimizer, recomputation."""

    model_config = STRICT
    global_batch: PositiveInt
    micro_batch: PositiveInt = 1
    precision: Literal["bf16", "fp16", "fp32"] = "bf16"
    optimizer: Literal["adam", "sgd"] = "adam"
    recompute: Literal["none", "selective", "full"] = "none"
    flash_attention: bool = True


class ParallelismSpec(BaseModel):
    """The parallel layout. ``data`` is filled from the cluster when omitted.

    ``virtual_stages > 1`` with no ``schedule`` given selects the interleaved schedule.
    """

    model_config = STRICT
    tensor: PositiveInt = 1
    pipeline: PositiveInt = 1
    data: PositiveInt | None = None
    context: PositiveInt = 1
    sequence_parallel: bool = False
    virtual_stages: PositiveInt = 1
    stage_layers: list[PositiveInt] | None = None
    schedule: ScheduleName = "1f1b"
    zero_stage: Annotated[int, Field(ge=0, le=3)] = 0
    overlap_grad_reduce: bool = True
    grad_bucket_bytes: Annotated[Bytes, Field(gt=0)] = 25e6

    @model_validator(mode="after")
    def _interleave(self) -> "ParallelismSpec":
        if self.virtual_stages > 1 and "schedule" not in self.model_fields_set:
            self.schedule = "interleaved"
        return self


#: Keys ``python -m simcluster search`` varies; ``search.space`` limits the values of each.
SEARCH_KEYS = ("parallelism.tensor", "parallelism.pipeline", "parallelism.data", "parallelism.context",
               "training.micro_batch", "parallelism.virtual_stages", "parallelism.schedule",
               "parallelism.sequence_parallel", "training.recompute", "parallelism.zero_stage")


class SearchSpec(BaseModel):
    """Limits for ``python -m simcluster search`` (``run`` ignores this section); flags win over it."""

    model_config = STRICT
    gpus: PositiveInt | None = None  # use at most this many GPUs (default: the cluster's)
    min_gpus: PositiveInt | None = None  # and at least this many (default: more than half of gpus)
    objective: Literal["throughput", "cost"] = "throughput"
    top: PositiveInt = 10
    max_simulations: PositiveInt | None = None
    space: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)

    @field_validator("space")
    @classmethod
    def _space(cls, space: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in space.items():
            if key not in SEARCH_KEYS:
                raise ValueError(f"unknown key {key!r}; known: {', '.join(SEARCH_KEYS)}")
            section, name = key.split(".")
            owner = TrainingSpec if section == "training" else ParallelismSpec
            try:
                TypeAdapter(list[owner.model_fields[name].rebuild_annotation()]).validate_python(values, strict=True)
            except ValidationError as err:
                msg = err.errors()[0]["msg"].removeprefix("Value error, ")
                raise ValueError(f"{key}: {msg[:1].lower() + msg[1:]}, got {values!r}") from None
        return space


class WorkloadSpec(BaseModel):
    """A validated workload with its resolved cluster; every default filled in."""

    model_config = STRICT
    hidden_keys: ClassVar[tuple[str, ...]] = ("source",)

    name: str
    source: str = "<inline>"
    model: ModelSpec
    training: TrainingSpec
    parallelism: ParallelismSpec = Field(default_factory=ParallelismSpec)
    collectives: dict[OpName, AlgorithmName] = Field(default_factory=dict)
    fidelity: Literal["auto", "symmetric", "full"] = "auto"
    search: SearchSpec | None = None  # limits for `search`; not part of the simulated workload
    cluster: ClusterSpec

    @model_validator(mode="after")
    def _resolve(self) -> "WorkloadSpec":
        for op in _collective_ops():
            self.collectives.setdefault(op, "auto")
        p = self.parallelism
        if p.data is None:
            rest = p.tensor * p.pipeline * p.context
            if self.cluster.num_gpus % rest == 0 and self.cluster.num_gpus >= rest:
                p.data = self.cluster.num_gpus // rest
        return self

    @property
    def num_gpus(self) -> int:
        """GPUs used: tensor * pipeline * data * context."""
        p = self.parallelism
        return p.tensor * p.pipeline * (p.data or 0) * p.context

    @property
    def num_microbatches(self) -> int:
        """Microbatches per pipeline per iteration: global_batch // (micro_batch * data)."""
        return self.training.global_batch // (self.training.micro_batch * (self.parallelism.data or 1))

    def resolved_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of everything, defaults filled, cluster resolved (for config.json)."""
        out = self.model_dump(mode="json", exclude={"cluster", "search"})
        out["cluster"] = self.cluster.resolved_dict()
        out["num_gpus"] = self.num_gpus
        out["num_microbatches"] = self.num_microbatches
        return out


def _written(where: Locator, keys: tuple[str, ...]) -> str:
    """The key to take file and line from: one set with ``--set`` if any, else the first written."""
    for key in keys:
        if where.from_set(key):
            return key
    for key in keys:
        if where.doc is not None and key in where.doc.lines:
            return key
    return keys[0]


def workload_from_data(
    data: dict[str, Any],
    source: str = "<inline>",
    overrides: list[str] | tuple[str, ...] = (),
    doc=None,
    base_dir: Path | None = None,
) -> WorkloadSpec:
    """Validate a workload mapping (as read from YAML) after applying ``overrides``; raises SpecError.

    ``doc`` (a :class:`~simcluster.spec.yamlio.YamlDoc`) supplies line numbers;
    ``base_dir`` is where a relative ``cluster.path`` is looked up (default: cwd).
    """
    data = dict(data)
    if isinstance(data.get("cluster"), str):
        data["cluster"] = {"preset": data["cluster"]}
    set_keys, problems = apply_overrides(data, list(overrides))
    where = Locator(doc, set_keys=set_keys, file=source)
    data.setdefault("name", Path(source).stem)
    data["source"] = source
    cluster: ClusterSpec | None = None
    try:
        cluster = resolve_cluster(
            data.get("cluster"), Locator(doc, prefix="cluster", set_keys=set_keys, file=source), base_dir or Path.cwd()
        )
    except SpecError as exc:
        problems.extend(exc.problems)
    payload = {k: v for k, v in data.items() if k != "cluster"}
    if cluster is not None:
        payload["cluster"] = cluster
    spec: WorkloadSpec | None = None
    try:
        spec = WorkloadSpec.model_validate(payload)
    except ValidationError as err:
        problems.extend(problems_from_error(err, WorkloadSpec, where, skip=lambda key: key == "cluster" or key.startswith("cluster.")))
    if spec is not None:
        for finding in check_workload(spec):
            file, line, _ = where(_written(where, (finding.key, *finding.near)))
            problems.append(Problem(file, line, finding.key, finding.reason))
    if problems or spec is None:
        raise SpecError(problems)
    return spec


def load_workload(path: str | Path, overrides: list[str] | tuple[str, ...] | None = None) -> WorkloadSpec:
    """Read, override (``--set`` strings ``"key=value"``), validate and resolve a workload file.

    Raises :class:`~simcluster.errors.SpecError` carrying every problem found.
    """
    doc = load_yaml(path)
    return workload_from_data(doc.data, source=str(path), overrides=overrides or (), doc=doc, base_dir=Path(path).parent)
