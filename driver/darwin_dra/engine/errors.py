"""Exceptions for the engine's error codes; every one carries the engine's own message."""

from __future__ import annotations


class EngineError(RuntimeError):
    """Base of every error the C engine reports."""

    code = -8

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(EngineError, ValueError):
    code = -1


class NotFound(EngineError, LookupError):
    code = -2


class Conflict(EngineError):
    code = -3


class CapacityExceeded(EngineError):
    code = -4


class QueueOverflow(EngineError):
    """A queue or buffer was full: the excess was dropped and counted; `accepted` says how many
    items went in."""

    code = -5

    def __init__(self, message: str, accepted: int = 0) -> None:
        super().__init__(message)
        self.accepted = accepted


class OutOfMemory(EngineError, MemoryError):
    code = -6


class StateError(EngineError):
    code = -7


class InternalError(EngineError):
    code = -8


BY_CODE: dict[int, type[EngineError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        Conflict,
        CapacityExceeded,
        QueueOverflow,
        OutOfMemory,
        StateError,
        InternalError,
    )
}
