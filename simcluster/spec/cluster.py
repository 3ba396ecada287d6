"""Cluster files (``topologies/NAME.yaml``): devices, nodes, and the fabrics between them.

A cluster is read from a preset name (``topologies/NAME.yaml`` in the repository root)
or a file path. A workload's ``cluster:`` section names one (``preset:`` or ``path:``)
and may override any of its keys (``intra_node`` / ``inter_node`` / a device mapping are
merged key by key; device keys over a preset's named device merge over its catalogue figures) or give
``devices: N`` instead of ``nodes``.

Instead of ``intra_node`` / ``inter_node`` a cluster may give every link itself in
``graph`` (:class:`~simcluster.spec.graph_spec.GraphSpec`; checked by :mod:`simcluster.spec.graph`, built and routed by
:mod:`simcluster.topology.explicit`).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Annotated, Any, Callable, ClassVar

from pydantic import BaseModel, BeforeValidator, Field, ValidationError, model_validator

import simcluster
from simcluster.catalogue import Device
from simcluster.errors import Problem, SpecError
from simcluster.spec.fields import STRICT, FabricName, Latency, LinkBandwidth, MaybeBandwidth, PositiveInt
from simcluster.spec.cluster_checks import check_cluster
from simcluster.spec.device import DeviceMapping, device_figures, to_device
from simcluster.spec.graph import graph_gpu_count
from simcluster.spec.graph_spec import GraphSpec
from simcluster.spec.problems import Locator, known_keys, problems_from_error
from simcluster.spec.yamlio import YamlDoc, is_file, load_yaml

#: Where preset cluster files live: ``topologies/`` next to the ``simcluster`` package.
PRESETS_DIR = Path(simcluster.__file__).resolve().parent.parent / "topologies"


class IntraNodeSpec(BaseModel):
    """The fabric between the GPUs of one node; bandwidth per GPU per direction."""

    model_config = STRICT
    fabric: FabricName = Field(default="nvswitch", description="nvswitch, nvlink-mesh (DGX-1 hybrid cube-mesh), "
                               "pcie, torus (TPU pods) or none (one GPU per node).")
    bandwidth: MaybeBandwidth = Field(default=0.0, description="Per GPU per direction; needed with more than one GPU "
                                 "per node.")
    latency: Latency = Field(default=0.0, description="GPU to GPU through the fabric.")


class InterNodeSpec(BaseModel):
    """The fabric between nodes: NICs into a fat tree / rail-optimized network, or a torus of links."""

    model_config = STRICT
    fabric: FabricName = Field(default="fat-tree", description="fat-tree (two levels), rail-optimized (NIC j of "
                               "every node on rail j's leaves), torus, or none (one node).")
    nics_per_node: PositiveInt = Field(default=1, le=1024, description="NICs per node; GPU l uses NIC "
                                       "l × nics_per_node // gpus_per_node.")
    nic_bandwidth: MaybeBandwidth = Field(default=0.0, description="Per NIC per direction; needed with more than one "
                                     "node.")
    nic_efficiency: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=None, description="Share of nic_bandwidth one NIC reaches in a large-message NCCL ring, as measured "
        "on this cluster (nccl-tests busbw through one NIC ÷ line rate); default: the InfiniBand generation's "
        "calibrated share (0.96 EDR/HDR, 0.94 NDR).",
        json_schema_extra={"default_doc": "by line rate"})
    latency: Latency = Field(default=0.0, description="GPU to GPU across nodes (torus: per hop).")
    oversubscription: Annotated[float, Field(ge=1, le=1000)] = Field(default=1.0, description="Leaf down/up port ratio; "
                                                            "1 is non-blocking.")
    switch_radix: Annotated[int, Field(ge=2, le=65_536)] = Field(default=64, description="Ports per leaf switch.")
    torus: list[Annotated[int, Field(gt=0, le=4096)]] | None = Field(default=None, description="Torus dimensions, e.g. [16, 16, 16]; "
                                            "needed for fabric torus.")
    link_bandwidth: LinkBandwidth | None = Field(default=None, description="Per torus link per direction.",
                                             json_schema_extra={"default_doc": "nic_bandwidth"})
    dcn_bandwidth: MaybeBandwidth = Field(default=0.0, description="TPU pods: per host, per direction, into the "
                                     "data-center network that joins the pods; needed with more than one pod.")
    dcn_latency: Latency = Field(default=0.0, description="TPU pods: host to host across the data-center "
                                 "network.")


class ClusterSpec(BaseModel):
    """A validated cluster, units resolved to SI."""

    model_config = STRICT
    user_sections: ClassVar[dict[str, type[BaseModel]]] = {"device": DeviceMapping}
    hidden_keys: ClassVar[tuple[str, ...]] = ("source",)

    name: str = Field(default="cluster", description="Shown in reports.",
                      json_schema_extra={"default_doc": "the file's stem"})
    source: str = "<inline>"
    device: Annotated[Device, BeforeValidator(to_device)] = Field(description="The accelerator: a "
                                                                   "catalogue name or its figures.")
    gpus_per_node: PositiveInt = Field(le=4096, description="Accelerators per node (per host on a TPU pod).")
    nodes: PositiveInt = Field(default=1, le=1_000_000, description="Nodes; a workload's cluster section usually sets it.")
    pods: PositiveInt | None = Field(default=None, le=100_000, description="TPU pods (fabric torus) joined by the "
                                     "data-center network, each holding an equal share of the chips; "
                                     "default: as few as hold them.",
                                     json_schema_extra={"default_doc": "⌈chips / chips of the torus⌉"})
    intra_node: IntraNodeSpec = Field(default_factory=IntraNodeSpec, description="Inside a node (below).")
    inter_node: InterNodeSpec = Field(default_factory=InterNodeSpec, description="Between nodes (below).")
    price_per_gpu_hour: Annotated[float, Field(ge=0, le=10_000)] | None = Field(
        default=None, description="Dollars per GPU-hour, for `search --objective cost`.")
    # heterogeneity (simulated with every rank explicit): GPU rank -> compute slowdown factor,
    # and link name (as the timeline names it, e.g. "gpu3->nvsw0") -> fraction of bandwidth left
    stragglers: dict[Annotated[int, Field(ge=0)], Annotated[float, Field(ge=0.01, le=1000)]] = Field(
        default_factory=dict, description="GPU rank → compute slowdown factor (1.5: 1.5× slower); "
        "simulated with every GPU explicit.")
    degraded_links: dict[str, Annotated[float, Field(ge=0.001, le=1)]] = Field(
        default_factory=dict, description="Link name as the timeline names it (gpu3->nvsw0) → share of its "
        "bandwidth left.")
    # links out of service (explicit graphs only: routes go around them)
    failed_links: list[str] = Field(default_factory=list, description="Links out of service; explicit "
                                    "graphs only (routes go around them).")
    # mixed devices: node index -> a device other than `device` (catalogue name or mapping)
    node_devices: dict[Annotated[int, Field(ge=0)], Annotated[Device, BeforeValidator(to_device)]] = \
        Field(default_factory=dict, description="Node index → a device other than `device`; its GPUs compute "
              "in proportion to a layer's time on that device.")
    # an explicit graph instead of intra_node / inter_node (see GraphSpec)
    graph: GraphSpec | None = Field(default=None, description="The links written out one by one, instead of "
                                    "intra_node and inter_node (below).")

    @model_validator(mode="after")
    def _nodes_default_from_graph(self) -> "ClusterSpec":
        """With a graph and no ``nodes``: as many nodes as the graph's GPUs fill.

        ``nodes`` stays out of ``model_fields_set`` (it was not written), which
        :func:`check_cluster` reads.
        """
        if self.graph is not None and "nodes" not in self.model_fields_set:
            self.nodes = max(1, graph_gpu_count(self.graph) // self.gpus_per_node)
            self.model_fields_set.discard("nodes")
        return self

    @property
    def heterogeneous(self) -> bool:
        """True when some GPUs or links may differ from their peers (rank symmetry does not hold).

        An explicit graph is not assumed symmetric, so it counts too.
        """
        return bool(self.stragglers or self.degraded_links or self.failed_links or self.node_devices
                    or self.graph is not None)

    @property
    def uneven_node(self) -> bool:
        """True when the GPU pairs of a node are linked unevenly, so that ranks doing the same work move their data at
        different speeds: the 8-GPU NVLink mesh is the DGX-1's hybrid cube-mesh, 1 or 2 NVLinks a pair
        (:data:`simcluster.topology.intra.DGX1_NVLINKS`; other sizes are a full mesh of single links). One
        representative GPU per stage cannot stand for its peers there: ``auto`` simulates every GPU."""
        return self.intra_node.fabric == "nvlink-mesh" and self.gpus_per_node == 8

    def num_pods(self) -> int:
        """Pods of a torus cluster: ``pods``, or as few full-size pods as hold the chips (1 otherwise)."""
        torus = self.inter_node.torus
        if self.inter_node.fabric != "torus" or not torus:
            return 1
        return self.pods if self.pods is not None else -(-self.num_gpus // math.prod(torus))

    def device_of_node(self, node: int) -> Device:
        """The device of a node (``node_devices`` overrides ``device``)."""
        return self.node_devices.get(node, self.device)

    @property
    def num_gpus(self) -> int:
        """Every GPU in the cluster: gpus_per_node * nodes."""
        return self.gpus_per_node * self.nodes

    def resolved_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict with defaults filled and the device's figures.

        ``graph``, ``pods`` and the data-center network appear only when given, so the resolved
        form (config.json, sweep store keys) of a cluster without them is what it was before
        they existed.
        """
        exclude: dict[str, Any] = {}
        if self.graph is None:
            exclude["graph"] = True
        if self.pods is None:
            exclude["pods"] = True
        if not self.inter_node.dcn_bandwidth and not self.inter_node.dcn_latency:
            exclude["inter_node"] = {"dcn_bandwidth", "dcn_latency"}
        out = self.model_dump(mode="json", exclude=exclude or None)
        out["num_gpus"] = self.num_gpus
        return out


