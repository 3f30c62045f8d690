"""The DeviceClasses this driver installs (resource.k8s.io/v1): pure bodies, no API calls.

The controller owns them rather than the Helm chart: their selectors name attributes the
slice builder publishes, so they are kept and tested beside that code, and the controller puts
back a class someone edited or deleted. A class carries ``extendedResourceName`` where a legacy
pod's ``limits`` can mean something exact (KEP-5004): ``darwin.snn.io/domain: 2`` is two
domains, ``darwin.snn.io/chip: 1`` one whole chip. The shared and fabric classes need a
capacity request, which an extended resource cannot express, so they have none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from darwin_dra import DRIVER_NAME
from darwin_dra.resources import API_VERSION, MANAGED_BY, OWNER_LABEL

EXCLUSIVE_PARTITIONS = ("chip", "half", "quad", "domain")


@dataclass(frozen=True)
class ClassSettings:
    # 100,000 MEPS is about four domains of a Darwin3 (each about 27,800 MEPS nominal): "fast"
    # then means a quad or larger, which is what a latency-bound model needs on one router.
    fast_min_meps: int = 100_000


def _attr(name: str) -> str:
    return f'device.attributes["{DRIVER_NAME}"].{name}'


IS_DRIVER = f'device.driver == "{DRIVER_NAME}"'


def _partition_in(kinds: Sequence[str]) -> str:
    if len(kinds) == 1:
        return f'{_attr("partition")} == "{kinds[0]}"'
    listed = ", ".join(f'"{k}"' for k in kinds)
    return f"{_attr('partition')} in [{listed}]"


def _class(
    name: str, conditions: list[str], extended_resource: str | None = None
) -> dict[str, Any]:
    """A class whose one selector is the driver check and ``conditions``, joined by ``&&``."""
    expression = " && ".join([IS_DRIVER, *conditions])
    spec: dict[str, Any] = {"selectors": [{"cel": {"expression": expression}}]}
    if extended_resource:
        spec["extendedResourceName"] = extended_resource
    return {
        "apiVersion": API_VERSION,
        "kind": "DeviceClass",
        "metadata": {"name": name, "labels": {OWNER_LABEL: MANAGED_BY}},
        "spec": spec,
    }


def device_classes(settings: ClassSettings | None = None) -> list[dict[str, Any]]:
    """Every class, sorted by name.

    Each class is one CEL expression, the driver check first: ``&&`` makes another driver's
    device a plain "does not match" before its (absent) ``darwin.snn.io`` attributes are read.
    One expression, not one selector per condition: the scheduler rebuilds a device's whole
    attribute map for every selector it evaluates, on every node it filters, and that was
    half its CPU time with the default layout (docs/fleet.md, "Where the scheduler's time
    goes").
    """
    s = settings or ClassSettings()
    classes = [
        # Any exclusive partition; the shared and fabric devices are requested differently.
        _class(DRIVER_NAME, [_partition_in(EXCLUSIVE_PARTITIONS)]),
        _class("darwin-chip.snn.io", [_partition_in(["chip"])], f"{DRIVER_NAME}/chip"),
        _class("darwin-domain.snn.io", [_partition_in(["domain"])], f"{DRIVER_NAME}/domain"),
        _class("darwin-shared.snn.io", [_partition_in(["shared"])]),
        # The capacity layout's chips (--partitions capacity): ask capacity domains and keps.
        _class("darwin-capacity.snn.io", [_partition_in(["capacity"])]),
        _class("darwin-fabric.snn.io", [_partition_in(["fabric"])]),
        # A chip's router (resources/routers.py router_device): a group whose stages exchange
        # spikes on the chip asks for it, and its pods bind once the routes are programmed.
        _class("darwin-router.snn.io", [_partition_in(["router"])]),
        _class(
            "darwin-fast.snn.io",
            [_partition_in(EXCLUSIVE_PARTITIONS), f"{_attr('maxMeps')} >= {s.fast_min_meps}"],
        ),
    ]
    return sorted(classes, key=lambda c: c["metadata"]["name"])
