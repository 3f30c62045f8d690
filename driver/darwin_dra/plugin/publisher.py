"""Keeps this node's ResourceSlices on the API server equal to what resources/slices.py says.

``plan`` is the decision (pure): desired slices and the ones the server holds in, actions out.
``Publisher`` is the loop around it: list, act, back off while the server is away, and go
again whenever the desired content changes (health) or a periodic resync comes round.

Content is compared through a hash annotation of what we wrote, not field by field: the server
may normalise quantities and add fields, and a hash of our own input is immune to both. When
anything differs, every slice is rewritten under a new pool generation, because the scheduler
uses only the newest generation and needs all of its slices (resourceSliceCount).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import enum
import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from darwin_dra.kubeapi import Conflict, KubeApiError, NotFound, Unavailable
from darwin_dra.kubetypes import Obj

log = structlog.get_logger(__name__)

HASH_ANNOTATION = "darwin.snn.io/content-hash"


class Op(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class Action:
    op: Op
    name: str
    body: Obj | None = None  # create/update: the full object to send
    resource_version: str | None = None  # update/delete: the version we read


def content_hash(body: Obj) -> str:
    """Hash of a slice's spec without the pool generation (which changes on every publish)."""
    spec = copy.deepcopy(body["spec"])
    spec["pool"].pop("generation", None)
    raw = json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def _owners(obj: Obj) -> list[tuple[str, str, str]]:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return sorted((r.get("kind", ""), r.get("name", ""), r.get("uid", "")) for r in refs)


def _generation(obj: Obj) -> int:
    return int(obj.get("spec", {}).get("pool", {}).get("generation", 0))


def plan(desired: Sequence[Obj], existing: Sequence[Obj]) -> tuple[list[Action], int | None]:
    """The actions that make ``existing`` equal ``desired`` and the generation they publish
    (None: nothing to do). Creates and updates come before deletes, so the new generation is
    complete before the old one disappears."""
    have = {o["metadata"]["name"]: o for o in existing}
    want = {o["metadata"]["name"]: o for o in desired}
    hashes = {name: content_hash(body) for name, body in want.items()}
    generations = {_generation(o) for o in existing}
    in_sync = (
        set(have) == set(want)
        and len(generations) == 1
        and all(
            have[n].get("metadata", {}).get("annotations", {}).get(HASH_ANNOTATION) == hashes[n]
            and have[n]["spec"]["pool"].get("resourceSliceCount") == len(want)
            # the owner too: slices of a version that set none, or of a Node since recreated
            and _owners(have[n]) == _owners(want[n])
            for n in want
        )
    )
    if in_sync:
        return [], None
    # A generation above anything the pool has seen, even a half-written one.
    generation = max(generations, default=0) + 1
    actions: list[Action] = []
    for name in sorted(want):
        body = copy.deepcopy(want[name])
        body["spec"]["pool"]["generation"] = generation
        meta = body.setdefault("metadata", {})
        meta.setdefault("annotations", {})[HASH_ANNOTATION] = hashes[name]
        if name in have:
            version = have[name]["metadata"].get("resourceVersion")
            meta["resourceVersion"] = version
            actions.append(Action(Op.UPDATE, name, body, version))
        else:
            actions.append(Action(Op.CREATE, name, body))
    for name in sorted(set(have) - set(want)):
        actions.append(Action(Op.DELETE, name, None, have[name]["metadata"].get("resourceVersion")))
    return actions, generation


def backoff_delay(attempt: int, base_s: float, cap_s: float, jitter: float = 0.2) -> float:
    """Exponential delay for the attempt-th consecutive failure (0-based), with +-jitter so
    a restarted fleet does not hammer the server in step."""
    delay = min(cap_s, base_s * (2**attempt))
    return max(0.0, float(delay * (1 + random.uniform(-jitter, jitter))))


class SliceApi(Protocol):
    def list_slices(self, driver: str, node: str) -> list[Obj]: ...
    def create_slice(self, body: Obj) -> Obj: ...
    def update_slice(self, body: Obj) -> Obj: ...
    def delete_slice(self, name: str, resource_version: str | None = None) -> None: ...


@dataclass(frozen=True)
class PublishResult:
    generation: int | None  # None: already in sync
    actions: int
    slices: int
    # What the server holds after this publish, as it answered our writes: the next publish
    # can plan against it instead of listing (a list of 3,200 devices costs 0.6 s).
    stored: tuple[Obj, ...] = ()


