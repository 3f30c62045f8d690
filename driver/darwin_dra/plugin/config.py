"""Opaque device configuration ``darwin.snn.io/v1alpha1`` ``PartitionConfig``.

Users put it in a DeviceClass or a ResourceClaim (``opaque.parameters``); the allocation result
lists every entry with its source. Entries apply in the DRA order, class entries first, then
claim entries, each in its own order; a field set by a later entry replaces the earlier value,
fields no entry sets keep their defaults. An entry with a ``requests`` list applies only to
those requests (a request ``r`` also covers its subrequests ``r/s``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from darwin_dra import DRIVER_NAME

API_VERSION = "darwin.snn.io/v1alpha1"
KIND = "PartitionConfig"

TIMESTEP_MIN_US = 10
TIMESTEP_MAX_US = 10_000
ROUTING_MODES = ("xy", "multicast-tree")
# Fields earlier versions accepted although they changed nothing in the engine: refused now,
# with the reason, so a config that relied on them fails loudly instead of doing nothing.
REMOVED: dict[str, str] = {
    "spikeEncoding": (
        "was removed: spikes travel to and from a partition only as address events (the "
        "engine's spike ports), so 'rate' never changed anything; delete the field"
    ),
    "isolation": (
        "was removed: a partition's cores are never shared except by a shared device, and the "
        "engine does not keep routes off other partitions' tiles, so the field never changed "
        "anything; delete it (use a shared device for sharing)"
    ),
}

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
    routing_mode: str = "xy"
    learning: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The wire form (what a user writes), complete with apiVersion and kind."""
        out: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND}
        for f in fields(self):
            if getattr(self, f.name) is not None:
                out[_WIRE_NAMES[f.name]] = getattr(self, f.name)
        return out


class _InvalidValueError(Exception):
    pass


def _timestep(value: Any) -> int:
    # bool is an int in Python but not in JSON; 100.0 is an integer in JSON Schema terms.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _InvalidValueError(f"must be an integer, got {_json_type(value)}")
    if not TIMESTEP_MIN_US <= value <= TIMESTEP_MAX_US:
        raise _InvalidValueError(
            f"must be between {TIMESTEP_MIN_US} and {TIMESTEP_MAX_US}, got {value}"
        )
    return value


def _one_of(choices: Sequence[str]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _InvalidValueError(f"must be a string, got {_json_type(value)}")
        if value not in choices:
            raise _InvalidValueError(
                f"must be one of {', '.join(map(repr, choices))}, got {value!r}"
            )
        return value

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _InvalidValueError(f"must be a boolean, got {_json_type(value)}")
    return value


# wire name -> (python field name, check returning the normalised value)
_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "timestepUs": ("timestep_us", _timestep),
    "routingMode": ("routing_mode", _one_of(ROUTING_MODES)),
    "learning": ("learning", _boolean),
}
_WIRE_NAMES = {py: wire for wire, (py, _) in _FIELDS.items()}


def _json_type(value: Any) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list() | tuple():
            return "array"
        case Mapping():
            return "object"
    return type(value).__name__


def parse_overrides(obj: Any, path: str = "parameters") -> dict[str, Any]:
    """Validate one config object; returns only the fields it sets (python names)."""
    if not isinstance(obj, Mapping):
        raise ConfigError(path, f"must be an object, got {_json_type(obj)}")
    if obj.get("apiVersion") != API_VERSION:
        raise ConfigError(
            f"{path}.apiVersion", f"must be {API_VERSION!r}, got {obj.get('apiVersion')!r}"
        )
    if obj.get("kind") != KIND:
        raise ConfigError(f"{path}.kind", f"must be {KIND!r}, got {obj.get('kind')!r}")
    out: dict[str, Any] = {}
    for key in sorted(obj, key=str):
        if key in ("apiVersion", "kind"):
            continue
        if key in REMOVED:
            raise ConfigError(f"{path}.{key}", REMOVED[key])
        if key not in _FIELDS:
            known = ", ".join(sorted(_FIELDS))
            raise ConfigError(f"{path}.{key}", f"unknown field (known: {known})")
        name, check = _FIELDS[key]
        try:
            out[name] = check(obj[key])
        except _InvalidValueError as exc:
            raise ConfigError(f"{path}.{key}", str(exc)) from None
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
