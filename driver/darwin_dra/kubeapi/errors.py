"""The client's exceptions translated: every call goes through ``call``, so no caller ever sees
the kubernetes client's types."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

import urllib3
from kubernetes.client.exceptions import ApiException

T = TypeVar("T")


class KubeApiError(Exception):
    """The API server refused a request; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotFound(KubeApiError):
    pass


class Conflict(KubeApiError):
    """Stale resourceVersion on update, or the object already exists on create."""


class Unavailable(KubeApiError):
    """No usable answer: connection refused or reset, timeout, 429 or a 5xx. Retry later."""


class ConfigError(KubeApiError):
    """No kubeconfig and not running in a pod, or a kubeconfig that cannot be used."""


def _message(exc: ApiException) -> str:
    try:
        detail = json.loads(exc.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        detail = ""
    return f"HTTP {exc.status} {exc.reason}: {detail}".strip()


def call(fn: Callable[[], T]) -> T:
    """Run one client call, translating its exceptions."""
    try:
        return fn()
    except ApiException as exc:
        status = int(exc.status or 0)
        text = _message(exc)
        if status == 404:
            raise NotFound(text, status) from None
        if status == 409:
            raise Conflict(text, status) from None
        if status == 429 or status >= 500 or status == 0:
            raise Unavailable(text, status) from None
        raise KubeApiError(text, status) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        # MaxRetryError, ProtocolError, timeouts, connection refused: the server is away.
        raise Unavailable(f"API server unreachable: {type(exc).__name__}: {exc}") from None
