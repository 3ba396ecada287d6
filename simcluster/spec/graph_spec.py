"""The explicit graph of a cluster file (key ``graph``) as the spec validates it: its links and switches.

The checks of a graph's shape (every GPU linked, paths between GPUs) are :mod:`simcluster.spec.graph`'s; the
file format and how the graph is built and routed, :mod:`simcluster.topology.explicit`.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from simcluster.spec.fields import STRICT, Latency, LinkBandwidth
from simcluster.spec.graph import DEFAULT_CLASS


class GraphLinkSpec(BaseModel):
    """One link of an explicit graph: both directions at ``bandwidth`` unless ``directed``."""

    model_config = ConfigDict(**STRICT, serialize_by_alias=True)
    hidden_keys: ClassVar[tuple[str, ...]] = ("link_class",)
    extra_keys: ClassVar[tuple[str, ...]] = ("class",)

    between: list[str] = Field(description="The two vertices: GPUs gpu<k> (k = rank) or names in "
                               "graph.switches.")
    bandwidth: LinkBandwidth = Field(description="Per direction.")
    latency: Latency = Field(default=0.0, description="Per link, per direction.")
    link_class: Annotated[str, Field(min_length=1, alias="class")] = Field(
        default=DEFAULT_CLASS, description="Names the link in the timeline; nvlink, pcie, nic, spine and torus run at "
        "their calibrated share of bandwidth, any other class at the full figure.")
    directed: bool = Field(default=False, description="true: between[0] -> between[1] only.")

    @field_validator("between")
    @classmethod
    def _two_ends(cls, value: list[str]) -> list[str]:
        if len(value) != 2:
            raise ValueError(f"expected the two vertices a link joins, e.g. [gpu0, sw0], got {value}")
        return value


class GraphSpec(BaseModel):
    """A cluster's links written out: switches (every vertex that is not a GPU) and links."""

    model_config = STRICT
    user_sections: ClassVar[dict[str, type[BaseModel]]] = {"links": GraphLinkSpec}

    switches: list[str] = Field(default_factory=list, description="Every vertex that is not a GPU.")
    links: list[GraphLinkSpec] = Field(description="The links (below).")
