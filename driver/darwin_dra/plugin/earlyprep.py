"""The side effects of preparing before the pod binds (decisions: earlybind.py).

A thread lists and watches every ResourceClaim (the API server has no field selector for an
allocation's pool) and hands them to the event loop, which prepares each claim whose router in
this node's pool awaits its binding (``Driver.prepare_early``: partitions, then routes, then
``status.devices`` with RoutesProgrammed), writes RoutesFailed with the reason when that fails,
and unprepares what it prepared early once the allocation is gone without the kubelet having
asked for the claim. Which claims it prepared early is kept in ``early-prepared.json`` in the
state directory, written before the prepare, so a restarted plugin still undoes them.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import structlog

from darwin_dra import kubeapi
from darwin_dra.atomicfile import atomic_write
from darwin_dra.kubelet.preparer import ClaimRef
from darwin_dra.kubetypes import Obj
from darwin_dra.plugin import earlybind
from darwin_dra.plugin.claimstatus import ClaimStatusWriter, now_time
from darwin_dra.plugin.driver import Driver

log = structlog.get_logger(__name__)

EARLY_FILE = "early-prepared.json"


class ClaimWatch(ClaimStatusWriter, Protocol):
    def list_claims(self) -> tuple[list[Obj], str]: ...
    def watch_claims(self, resource_version: str, timeout_s: int) -> Iterator[tuple[str, Obj]]: ...


def _ref(claim: Obj) -> ClaimRef:
    meta = claim.get("metadata") or {}
    return ClaimRef(str(meta.get("namespace", "")), str(meta.get("uid", "")), str(meta.get("name")))


class EarlyPreparer:
    def __init__(
        self,
        driver: Driver,
        kube: ClaimWatch,
        pool: str,
        state_dir: Path,
        *,
        watch_s: int = 30,
        resync_s: float = 60.0,
    ) -> None:
        self.driver, self.kube, self.pool = driver, kube, pool
        self.path = state_dir / EARLY_FILE
        self.watch_s, self.resync_s = watch_s, resync_s
        self.early: dict[str, ClaimRef] = self._load()
        self.kubelet_asked: set[str] = set()
        driver.on_kubelet_prepare = self._kubelet_prepares

    # ---- the record of early prepares ----
    def _load(self) -> dict[str, ClaimRef]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("early prepares unreadable; starting without", error=str(exc))
            return {}
        return {
            uid: ClaimRef(str(v.get("namespace", "")), uid, str(v.get("name", "")))
            for uid, v in (raw.get("claims") or {}).items()
        }

    def _save(self) -> None:
        body = {
            "claims": {u: {"namespace": r.namespace, "name": r.name} for u, r in self.early.items()}
        }
        atomic_write(self.path, json.dumps(body, sort_keys=True).encode())

    def _kubelet_prepares(self, claims: Sequence[ClaimRef]) -> None:
        """The kubelet asks for these claims: from now on it unprepares them, not us."""
        self.kubelet_asked.update(c.uid for c in claims)
        if any(c.uid in self.early for c in claims):
            for c in claims:
                self.early.pop(c.uid, None)
            self._save()

    # ---- the watch (a thread) ----
    def _produce(
        self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any], stop: threading.Event
    ) -> None:
        def put(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        while not stop.is_set():
            try:
                claims, version = self.kube.list_claims()
                put(("LIST", claims))
                deadline = time.monotonic() + self.resync_s
                while not stop.is_set() and time.monotonic() < deadline:
                    for kind, claim in self.kube.watch_claims(version, self.watch_s):
                        meta = claim.get("metadata") or {}
                        version = str(meta.get("resourceVersion", version))
                        put((kind, claim))
                        if stop.is_set():
                            return
            except kubeapi.KubeApiError as exc:
                log.warning("claim watch failed; listing again", error=str(exc), status=exc.status)
                stop.wait(1.0)
            except Exception as exc:  # the loop must go on: a dead watch holds every binding
                log.error("claim watch crashed; listing again", error=str(exc))
                stop.wait(1.0)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        producer = threading.Thread(
            target=self._produce, args=(loop, queue, stop), name="early-prepare", daemon=True
        )
        producer.start()
        try:
            while True:
                kind, item = await queue.get()
                try:
                    await self.handle(kind, item)
                except Exception as exc:
                    log.error("early prepare failed", error=str(exc), event=kind)
        finally:
            stop.set()

    # ---- the decisions, acted on ----
    async def handle(self, kind: str, item: Any) -> None:
        if kind == "LIST":
            claims = {str((c.get("metadata") or {}).get("uid")): c for c in item}
            for uid in earlybind.to_undo(list(self.early), claims, self.pool):
                await self._undo(self.early[uid])
            for claim in claims.values():
                await self._claim("MODIFIED", claim)
        else:
            await self._claim(kind, item)

    async def _claim(self, kind: str, claim: Obj) -> None:
        uid = str((claim.get("metadata") or {}).get("uid"))
        if kind == "DELETED":
            if uid in self.early:
                await self._undo(self.early[uid])
        elif earlybind.awaiting_routes(claim, self.pool):
            await self._prepare(claim)
        elif uid in self.early and not earlybind.allocated_here(claim, self.pool):
            await self._undo(self.early[uid])

    async def _prepare(self, claim: Obj) -> None:
        ref = _ref(claim)
        bound = log.bind(claim_uid=ref.uid, namespace=ref.namespace, claim=ref.name)
        if ref.uid not in self.kubelet_asked and ref.uid not in self.early:
            self.early[ref.uid] = ref
            self._save()  # before the prepare: a crash in it still leaves a record to undo
        result = (await self.driver.prepare_early([ref]))[ref.uid]
        if result.error is None:
            self.driver.metrics.early_total.labels("programmed").inc()
            bound.info("prepared before binding: routes programmed")
            return
        self.driver.metrics.early_total.labels("failed").inc()
        if self.early.pop(ref.uid, None) is not None:
            self._save()  # a failed prepare is rolled back: nothing left to undo
        error = result.error
        bound.warning("prepared before binding: failed; failing the binding", error=error)

        def change(current: Obj) -> Obj | None:
            return earlybind.with_router_failure(current, ref.uid, self.pool, error, now_time())

        try:
            await asyncio.to_thread(self.kube.update_claim_status, ref.namespace, ref.name, change)
        except kubeapi.NotFound:
            pass
        except kubeapi.KubeApiError as exc:
            bound.warning("could not write RoutesFailed; retried on the next event", error=str(exc))

    async def _undo(self, ref: ClaimRef) -> None:
        results = await self.driver.unprepare([ref])
        error = results.get(ref.uid)
        bound = log.bind(claim_uid=ref.uid, namespace=ref.namespace, claim=ref.name)
        if error:
            bound.warning("undoing an early prepare failed; retried at the next list", error=error)
            return
        self.driver.metrics.early_total.labels("undone").inc()
        self.early.pop(ref.uid, None)
        self._save()
        bound.info("allocation gone before the pod bound: early prepare undone")
