"""The claim status contract, written once: read, change, write guarded by the
resourceVersion, re-read on Conflict. kubeapi.Kube and the in-memory claim source
(darwin_dra.testing.claims) both inherit it from ClaimStatusUpdates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from darwin_dra.kubeapi.errors import Conflict
from darwin_dra.kubetypes import Obj


class ClaimSource(Protocol):
    def get_claim(self, namespace: str, name: str) -> Obj: ...

    def replace_claim_status(self, claim: Obj) -> Obj: ...


class ClaimStatusUpdates:
    """``update_claim_status`` for a class that can get a claim and replace its status."""

    def update_claim_status(
        self: ClaimSource,
        namespace: str,
        name: str,
        change: Callable[[Obj], Obj | None],
        attempts: int = 5,
        current: Obj | None = None,
    ) -> Obj | None:
        """Read, apply ``change`` (returns the new claim or None for nothing to do), write.

        ``current``, a copy just read, saves the first read. Retries on Conflict with a fresh
        read, so entries other writers (other drivers, the scheduler) put in the status survive.
        """
        for attempt in range(attempts):
            if current is None or attempt > 0:
                current = self.get_claim(namespace, name)
            updated = change(current)
            if updated is None:
                return None
            try:
                return self.replace_claim_status(updated)
            except Conflict:
                if attempt == attempts - 1:
                    raise
        return None
