"""Times as the Kubernetes API writes them (pure)."""

from __future__ import annotations

from datetime import UTC, datetime


def micro_time(now: datetime) -> str:
    """metav1.MicroTime: RFC 3339 with exactly six fraction digits (Lease renewTime)."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seconds_time(now: datetime) -> str:
    """metav1.Time: RFC 3339 to the second (condition lastTransitionTime)."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
