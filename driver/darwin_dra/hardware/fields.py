"""Typed readers for fields of a parsed YAML mapping, each failing with the field's path."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from darwin_dra.hardware.errors import HardwareFileError


def load_yaml(path: Path, kind: str) -> Mapping[str, Any]:
    """Reads a YAML document of `kind` (apiVersion darwin.snn.io/v1alpha1)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise HardwareFileError(str(path), "", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise HardwareFileError(
            str(path), "", f"not UTF-8 text (byte {exc.start}): is this the right file?"
        ) from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise HardwareFileError(str(path), "", f"not valid YAML{at}: {problem}") from exc
    except RecursionError:
        raise HardwareFileError(
            str(path), "", f"nested too deeply to be a file of kind {kind}"
        ) from None
    if not isinstance(doc, Mapping):
        raise HardwareFileError(str(path), "", "the document must be a mapping")
    reader = Fields(str(path), doc)
    if reader.string("apiVersion") != "darwin.snn.io/v1alpha1":
        raise HardwareFileError(str(path), "apiVersion", "must be darwin.snn.io/v1alpha1")
    if reader.string("kind") != kind:
        raise HardwareFileError(str(path), "kind", f"must be {kind}")
    return doc


class Fields:
    """Reads fields of one mapping; `prefix` makes error paths like nodes[0].fabrics[1].id."""

    def __init__(self, path: str, data: Any, prefix: str = "") -> None:
        self.path = path
        self.prefix = prefix
        if not isinstance(data, Mapping):
            raise HardwareFileError(path, prefix or "(document)", "must be a mapping")
        self.data: Mapping[str, Any] = data

    def name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def fail(self, key: str, reason: str) -> HardwareFileError:
        return HardwareFileError(self.path, self.name(key), reason)

    def _get(self, key: str, default: Any) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            raise self.fail(key, "is required")
        return default

    def string(self, key: str, default: Any = None, max_len: int = 63) -> str:
        value = self._get(key, _REQUIRED if default is None else default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        if len(value) > max_len:
            raise self.fail(key, f"must be at most {max_len} characters")
        return value

    def integer(self, key: str, lo: int, hi: int, default: int | None = None) -> int:
        value = self._get(key, _REQUIRED if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, got {value!r}")
        if not lo <= value <= hi:
            raise self.fail(key, f"must be between {lo} and {hi}, got {value}")
        return value

    def number(self, key: str, lo: float, hi: float) -> float:
        value = self._get(key, _REQUIRED)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"must be a number, got {value!r}")
        if not math.isfinite(value) or not lo <= value <= hi:
            raise self.fail(key, f"must be between {lo:g} and {hi:g}, got {value}")
        return float(value)

    def boolean(self, key: str, default: bool | None = None) -> bool:
        value = self._get(key, _REQUIRED if default is None else default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def mapping(self, key: str) -> Fields:
        return Fields(self.path, self._get(key, _REQUIRED), self.name(key))

    def items(self, key: str, min_len: int = 1) -> list[Fields]:
        value = self._get(key, _REQUIRED)
        if not isinstance(value, list):
            raise self.fail(key, "must be a list")
        if len(value) < min_len:
            raise self.fail(key, f"must hold at least {min_len} entries")
        return [Fields(self.path, v, f"{self.name(key)}[{i}]") for i, v in enumerate(value)]

    def strings(self, key: str) -> tuple[str, ...]:
        value = self._get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of strings")
        return tuple(value)

    def reject_unknown(self, known: set[str]) -> None:
        for key in self.data:
            if key not in known:
                raise self.fail(str(key), f"is not a known field (expected one of {sorted(known)})")


_REQUIRED: Any = object()
