from __future__ import annotations

import copy

from darwin_dra.controller.deviceclasses import device_classes
from darwin_dra.controller.reconcile import (
    Action,
    matches,
    plan_classes,
    plan_slices,
    reconcile_once,
)
from darwin_dra.kubetypes import Obj
from darwin_dra.quantity import quantity_or_none as quantity
from darwin_dra.resources.fabric import Fabric, FabricSettings, fabric_slice


def _stored(obj: Obj, version: str = "1") -> Obj:
    """What the server hands back: our fields plus its own."""
    out = copy.deepcopy(obj)
    out["metadata"] |= {"resourceVersion": version, "uid": "u", "generation": 1}
    return out


def _node_slice(name: str, node: str, driver: str = "darwin.snn.io") -> Obj:
    return {
        "metadata": {"name": name, "resourceVersion": "3"},
        "spec": {"driver": driver, "nodeName": node, "pool": {"name": node, "generation": 1}},
    }


def test_quantities_compare_by_value_as_the_server_rewrites_them() -> None:
    assert quantity("1k") == quantity("1000") == quantity("1e3")
    assert quantity("1Ki") == 1024
    assert quantity("500m") == quantity("0.5")
    assert quantity("1.4.2") is None
    assert matches({"value": "250000"}, {"value": "250k"})
    assert not matches({"value": "1"}, {"value": "1", "extra": "a field we no longer set"})
    assert not matches({"value": "250000"}, {"value": "25k"})
    assert not matches({"string": "1.4.2"}, {"string": "1.4.3"})
    assert not matches(["a", "b"], ["a"])


def test_classes_missing_are_created_and_an_unchanged_cluster_needs_nothing() -> None:
    desired = device_classes()
    created = plan_classes(desired, [])
    assert [(a.verb, a.name) for a in created] == [
        ("create", c["metadata"]["name"]) for c in desired
    ]
    assert plan_classes(desired, [_stored(c) for c in desired]) == []


def test_a_drifted_class_is_replaced_at_the_version_read() -> None:
    desired = device_classes()
    observed = [_stored(c, version="7") for c in desired]
    observed[0]["spec"]["selectors"] = [{"cel": {"expression": 'device.driver == "x"'}}]
    [action] = plan_classes(desired, observed)
    assert (action.verb, action.name, action.why) == (
        "update",
        desired[0]["metadata"]["name"],
        "drifted",
    )
    assert action.body is not None
    assert action.body["metadata"]["resourceVersion"] == "7"
    assert action.body["spec"] == desired[0]["spec"]


def test_a_field_we_stopped_setting_counts_as_drift() -> None:
    desired = device_classes()
    observed = [_stored(c) for c in desired]
    observed[0]["spec"]["extendedResourceName"] = "darwin.snn.io/other"
    assert [a.name for a in plan_classes(desired, observed)] == [desired[0]["metadata"]["name"]]


def test_classes_we_own_and_no_longer_want_are_deleted_others_left_alone() -> None:
    ours = _stored(device_classes()[0])
    theirs = {"metadata": {"name": "gpu.example.com", "resourceVersion": "1"}, "spec": {}}
    actions = plan_classes([], [ours, theirs])
    assert actions == [
        Action("delete", "DeviceClass", ours["metadata"]["name"], why="no longer desired")
    ]


def test_an_unowned_class_with_our_name_is_taken_over() -> None:
    desired = device_classes()[:1]
    foreign = _stored(desired[0])
    foreign["metadata"]["labels"] = {}
    [action] = plan_classes(desired, [foreign])
    assert (action.verb, action.why) == ("update", "taking over an unowned class")


def _fabric(keps: int = 1000) -> Obj:
    return fabric_slice(Fabric("w0", ("n1", "n2"), 2), FabricSettings(keps=keps))


