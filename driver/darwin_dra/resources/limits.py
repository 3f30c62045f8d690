"""The resource.k8s.io/v1 limits a ResourceSlice must keep, checked before publishing (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

MAX_DEVICES_PER_SLICE = 64  # with counters or taints
MAX_COUNTER_SETS_PER_SLICE = 8
MAX_COUNTERS_PER_SET = 32
MAX_CONSUMES_PER_DEVICE = 2
MAX_ATTRS_AND_CAPS = 32
MAX_STRING = 64
MAX_TAINTS = 16


class SliceLimitError(ValueError):
    pass


def _dns_label(value: str) -> bool:
    return len(value) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", value) is not None


def check_limits(slices: Sequence[dict[str, Any]]) -> None:
    """Raise SliceLimitError naming the first resource.k8s.io/v1 limit a slice breaks."""
    names = [s["metadata"]["name"] for s in slices]
    if names != sorted(names) or len(set(names)) != len(names):
        raise SliceLimitError("slice names must be unique and in priority order")
    counts = {s["spec"]["pool"]["resourceSliceCount"] for s in slices}
    if counts != {len(slices)}:
        raise SliceLimitError(f"resourceSliceCount {counts} does not match {len(slices)} slices")
    for s in slices:
        spec, where = s["spec"], s["metadata"]["name"]
        if len(s["metadata"]["name"]) > 253:
            raise SliceLimitError(f"{where}: name longer than 253 characters")
        devices = spec.get("devices", [])
        sets = spec.get("sharedCounters", [])
        if devices and sets:
            raise SliceLimitError(f"{where}: holds both devices and sharedCounters")
        if len(sets) > MAX_COUNTER_SETS_PER_SLICE:
            raise SliceLimitError(
                f"{where}: {len(sets)} counter sets > {MAX_COUNTER_SETS_PER_SLICE}"
            )
        for cs in sets:
            if len(cs["counters"]) > MAX_COUNTERS_PER_SET:
                raise SliceLimitError(
                    f"{where}/{cs['name']}: more than {MAX_COUNTERS_PER_SET} counters"
                )
            for name in (cs["name"], *cs["counters"]):
                if not _dns_label(name):
                    raise SliceLimitError(f"{where}: {name!r} is not a DNS label")
        if len(devices) > MAX_DEVICES_PER_SLICE:
            raise SliceLimitError(f"{where}: {len(devices)} devices > {MAX_DEVICES_PER_SLICE}")
        for dev in devices:
            _check_device(where, dev)


def _check_device(where: str, dev: dict[str, Any]) -> None:
    name = dev["name"]
    if not _dns_label(name):
        raise SliceLimitError(f"{where}: device name {name!r} is not a DNS label")
    n = len(dev.get("attributes", {})) + len(dev.get("capacity", {}))
    if n > MAX_ATTRS_AND_CAPS:
        raise SliceLimitError(f"{where}/{name}: {n} attributes + capacities > {MAX_ATTRS_AND_CAPS}")
    consumes = dev.get("consumesCounters", [])
    if len(consumes) > MAX_CONSUMES_PER_DEVICE:
        raise SliceLimitError(f"{where}/{name}: consumes more than {MAX_CONSUMES_PER_DEVICE} sets")
    if any(len(c["counters"]) > MAX_COUNTERS_PER_SET for c in consumes):
        raise SliceLimitError(f"{where}/{name}: consumes more than {MAX_COUNTERS_PER_SET} counters")
    if len(dev.get("taints", [])) > MAX_TAINTS:
        raise SliceLimitError(f"{where}/{name}: more than {MAX_TAINTS} taints")
    for attr in dev.get("attributes", {}).values():
        for kind in ("string", "version"):
            if kind in attr and len(attr[kind]) > MAX_STRING:
                raise SliceLimitError(f"{where}/{name}: attribute value over {MAX_STRING} chars")
    has_policy = any("requestPolicy" in c for c in dev.get("capacity", {}).values())
    if has_policy and not dev.get("allowMultipleAllocations"):
        raise SliceLimitError(f"{where}/{name}: requestPolicy needs allowMultipleAllocations")
