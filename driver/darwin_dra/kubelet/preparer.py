"""The contract between the gRPC face and whatever prepares claims.

The DRA servicers only translate messages; the plugin implements :class:`Preparer` with the
checkpoint, CDI and engine behind it. Plain values here keep protobuf out of the plugin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ClaimRef:
    """What the kubelet tells about a claim: identity only, never its allocation."""

    namespace: str
    uid: str
    name: str


@dataclass(frozen=True)
class PreparedDevice:
    request_names: tuple[str, ...]
    pool_name: str
    device_name: str
    cdi_device_ids: tuple[str, ...]
    # Set for devices allocated from consumable capacity; v1beta1 cannot carry it.
    share_id: str | None = None


@dataclass(frozen=True)
class PrepareResult:
    devices: tuple[PreparedDevice, ...] = ()
    error: str | None = None


class Preparer(Protocol):
    async def prepare(self, claims: Sequence[ClaimRef]) -> Mapping[str, PrepareResult]:
        """Prepare every claim; the answer is keyed by claim UID."""
        ...

    async def unprepare(self, claims: Sequence[ClaimRef]) -> Mapping[str, str | None]:
        """Release every claim; keyed by claim UID, the value an error or None."""
        ...
