"""Opaque device configuration ``darwin.snn.io/v1alpha1`` ``PartitionConfig``.

Users put it in a DeviceClass or a ResourceClaim (``opaque.parameters``); the allocation result
lists every entry with its source. Entries apply in the DRA order, class entries first, then
claim entries, each in its own order; a field set by a later entry replaces the earlier value,
fields no entry sets keep their defaults. An entry with a ``requests`` list applies only to
those requests (a request ``r`` also covers its subrequests ``r/s``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from darwin_dra import DRIVER_NAME, schema

# The rules are the JSON schema's (api/config/v1alpha1/partitionconfig.schema.json); nothing
# here repeats them. Fields earlier versions accepted although they changed nothing in the
# engine are in the schema as removed: refused, with the reason, so a config that relied on
# them fails loudly instead of doing nothing.
SCHEMA_FILE = "partitionconfig.schema.json"
_SCHEMA = schema.load(SCHEMA_FILE)
API_VERSION: str = _SCHEMA["properties"]["apiVersion"]["const"]
KIND: str = _SCHEMA["properties"]["kind"]["const"]
REMOVED: dict[str, str] = schema.removed_fields(_SCHEMA)

Source = Literal["FromClass", "FromClaim"]


class ConfigError(ValueError):
    """A config that cannot be used; ``path`` names the offending field."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class PartitionConfig:
    """What each field does in the engine is in docs/resource-model.md ("PartitionConfig")."""

    timestep_us: int | None = None  # None: the network's own step; else the engine enforces it
    routing_mode: str = _SCHEMA["properties"]["routingMode"]["default"]
    learning: bool = _SCHEMA["properties"]["learning"]["default"]

    def to_dict(self) -> dict[str, Any]:
        """The wire form (what a user writes), complete with apiVersion and kind."""
        out: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND}
        for f in fields(self):
            if getattr(self, f.name) is not None:
                out[_WIRE_NAMES[f.name]] = getattr(self, f.name)
        return out


# wire name -> python field name (the dataclass above mirrors the schema's known fields)
_FIELDS: dict[str, str] = {
    "timestepUs": "timestep_us",
    "routingMode": "routing_mode",
    "learning": "learning",
}
_WIRE_NAMES = {py: wire for wire, py in _FIELDS.items()}


def parse_overrides(obj: Any, path: str = "parameters") -> dict[str, Any]:
    """Validate one config object; returns only the fields it sets (python names)."""
    problem = schema.first_problem(SCHEMA_FILE, obj, path)
    if problem is not None:
        raise ConfigError(problem.field, problem.reason)
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key in _FIELDS:
            # 100.0 is an integer in JSON Schema terms; the engine takes an int.
            out[_FIELDS[key]] = int(value) if key == "timestepUs" else value
    return out


def parse_partition_config(obj: Any, path: str = "parameters") -> PartitionConfig:
    """One config object on its own, defaults filled in."""
    return replace(PartitionConfig(), **parse_overrides(obj, path))


@dataclass(frozen=True)
class ConfigEntry:
    """One opaque config of this driver, as the allocation result lists it."""

    source: Source
    requests: tuple[str, ...]
    parameters: Any  # validated when merged, so the error can name this entry
    path: str = "config"

    def applies_to(self, request: str) -> bool:
        if not self.requests:
            return True
        parent = request.split("/", 1)[0]
        return request in self.requests or parent in self.requests


def entries_from_allocation(
    config: Sequence[Mapping[str, Any]], path: str = "status.allocation.devices.config"
) -> list[ConfigEntry]:
    """This driver's entries of an allocation result's ``devices.config`` (other drivers' are
    skipped), checked for shape but not yet for content."""
    out: list[ConfigEntry] = []
    for i, item in enumerate(config):
        where = f"{path}[{i}]"
        opaque = item.get("opaque")
        if not isinstance(opaque, Mapping) or opaque.get("driver") != DRIVER_NAME:
            continue
        source = item.get("source")
        if source not in ("FromClass", "FromClaim"):
            raise ConfigError(f"{where}.source", f"must be FromClass or FromClaim, got {source!r}")
        requests = item.get("requests") or []
        if not isinstance(requests, list) or not all(isinstance(r, str) for r in requests):
            raise ConfigError(f"{where}.requests", "must be a list of request names")
        out.append(
            ConfigEntry(
                source, tuple(requests), opaque.get("parameters"), f"{where}.opaque.parameters"
            )
        )
    return out


def ordered(entries: Iterable[ConfigEntry]) -> list[ConfigEntry]:
    """Class entries before claim entries, each group keeping its order (stable sort)."""
    return sorted(entries, key=lambda e: 0 if e.source == "FromClass" else 1)


def merge_for_request(entries: Iterable[ConfigEntry], request: str) -> PartitionConfig:
    """The effective config of one request: applicable entries merged, later fields winning.

    Every entry is validated, applicable or not, so a typo fails the claim instead of hiding
    until another request uses that entry.
    """
    merged: dict[str, Any] = {}
    for entry in ordered(entries):
        overrides = parse_overrides(entry.parameters, entry.path)
        if entry.applies_to(request):
            merged.update(overrides)
    return replace(PartitionConfig(), **merged)


def merge_for_requests(
    entries: Iterable[ConfigEntry], requests: Iterable[str]
) -> dict[str, PartitionConfig]:
    items = list(entries)
    return {request: merge_for_request(items, request) for request in requests}
