"""An in-memory ResourceClaim source: what the plugin's driver needs of kubeapi.Kube (create,
get, status writes guarded by the resourceVersion, delete), for the unit tests and for
`darwin-dra bench plugin` without --kubeconfig. The status contract itself is kubeapi's
(kubeapi.claims.ClaimStatusUpdates), run against this store."""

from __future__ import annotations

import copy
import uuid

from darwin_dra.kubeapi.claims import ClaimStatusUpdates
from darwin_dra.kubeapi.errors import Conflict, NotFound
from darwin_dra.kubetypes import Obj


class MemoryClaims(ClaimStatusUpdates):
    """Claims by (namespace, name); every write bumps the resourceVersion, a write with a stale
    one is a Conflict (counted in ``conflicts``). ``fail_status``, when set, is raised by every
    status write, as a broken API server would. Status updates are kubeapi's contract
    (ClaimStatusUpdates), as the real client runs it."""

    def __init__(self, *claims: Obj) -> None:
        self.claims: dict[tuple[str, str], Obj] = {}
        self.status_writes = 0
        self.conflicts = 0
        self.fail_status: Exception | None = None
        self.add(*claims)

    def add(self, *claims: Obj) -> None:
        for c in claims:
            self.claims[(c["metadata"]["namespace"], c["metadata"]["name"])] = c

    def create_claim(self, namespace: str, body: Obj) -> Obj:
        body = copy.deepcopy(body)
        body["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()), resourceVersion="1")
        self.add(body)
        return copy.deepcopy(body)

    def get_claim(self, namespace: str, name: str) -> Obj:
        try:
            return copy.deepcopy(self.claims[(namespace, name)])
        except KeyError:
            raise NotFound(f"{namespace}/{name} not found", 404) from None

    def replace_claim_status(self, claim: Obj) -> Obj:
        if self.fail_status is not None:
            raise self.fail_status
        key = (claim["metadata"]["namespace"], claim["metadata"]["name"])
        if key not in self.claims:
            raise NotFound(f"{key[0]}/{key[1]} not found", 404)
        stored = self.claims[key]["metadata"]["resourceVersion"]
        if claim["metadata"]["resourceVersion"] != stored:
            self.conflicts += 1
            raise Conflict("stale", 409)
        new = copy.deepcopy(claim)
        new["metadata"]["resourceVersion"] = str(int(stored) + 1)
        self.claims[key] = new
        self.status_writes += 1
        return copy.deepcopy(new)

    def delete_claim(self, namespace: str, name: str) -> None:
        self.claims.pop((namespace, name), None)
