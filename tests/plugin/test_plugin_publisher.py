"""plugin/publisher.py: the pure plan, and the loop against an in-memory API server."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from darwin_dra.kubeapi import Conflict, NotFound, Unavailable
from darwin_dra.kubetypes import Obj
from darwin_dra.plugin.publisher import (
    HASH_ANNOTATION,
    Op,
    Publisher,
    backoff_delay,
    plan,
    publish_once,
)


def _slice(name: str, count: int, value: str = "x", generation: int = 1) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {
            "driver": "darwin.snn.io",
            "nodeName": "n",
            "pool": {"name": "n", "generation": generation, "resourceSliceCount": count},
            "devices": [{"name": value}],
        },
    }


class FakeServer:
    """Stores slices like the API server: resourceVersions, conflicts, NotFound."""

    def __init__(self) -> None:
        self.objects: dict[str, Obj] = {}
        self.version = 0
        self.calls: list[str] = []
        self.failures: list[Exception] = []

    def _maybe_fail(self) -> None:
        if self.failures:
            raise self.failures.pop(0)

    def _store(self, body: Obj) -> Obj:
        self.version += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.version)
        self.objects[body["metadata"]["name"]] = body
        return body

    def list_slices(self, driver: str, node: str) -> list[Obj]:
        self.calls.append("list")
        self._maybe_fail()
        return [copy.deepcopy(o) for o in self.objects.values()]

    def create_slice(self, body: Obj) -> Obj:
        self.calls.append(f"create {body['metadata']['name']}")
        if body["metadata"]["name"] in self.objects:
            raise Conflict("exists", 409)
        return self._store(body)

    def update_slice(self, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        self.calls.append(f"update {name}")
        if name not in self.objects:
            raise NotFound("gone", 404)
        if self.objects[name]["metadata"]["resourceVersion"] != body["metadata"]["resourceVersion"]:
            raise Conflict("stale", 409)
        return self._store(body)

    def delete_slice(self, name: str, resource_version: str | None = None) -> None:
        self.calls.append(f"delete {name}")
        self.objects.pop(name, None)


def test_first_publish_creates_every_slice_at_generation_one() -> None:
    actions, generation = plan([_slice("a", 2), _slice("b", 2)], [])
    assert generation == 1
    assert [(a.op, a.name) for a in actions] == [(Op.CREATE, "a"), (Op.CREATE, "b")]
    assert all(a.body and a.body["metadata"]["annotations"][HASH_ANNOTATION] for a in actions)


def test_in_sync_means_no_action_even_when_the_server_normalised_fields() -> None:
    server = FakeServer()
    desired = [_slice("a", 1)]
    publish_once(server, "d", "n", desired)
    stored = server.objects["a"]
    stored["spec"]["devices"][0]["extra"] = "defaulted by the server"
    assert plan(desired, list(server.objects.values())) == ([], None)


def test_a_new_owner_rewrites_slices_whose_content_is_unchanged() -> None:
    # Slices of a version that set no owner, then of a Node deleted and registered again.
    server = FakeServer()
    publish_once(server, "d", "n", [_slice("a", 1)])
    owned = _slice("a", 1)
    owned["metadata"]["ownerReferences"] = [{"kind": "Node", "name": "n", "uid": "u1"}]
    actions, generation = plan([owned], list(server.objects.values()))
    assert ([(a.op, a.name) for a in actions], generation) == ([(Op.UPDATE, "a")], 2)
    publish_once(server, "d", "n", [owned])
    assert plan([owned], list(server.objects.values())) == ([], None)
    again = copy.deepcopy(owned)
    again["metadata"]["ownerReferences"][0]["uid"] = "u2"
    assert plan([again], list(server.objects.values()))[1] == 3


def test_changed_content_rewrites_all_slices_under_a_new_generation_and_deletes_extras() -> None:
    server = FakeServer()
    publish_once(server, "d", "n", [_slice("a", 3), _slice("b", 3), _slice("c", 3)])
    server.calls.clear()
    result = publish_once(server, "d", "n", [_slice("a", 2, "changed"), _slice("b", 2)])
    assert result.generation == 2
    # writes go out in parallel; the delete waits until the new generation is complete
    assert server.calls[0] == "list"
    assert sorted(server.calls[1:3]) == ["update a", "update b"]
    assert server.calls[3:] == ["delete c"]
    assert {o["spec"]["pool"]["generation"] for o in server.objects.values()} == {2}


def test_publish_against_known_state_skips_the_list_and_stays_exact() -> None:
    server = FakeServer()
    first = publish_once(server, "d", "n", [_slice("a", 3), _slice("b", 3), _slice("c", 3)])
    server.calls.clear()
    second = publish_once(
        server, "d", "n", [_slice("a", 2, "changed"), _slice("b", 2)], known=first.stored
    )
    assert "list" not in server.calls
    assert second.generation == 2
    assert {o["metadata"]["name"]: o for o in second.stored} == server.objects
    # and the state it returns is again good for the next round: nothing to do
    server.calls.clear()
    third = publish_once(
        server, "d", "n", [_slice("a", 2, "changed"), _slice("b", 2)], known=second.stored
    )
    assert (third.generation, server.calls) == (None, [])


def test_a_half_written_generation_is_superseded() -> None:
    existing = [_slice("a", 2, generation=4), _slice("b", 2, generation=3)]
    for o, v in zip(existing, ("1", "2"), strict=True):
        o["metadata"]["resourceVersion"] = v
    actions, generation = plan([_slice("a", 2), _slice("b", 2)], existing)
    assert generation == 5
    assert [a.resource_version for a in actions] == ["1", "2"]


def test_update_of_a_slice_deleted_behind_our_back_creates_it() -> None:
    server = FakeServer()
    publish_once(server, "d", "n", [_slice("a", 1)])
    existing = list(server.objects.values())
    server.objects.clear()
    actions, _ = plan([_slice("a", 1, "new")], existing)
    from darwin_dra.plugin.publisher import apply

    apply(server, actions)
    assert server.objects["a"]["spec"]["devices"] == [{"name": "new"}]


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    delays = [backoff_delay(i, 0.5, 8.0, jitter=0) for i in range(7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert all(0.4 <= backoff_delay(0, 0.5, 8.0) <= 0.6 for _ in range(50))


def test_loop_retries_while_the_server_is_away_and_republishes_on_trigger() -> None:
    async def scenario() -> None:
        server = FakeServer()
        server.failures = [Unavailable("down"), Unavailable("down"), Conflict("race")]
        content = {"value": "v1"}
        results: list[Any] = []
        pub = Publisher(
            server,
            "d",
            "n",
            lambda: [_slice("a", 1, content["value"])],
            resync_s=60,
            backoff_base_s=0.01,
            backoff_cap_s=0.02,
            on_result=lambda r, e: results.append(type(e).__name__ if e else r.generation),
        )
        task = asyncio.create_task(pub.run())
        await asyncio.wait_for(pub.published.wait(), 5)
        assert results == ["Unavailable", "Unavailable", "Conflict", 1]
        content["value"] = "v2"
        pub.trigger()
        for _ in range(200):
            if server.objects["a"]["spec"]["devices"] == [{"name": "v2"}]:
                break
            await asyncio.sleep(0.01)
        assert server.objects["a"]["spec"]["pool"]["generation"] == 2
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
