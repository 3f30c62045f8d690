"""Exceptions for the engine's error codes; every one carries the engine's own message.

The codes themselves are the C header's (``enum dk_error`` in native/include/darwin_engine.h):
``BY_NAME`` pairs each header name with its exception, and engine/native.py, which reads the
values from the compiled module, binds them (``bind_codes``) when the engine package loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class EngineError(RuntimeError):
    """Base of every error the C engine reports; ``code`` is the header's value."""

    code: ClassVar[int]

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(EngineError, ValueError):
    """DK_E_INVALID: an argument is malformed or out of range."""


class NotFound(EngineError, LookupError):
    """DK_E_NOT_FOUND: no such chip, partition or object."""


class Conflict(EngineError):
    """DK_E_CONFLICT: an overlapping partition, a network already loaded, ..."""


class CapacityExceeded(EngineError):
    """DK_E_CAPACITY: exceeds a hardware budget (neurons, synapses, cores)."""


class QueueOverflow(EngineError):
    """DK_E_OVERFLOW: a queue or buffer was full; the excess was dropped and counted.
    `accepted` says how many items went in."""

    def __init__(self, message: str, accepted: int = 0) -> None:
        super().__init__(message)
        self.accepted = accepted


class OutOfMemory(EngineError, MemoryError):
    """DK_E_NOMEM: an allocation failed."""


class StateError(EngineError):
    """DK_E_STATE: wrong state for the call (no network loaded, failed hardware)."""


class InternalError(EngineError):
    """DK_E_INTERNAL: a bug in the engine."""


# The header's name of each error code and its exception: the one place they are paired.
BY_NAME: Mapping[str, type[EngineError]] = {
    "DK_E_INVALID": InvalidArgument,
    "DK_E_NOT_FOUND": NotFound,
    "DK_E_CONFLICT": Conflict,
    "DK_E_CAPACITY": CapacityExceeded,
    "DK_E_OVERFLOW": QueueOverflow,
    "DK_E_NOMEM": OutOfMemory,
    "DK_E_STATE": StateError,
    "DK_E_INTERNAL": InternalError,
}

# The exception of each error code, filled by bind_codes from the header's values.
BY_CODE: dict[int, type[EngineError]] = {}


def bind_codes(values: Mapping[str, int]) -> None:
    """Gives every exception the value of its code, from the header's ``enum dk_error`` (name
    to value, DK_OK included), refusing a code without an exception and the reverse."""
    failures = {name for name, value in values.items() if value < 0} ^ set(BY_NAME)
    if failures:
        raise RuntimeError(f"engine error codes without a pair in engine.errors: {failures}")
    BY_CODE.clear()
    for name, cls in BY_NAME.items():
        cls.code = values[name]
        BY_CODE[values[name]] = cls
    if len(BY_CODE) != len(BY_NAME):
        raise RuntimeError(f"engine error codes are not distinct: {dict(values)}")
    EngineError.code = InternalError.code
