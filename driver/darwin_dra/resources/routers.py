"""A chip's router devices: no cores and no capacity, each taken by one claim whose stages
exchange spikes on the chip; the scheduler holds the claim's pods in PreBind until the plugin
reports the routes programmed or refused (KEP-5007 binding conditions, docs/pipeline.md)."""

from __future__ import annotations

from typing import Any

from darwin_dra.resources.chips import ChipView, Health
from darwin_dra.resources.partitions import (
    ROUTER,
    ROUTES_FAILED,
    ROUTES_PROGRAMMED,
    health_taints,
    router_name,
)


def router_device(chip: ChipView, index: int) -> dict[str, Any]:
    """One of the chip's routers: no cores and no capacity, taken by a claim whose stages
    exchange spikes on this chip, its allocation waiting in the scheduler's PreBind until the
    plugin reports its routes programmed (RoutesProgrammed) or refused (RoutesFailed)."""
    device: dict[str, Any] = {
        "name": router_name(chip.chip, index),
        "attributes": {
            "model": {"string": chip.model},
            "partition": {"string": ROUTER},
            "chip": {"int": chip.chip},
            "serial": {"string": chip.serial},
            "fabric": {"string": chip.fabric},
            "healthy": {"bool": chip.health is Health.OK},
        },
        "bindingConditions": [ROUTES_PROGRAMMED],
        "bindingFailureConditions": [ROUTES_FAILED],
    }
    taints = health_taints(chip.health)
    if taints:
        device["taints"] = taints
    return device
