"""ResourceClaim bodies as the API server returns them, and an in-memory claim store."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from darwin_dra import DRIVER_NAME
from darwin_dra.kubeapi import Conflict, NotFound
from darwin_dra.kubetypes import Obj


def result(device: str, pool: str, request: str = "r", **extra: Any) -> Obj:
    return {"request": request, "driver": DRIVER_NAME, "pool": pool, "device": device, **extra}


def opaque(source: str, params: Obj, requests: list[str] | None = None) -> Obj:
    entry: Obj = {"source": source, "opaque": {"driver": DRIVER_NAME, "parameters": params}}
    if requests:
        entry["requests"] = requests
    return entry


def claim(uid: str, results: list[Obj], config: list[Obj] | None = None, ns: str = "ns") -> Obj:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": f"c-{uid}", "namespace": ns, "uid": uid, "resourceVersion": "1"},
        "spec": {},
        "status": {"allocation": {"devices": {"results": results, "config": config or []}}},
    }


class ClaimStore:
    """Just enough of kubeapi.Kube for the driver: get and status update with versions."""

    def __init__(self, *claims: Obj) -> None:
        self.claims = {(c["metadata"]["namespace"], c["metadata"]["name"]): c for c in claims}
        self.status_writes = 0
        self.conflicts = 0
        self.fail_status: Exception | None = None

    def add(self, *claims: Obj) -> None:
        for c in claims:
            self.claims[(c["metadata"]["namespace"], c["metadata"]["name"])] = c

    def get_claim(self, namespace: str, name: str) -> Obj:
        try:
            return copy.deepcopy(self.claims[(namespace, name)])
        except KeyError:
            raise NotFound(f"{namespace}/{name} not found", 404) from None

    def update_claim_status(
        self,
        namespace: str,
        name: str,
        change: Callable[[Obj], Obj | None],
        *,
        current: Obj | None = None,
    ) -> Obj | None:
        # The plugin's ClaimSource, as kubeapi.Kube keeps it: a given copy is tried first, a
        # conflict re-reads (five tries).
        if self.fail_status is not None:
            raise self.fail_status
        for attempt in range(5):
            if current is None or attempt > 0:
                current = self.get_claim(namespace, name)
            new = change(copy.deepcopy(current))
            if new is None:
                return None
            stored = self.claims[(namespace, name)]["metadata"]["resourceVersion"]
            if new["metadata"]["resourceVersion"] != stored:
                self.conflicts += 1
                continue
            new = copy.deepcopy(new)
            new["metadata"]["resourceVersion"] = str(int(stored) + 1)
            self.claims[(namespace, name)] = new
            self.status_writes += 1
            return new
        raise Conflict("stale", 409)