def _apply_one(api: SliceApi, action: Action) -> Obj | None:
    """Performs one action; returns the object the server stored (None for a delete)."""
    if action.op is Op.CREATE:
        assert action.body is not None
        return api.create_slice(action.body)
    if action.op is Op.UPDATE:
        assert action.body is not None
        try:
            return api.update_slice(action.body)
        except NotFound:
            # Deleted behind our back since the list: create it instead.
            body = copy.deepcopy(action.body)
            body["metadata"].pop("resourceVersion", None)
            return api.create_slice(body)
    api.delete_slice(action.name, action.resource_version)
    return None


def apply(api: SliceApi, actions: Sequence[Action], workers: int = 8) -> dict[str, Obj]:
    """Writes in parallel (each call is a round trip; 64 chips make 70-odd slices), creates and
    updates first, deletes only once the new generation is complete. The first error raises.
    Returns the stored objects of the creates and updates, by name."""
    writes = [a for a in actions if a.op is not Op.DELETE]
    deletes = [a for a in actions if a.op is Op.DELETE]
    stored: dict[str, Obj] = {}
    for batch in (writes, deletes):
        if len(batch) <= 1 or workers <= 1:
            results = [(a, _apply_one(api, a)) for a in batch]
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
                futures = [(a, pool.submit(_apply_one, api, a)) for a in batch]
                results = [(a, f.result()) for a, f in futures]
        stored.update({a.name: obj for a, obj in results if obj is not None})
    return stored


def publish_once(
    api: SliceApi,
    driver: str,
    node: str,
    desired: Sequence[Obj],
    known: Sequence[Obj] | None = None,
) -> PublishResult:
    """List (unless ``known`` says what the server holds), plan, apply; blocking. Raises
    Conflict/Unavailable/KubeApiError for the caller; after one, call again without ``known``."""
    existing = list(known) if known is not None else api.list_slices(driver, node)
    actions, generation = plan(desired, existing)
    stored = apply(api, actions)
    gone = {a.name for a in actions if a.op is Op.DELETE}
    after = {o["metadata"]["name"]: o for o in existing if o["metadata"]["name"] not in gone}
    after.update(stored)
    return PublishResult(generation, len(actions), len(desired), tuple(after.values()))


class Publisher:
    """Publishes ``desired()`` whenever ``trigger()`` is called, every ``resync_s``, and again
    after failures with exponential backoff until the server takes it."""

    def __init__(
        self,
        api: SliceApi,
        driver: str,
        node: str,
        desired: Callable[[], list[Obj]],
        *,
        resync_s: float = 60.0,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        on_result: Callable[[PublishResult | None, Exception | None], None] | None = None,
    ) -> None:
        self._api = api
        self._driver = driver
        self._node = node
        self._desired = desired
        self._resync_s = resync_s
        self._base = backoff_base_s
        self._cap = backoff_cap_s
        self._on_result = on_result
        self._wake = asyncio.Event()
        self._log = log.bind(node=node, driver=driver)
        self.published = asyncio.Event()  # set after the first successful publish
        self.last: PublishResult | None = None

    def trigger(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        failures = 0
        known: tuple[Obj, ...] | None = None  # what our last writes left on the server
        while True:
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                desired = self._desired()
                # A trigger (health changed) plans against what we last wrote; a periodic
                # resync lists, so slices changed or deleted by others are repaired.
                result = await asyncio.to_thread(
                    publish_once,
                    self._api,
                    self._driver,
                    self._node,
                    desired,
                    known if woken else None,
                )
                known = result.stored
            except Conflict as exc:
                known = None
                # Someone wrote between our list and our write: list again at once.
                self._log.info("slice conflict, relisting", error=str(exc))
                self._report(None, exc)
                failures = 0
                continue
            except (Unavailable, KubeApiError) as exc:
                known = None
                delay = backoff_delay(failures, self._base, self._cap)
                failures += 1
                level = self._log.warning if isinstance(exc, Unavailable) else self._log.error
                level("slice publish failed", error=str(exc), retry_in_s=round(delay, 2))
                self._report(None, exc)
                await self._sleep(delay)
                continue
            failures = 0
            self.last = result
            self._report(result, None)
            if result.generation is not None:
                self._log.info(
                    "slices published",
                    generation=result.generation,
                    actions=result.actions,
                    slices=result.slices,
                )
            self.published.set()
            await self._sleep(self._resync_s)

    async def _sleep(self, seconds: float) -> None:
        # A trigger during a backoff wait publishes at once: fresh health beats waiting.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    def _report(self, result: PublishResult | None, exc: Exception | None) -> None:
        if self._on_result is not None:
            self._on_result(result, exc)