def test_a_changed_fabric_slice_gets_the_next_pool_generation() -> None:
    stored = _stored(_fabric(1000), version="9")
    stored["spec"]["pool"]["generation"] = 4
    stored["spec"]["devices"][0]["capacity"]["keps"]["value"] = "1k"  # canonical form
    assert plan_slices([_fabric(1000)], [stored], {"n1"}) == []
    [action] = plan_slices([_fabric(2000)], [stored], {"n1"})
    assert action.verb == "update"
    assert action.body is not None
    assert action.body["spec"]["pool"]["generation"] == 5
    assert action.body["metadata"]["resourceVersion"] == "9"


def test_slices_of_gone_nodes_are_deleted_but_not_other_drivers_or_an_empty_node_list() -> None:
    observed = [
        _node_slice("a", "n1"),
        _node_slice("b", "gone"),
        _node_slice("c", "gone", driver="gpu.example.com"),
        _stored(_fabric()),
    ]
    actions = plan_slices([_fabric()], observed, {"n1", "n2"})
    assert [(a.verb, a.name, a.why) for a in actions] == [("delete", "b", "node gone is gone")]
    assert plan_slices([_fabric()], observed, set()) == []


def test_an_owned_fabric_slice_no_longer_in_the_inventory_is_deleted() -> None:
    actions = plan_slices([], [_stored(_fabric())], {"n1"})
    assert [(a.verb, a.name) for a in actions] == [("delete", "darwin-fabric-w0")]


class FakeApi:
    """An in-memory API server: stores what is written, adds resourceVersions and quantity
    canonical forms, so a second pass sees what a real server would hand back."""

    def __init__(self, nodes: set[str]) -> None:
        self.classes: dict[str, Obj] = {}
        self.slices: dict[str, Obj] = {}
        self.nodes = nodes
        self.writes = 0
        self.version = 0

    def _store(self, table: dict[str, Obj], body: Obj) -> Obj:
        self.writes += 1
        self.version += 1
        obj = copy.deepcopy(body)
        obj["metadata"]["resourceVersion"] = str(self.version)
        for dev in obj.get("spec", {}).get("devices", []):
            for cap in dev.get("capacity", {}).values():
                if cap["value"].endswith("000"):
                    cap["value"] = cap["value"][:-3] + "k"
        table[obj["metadata"]["name"]] = obj
        return obj

    def list_device_classes(self, label_selector: str = "") -> list[Obj]:
        return list(self.classes.values())

    def create_device_class(self, body: Obj) -> Obj:
        return self._store(self.classes, body)

    def replace_device_class(self, body: Obj) -> Obj:
        return self._store(self.classes, body)

    def delete_device_class(self, name: str) -> None:
        self.classes.pop(name, None)

    def list_driver_slices(self, driver: str) -> list[Obj]:
        return [s for s in self.slices.values() if s["spec"]["driver"] == driver]

    def create_slice(self, body: Obj) -> Obj:
        return self._store(self.slices, body)

    def update_slice(self, body: Obj) -> Obj:
        return self._store(self.slices, body)

    def delete_slice(self, name: str, resource_version: str | None = None) -> None:
        self.slices.pop(name, None)

    def list_node_names(self) -> set[str]:
        return self.nodes


def test_reconcile_converges_and_then_writes_nothing() -> None:
    api = FakeApi({"n1", "n2"})
    api.slices["old"] = _node_slice("old", "gone")
    first = reconcile_once(api, device_classes(), [_fabric()])
    assert len(first) == len(device_classes()) + 2  # classes, the fabric slice, the orphan
    assert "old" not in api.slices
    writes = api.writes
    assert reconcile_once(api, device_classes(), [_fabric()]) == []
    assert api.writes == writes


def test_labels_added_by_others_are_not_drift() -> None:
    desired = device_classes()
    observed = [_stored(c) for c in desired]
    observed[0]["metadata"]["labels"]["team"] = "neuro"
    assert plan_classes(desired, observed) == []


def test_classes_not_managed_are_left_alone_even_our_old_ones() -> None:
    api = FakeApi({"n1"})
    api.classes = {c["metadata"]["name"]: _stored(c) for c in device_classes()}
    actions = reconcile_once(api, None, [_fabric()])
    assert [(a.verb, a.kind) for a in actions] == [("create", "ResourceSlice")]
    assert len(api.classes) == len(device_classes())
