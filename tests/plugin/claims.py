"""ResourceClaim bodies as the API server returns them, and the in-memory claim store
(darwin_dra.testing.claims) the driver's tests read them from."""

from __future__ import annotations

from typing import Any

from darwin_dra import DRIVER_NAME
from darwin_dra.kubetypes import Obj
from darwin_dra.testing.claims import MemoryClaims


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


# Just enough of kubeapi.Kube for the driver: get and status update with versions.
ClaimStore = MemoryClaims
