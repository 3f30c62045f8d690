"""What each published device is, for reading allocations back: pure.

An allocation result names (pool, device); the pool is the node. The catalogue maps it to the
chip it sits on, the cores it holds and its router throughput, from the same ChipViews the
slices were built from, so the bench's accounting cannot drift from what was published.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from darwin_dra.engine import keps as kepsdef
from darwin_dra.resources.chips import ChipView
from darwin_dra.resources.partitions import PARTITION_KINDS
from darwin_dra.resources.slices import chip_devices


@dataclass(frozen=True)
class DeviceInfo:
    node: str
    chip: int
    model: str
    fabric: str
    partition: str  # chip | half | quad | domain | shared
    cores: int
    max_meps: int  # the device's router share
    chip_meps: int  # the whole chip's router throughput

    @property
    def chip_key(self) -> tuple[str, int]:
        return (self.node, self.chip)


@dataclass(frozen=True)
class Catalogue:
    devices: Mapping[tuple[str, str], DeviceInfo]
    chips: Mapping[tuple[str, int], ChipView]

    @property
    def total_cores(self) -> int:
        return sum(c.n_cores for c in self.chips.values())

    @property
    def total_keps(self) -> int:
        return sum(c.keps for c in self.chips.values())

    def device(self, pool: str, name: str) -> DeviceInfo:
        try:
            return self.devices[(pool, name)]
        except KeyError:
            raise KeyError(f"device {pool}/{name} was not published by the bench") from None


def _chip_meps(c: ChipView) -> int:
    return kepsdef.meps(c.keps)


def darwin_catalogue(
    fleet: Mapping[str, Sequence[ChipView]], kinds: Sequence[str] = PARTITION_KINDS
) -> Catalogue:
    """The devices the builder publishes for ``kinds`` (the plugin's --partitions)."""
    devices: dict[tuple[str, str], DeviceInfo] = {}
    chips: dict[tuple[str, int], ChipView] = {}
    for node, views in fleet.items():
        for c in views:
            chips[(node, c.chip)] = c
            for dev in chip_devices(c, kinds=kinds):
                attrs = dev["attributes"]
                if attrs["partition"]["string"] == "router":  # no cores; the bench asks none
                    continue
                devices[(node, dev["name"])] = DeviceInfo(
                    node=node,
                    chip=c.chip,
                    model=c.model,
                    fabric=c.fabric,
                    partition=attrs["partition"]["string"],
                    cores=attrs["cores"]["int"],
                    max_meps=attrs["maxMeps"]["int"],
                    chip_meps=_chip_meps(c),
                )
    return Catalogue(devices, chips)


def plain_catalogue(fleet: Mapping[str, Sequence[ChipView]]) -> Catalogue:
    """The black-box layout: device ``chip-c`` is the whole chip c."""
    devices: dict[tuple[str, str], DeviceInfo] = {}
    chips: dict[tuple[str, int], ChipView] = {}
    for node, views in fleet.items():
        for c in views:
            chips[(node, c.chip)] = c
            devices[(node, f"chip-{c.chip}")] = DeviceInfo(
                node, c.chip, c.model, c.fabric, "chip", c.n_cores, _chip_meps(c), _chip_meps(c)
            )
    return Catalogue(devices, chips)
