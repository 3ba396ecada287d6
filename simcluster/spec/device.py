"""Devices of a cluster file (``device:``, ``node_devices``): a catalogue name or a mapping of figures.

A mapping (:class:`DeviceMapping`) gives the datasheet figures of a device the catalogue
(:data:`simcluster.catalogue.DEVICES`) lacks or that differs from it; over a preset's named device, a workload's
device keys merge over the catalogue figures (:func:`device_figures`). A device read back from a run's
config.json names its memory ``memory_bytes`` (:func:`as_mapping`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

from simcluster.catalogue import DEVICES, Device
from simcluster.registry import UnknownName
from simcluster.spec.fields import STRICT, Capacity, LinkBandwidth, PeakRate


class DeviceMapping(BaseModel):
    """A device given by its figures instead of a catalogue name."""

    model_config = STRICT
    name: str = Field(default="custom", description="Shown in reports.")
    peak_flops: PeakRate = Field(description="Dense 16-bit tensor peak.")
    peak_flops_fp32: PeakRate | None = Field(
        default=None, description="fp32 peak, used for precision fp32.", json_schema_extra={"default_doc": "peak_flops / 16"})
    memory: Capacity = Field(description="Memory capacity.")
    memory_bandwidth: LinkBandwidth = Field(description="Memory bandwidth.")
    vendor: str = Field(default="nvidia", description="Shown in reports and traces.")
    peak_flops_range: list[PeakRate] | None = Field(
        default=None, description="[low, high]: where the true dense 16-bit peak lies when it is not known (a "
        "power-capped part whose source brackets it); peak_flops must lie inside. It widens the compute's interval "
        "by ln(high/low)/√12 on its tensor-core share (docs/validation.md, error bars); predictions use peak_flops.")

    @model_validator(mode="after")
    def _peak_inside_its_range(self) -> "DeviceMapping":
        r = self.peak_flops_range
        if r is not None and (len(r) != 2 or not r[0] <= self.peak_flops <= r[1]):
            raise ValueError("peak_flops_range must be [low, high] with low <= peak_flops <= high, got "
                             f"{[f'{x / 1e12:g} TFLOP/s' for x in r]} around {self.peak_flops / 1e12:g} TFLOP/s")
        return self

    def to_device(self) -> Device:
        fp32 = self.peak_flops_fp32 if self.peak_flops_fp32 is not None else self.peak_flops / 16
        rng = (self.peak_flops_range[0], self.peak_flops_range[1]) if self.peak_flops_range else None
        return Device(self.name, self.peak_flops, fp32, self.memory, self.memory_bandwidth, self.vendor, rng)


def to_device(value: Any) -> Any:
    """A catalogue name or a mapping of figures -> :class:`Device`."""
    if isinstance(value, Device):
        return value
    if isinstance(value, str):
        try:
            return DEVICES.get(value)
        except UnknownName as exc:
            raise ValueError(str(exc)) from None
    if isinstance(value, dict):
        return DeviceMapping.model_validate(as_mapping(value)).to_device()
    raise ValueError(f"expected a device name like 'a100-80gb' or a mapping of its figures, got {value!r}")


def device_figures(name: str) -> Any:
    """A catalogue device's figures as a device mapping (SI numbers), so that a workload's device keys
    (``cluster.device.memory``, ``peak_flops_range``, ...) merge over a preset's named device; the name itself
    where the catalogue has no such device (validation says so)."""
    try:
        d = DEVICES.get(name)
    except UnknownName:
        return name
    return as_mapping({k: v for k, v in d.to_dict().items() if v is not None})


def as_mapping(value: dict[str, Any]) -> dict[str, Any]:
    """A device's figures as :class:`DeviceMapping` keys: a :class:`Device` written out (``model_dump``,
    ``to_dict``) names its memory ``memory_bytes``."""
    if "memory_bytes" in value and "memory" not in value:
        return {("memory" if k == "memory_bytes" else k): v for k, v in value.items()}
    return value
