"""The claim's side of a prepare: reading the ResourceClaim and writing its status.devices.

``status.devices`` is informational (for people and controllers): a failed write is counted and
logged, never a failed prepare. What the entries say is decided in plan.py.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from darwin_dra.kubeapi import KubeApiError, NotFound, Unavailable
from darwin_dra.kubelet.preparer import ClaimRef
from darwin_dra.kubetime import seconds_time
from darwin_dra.kubetypes import Obj
from darwin_dra.plugin import earlybind, plan
from darwin_dra.plugin.node import Node
from darwin_dra.plugin.records import ClaimPlan, Prepared
from darwin_dra.resources.chips import ChipView


class ClaimStatusWriter(Protocol):
    """A change of a claim's status applied to ``current`` (a copy just read) or a fresh read
    (kubeapi.Kube)."""

    def update_claim_status(
        self,
        namespace: str,
        name: str,
        change: Callable[[Obj], Obj | None],
        *,
        current: Obj | None = None,
    ) -> Obj | None: ...


class ClaimSource(ClaimStatusWriter, Protocol):
    """What the plugin asks of the API server at prepare: a claim, and its status written."""

    def get_claim(self, namespace: str, name: str) -> Obj: ...


def now_time() -> str:
    """This moment as a condition's lastTransitionTime."""
    return seconds_time(datetime.datetime.now(datetime.UTC))


def fetch(claims: ClaimSource, ref: ClaimRef) -> Obj | str:
    """The claim the kubelet asks for, or the error its prepare answers with."""
    try:
        return claims.get_claim(ref.namespace, ref.name)
    except NotFound:
        return (
            f"ResourceClaim {ref.namespace}/{ref.name} not found: it was deleted before the "
            "node prepared it"
        )
    except Unavailable as exc:
        return f"cannot read ResourceClaim {ref.namespace}/{ref.name}: {exc}; will retry"
    except KubeApiError as exc:
        return f"cannot read ResourceClaim {ref.namespace}/{ref.name}: {exc}"


async def write_status(
    node: Node,
    claims: ClaimSource,
    claim: ClaimPlan,
    devices: Sequence[Prepared],
    views: Mapping[int, ChipView],
    fetched: Obj | None = None,
) -> None:
    if not devices:
        return
    now = now_time()
    entries = plan.status_entries(claim, devices, views, now)

    def change(body: Obj) -> Obj | None:
        if (body.get("metadata") or {}).get("uid") != claim.uid:
            return None  # recreated meanwhile: not ours to annotate
        # The routers' RoutesProgrammed: what the scheduler's PreBind waits for.
        routers = earlybind.router_entries(body, claim.pool, claim.routes, now)
        return plan.with_status(body, claim.pool, [*entries, *routers])

    try:
        await asyncio.to_thread(
            claims.update_claim_status, claim.namespace, claim.name, change, current=fetched
        )
        node.crash.reached("status-written")
    except KubeApiError as exc:
        # The status is for people and controllers; the pod can run without it.
        node.metrics.claim_status_errors.inc()
        node.log.warning(
            "could not write claim status",
            claim_uid=claim.uid,
            namespace=claim.namespace,
            error=str(exc),
        )