def list_presets() -> list[str]:
    """Names of the cluster presets: the ``*.yaml`` files directly in ``topologies/`` (not its subfolders)."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")) if PRESETS_DIR.is_dir() else []


def preset_path(name: str) -> Path:
    """The file of preset ``name``; raises ValueError listing the known presets."""
    path = PRESETS_DIR / f"{name}.yaml"
    if "/" in name or "\\" in name or not is_file(path):
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(list_presets()) or '(none)'}")
    return path


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, else absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd()))
    except ValueError:
        return str(resolved)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; mappings present in both are merged key by key."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _section_keys(path: tuple[str, ...]) -> list[str] | None:
    """The keys allowed in the section at ``path`` (list indices skipped: ``graph.links.3``)."""
    return known_keys(ClusterSpec, tuple(p for p in path if not p.isdigit()))


def _validate(
    data: dict[str, Any],
    locate: Callable[[str], tuple[str, int | None, str]],
    known: Callable[[tuple[str, ...]], list[str] | None] | None = None,
    skip: Callable[[str], bool] = lambda k: False,
) -> tuple[ClusterSpec | None, list[Problem]]:
    """Validate a merged cluster mapping; problems located by ``locate``."""
    known = known or (lambda loc: _section_keys(loc[:-1]))
    try:
        spec = ClusterSpec.model_validate(data)
    except ValidationError as err:
        return None, problems_from_error(err, ClusterSpec, locate, skip=skip, known=known)
    problems = []
    for key, reason in check_cluster(spec):
        file, line, shown = locate(key)
        problems.append(Problem(file, line, shown, reason))
    return spec, problems


def cluster_from_doc(doc: YamlDoc, source: str | None = None) -> ClusterSpec:
    """A ClusterSpec from a parsed cluster file; raises SpecError."""
    data = dict(doc.data)
    data.setdefault("name", Path(doc.file).stem)
    data["source"] = source or doc.file
    spec, problems = _validate(data, Locator(doc))
    if problems or spec is None:
        raise SpecError(problems)
    return spec


def load_cluster(ref: str | Path | ClusterSpec) -> ClusterSpec:
    """Load a cluster from a file path or a preset name (``"dgx-a100-80gb"``); raises SpecError."""
    if isinstance(ref, ClusterSpec):
        return ref
    text = str(ref)
    path = Path(text)
    if not is_file(path) and path.suffix not in (".yaml", ".yml") and len(path.parts) == 1:
        try:
            path = preset_path(text)
        except ValueError as exc:
            raise SpecError([Problem(text, None, "", str(exc))]) from None
        text = display_path(path)
    return cluster_from_doc(load_yaml(path), source=text)


def _fabric(data: dict[str, Any]) -> object:
    intra = data.get("intra_node")
    return intra.get("fabric") if isinstance(intra, dict) else None


def _part_of_a_node(data: dict[str, Any], devices: int, gpn: int) -> None:
    """``devices`` fewer than a node holds: one node with that many of its GPUs (a switched node's
    fabric and per-GPU links are unchanged), and its NICs in proportion (GPU l keeps NIC
    l × nics // gpus_per_node, so each GPU keeps its own rail)."""
    data["gpus_per_node"], data["nodes"] = devices, 1
    inter = data.get("inter_node")
    if not isinstance(inter, dict):
        return
    nics = inter.get("nics_per_node")
    if isinstance(nics, int) and not isinstance(nics, bool) and nics > 1:
        data["inter_node"] = {**inter, "nics_per_node": max(1, nics * devices // gpn)}


def _in_section(section: dict[str, Any], key: str) -> bool:
    """Whether dotted ``key`` was written in ``section`` (or lies inside a value written there)."""
    node: Any = section
    for part in key.split("."):
        if not isinstance(node, dict):
            return True
        node = {str(k): v for k, v in node.items()}  # keys written as numbers (stragglers: {0: 1.5})
        if part not in node:
            return False
        node = node[part]
    return True


def resolve_cluster(section: Any, where: Locator, base_dir: Path) -> ClusterSpec:
    """The ClusterSpec named by a workload's ``cluster:`` section; raises SpecError.

    ``where`` locates keys of the section in the workload (its prefix is ``"cluster"``);
    relative ``path:`` values are taken from ``base_dir`` (the workload's folder).
    """
    def fail(key: str, reason: str) -> SpecError:
        file, line, shown = where(key)
        return SpecError([Problem(file, line, shown, reason)])

    if section is None:
        raise fail("", "required section is missing; give `cluster: {preset: NAME}` or `cluster: {path: FILE}`")
    if not isinstance(section, dict):
        raise fail("", f"expected a section of keys (preset: NAME or path: FILE), got {section!r}")
    section = dict(section)
    preset, path, devices = section.pop("preset", None), section.pop("path", None), section.pop("devices", None)
    base: YamlDoc | None = None
    source = "<inline>"
    if preset is not None and path is not None:
        raise fail("path", "give preset or path, not both")
    if preset is not None:
        if not isinstance(preset, str):
            raise fail("preset", f"expected a preset name, got {preset!r}")
        try:
            file = preset_path(preset)
        except ValueError as exc:
            raise fail("preset", str(exc)) from None
        source = display_path(file)
        base = load_yaml(source)
    elif path is not None:
        if not isinstance(path, str):
            raise fail("path", f"expected a file path, got {path!r}")
        file = Path(path) if Path(path).is_absolute() else base_dir / path
        if not is_file(file):
            raise fail("path", f"cluster file not found: {file}")
        source = str(file)
        base = load_yaml(file)
    base_data = base.data if base else {}
    if isinstance(section.get("device"), dict) and isinstance(base_data.get("device"), str):
        base_data = {**base_data, "device": device_figures(base_data["device"])}  # keys over a named device
    merged = deep_merge(base_data, section)
    if base is not None:
        merged.setdefault("name", Path(base.file).stem)
    merged["source"] = source
    if devices is not None:
        gpn = merged.get("gpus_per_node")
        if "nodes" in section:
            raise fail("devices", "give nodes or devices, not both")
        if isinstance(devices, bool) or not isinstance(devices, int) or devices <= 0:
            raise fail("devices", f"expected a positive integer, got {devices!r}")
        if isinstance(gpn, int) and not isinstance(gpn, bool) and 0 < devices < gpn and _fabric(merged) != "torus":
            _part_of_a_node(merged, devices, gpn)
        elif isinstance(gpn, int) and not isinstance(gpn, bool) and gpn > 0:
            if devices % gpn:
                raise fail("devices", f"{devices} is not a whole number of nodes of {gpn} GPUs")
            merged["nodes"] = devices // gpn

    def locate(key: str) -> tuple[str, int | None, str]:
        if base is None or _in_section(section, key):
            return where(key)
        if key == "nodes" and devices is not None:
            return where("devices")
        return Locator(base)(key)

    def known(loc: tuple[str, ...]) -> list[str] | None:
        keys = _section_keys(loc[:-1])
        if len(loc) == 1 and keys is not None and (base is None or _in_section(section, loc[0])):
            keys = sorted(keys + ["devices", "path", "preset"])
        return keys

    spec, problems = _validate(merged, locate, known=known)
    if problems or spec is None:
        raise SpecError(problems)
    return spec
