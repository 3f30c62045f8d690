"""Bring the cluster to the desired DeviceClasses and fabric slices; remove slices of nodes
that are gone. The plan is a pure function of desired and observed objects; ``apply`` is the
thin part that calls the API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import structlog

from darwin_dra import DRIVER_NAME
from darwin_dra.kubetypes import Obj
from darwin_dra.quantity import quantity_or_none
from darwin_dra.resources import MANAGED_BY, OWNER_LABEL

log = structlog.get_logger(__name__)


Verb = Literal["create", "update", "delete"]
Kind = Literal["DeviceClass", "ResourceSlice"]


@dataclass(frozen=True)
class Action:
    verb: Verb
    kind: Kind
    name: str
    body: Obj | None = None  # create, update
    why: str = ""


def matches(desired: Any, observed: Any) -> bool:
    """True when ``observed`` holds exactly the fields of ``desired`` with the same values,
    quantities compared by value ("1000" and the server's canonical "1k" are equal).

    Exact, not a subset: a field we stopped setting (say bindingConditions turned off) must
    count as drift. The server adds no defaults inside the specs of ResourceSlices and
    DeviceClasses (tests/integration checks a converged cluster stays unwritten).
    """
    if isinstance(desired, Mapping):
        return (
            isinstance(observed, Mapping)
            and set(desired) == set(observed)
            and all(matches(v, observed[k]) for k, v in desired.items())
        )
    if isinstance(desired, list):
        return (
            isinstance(observed, list)
            and len(desired) == len(observed)
            and all(matches(d, o) for d, o in zip(desired, observed, strict=True))
        )
    if isinstance(desired, str) and isinstance(observed, str) and desired != observed:
        q = quantity_or_none(desired)
        return q is not None and q == quantity_or_none(observed)
    return bool(desired == observed)


def _owned(obj: Obj) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return bool(labels.get(OWNER_LABEL) == MANAGED_BY)


def _same(desired: Obj, observed: Obj) -> bool:
    labels = observed["metadata"].get("labels") or {}
    ours = {k: labels.get(k) for k in desired["metadata"].get("labels", {})}
    # Labels others add (e.g. an admin's) are theirs to keep; spec is ours alone.
    return matches(desired["spec"], observed.get("spec", {})) and matches(
        desired["metadata"].get("labels", {}), ours
    )


def _updated(desired: Obj, observed: Obj) -> Obj:
    body = {**desired, "metadata": {**desired["metadata"]}}
    body["metadata"]["resourceVersion"] = observed["metadata"]["resourceVersion"]
    return body


def _create_or_update(
    kind: Kind,
    want: Mapping[str, Obj],
    have: Mapping[str, Obj],
    same: Callable[[Obj, Obj], bool],
    replacement: Callable[[Obj, Obj], tuple[Obj, str]],
) -> list[Action]:
    """Create each wanted object that is missing; where ``same(wanted, current)`` is false,
    update to ``replacement(wanted, current)`` (the new body and why)."""
    actions: list[Action] = []
    for name, body in sorted(want.items()):
        current = have.get(name)
        if current is None:
            actions.append(Action("create", kind, name, body, "missing"))
        elif not same(body, current):
            new, why = replacement(body, current)
            actions.append(Action("update", kind, name, _updated(new, current), why))
    return actions


def plan_classes(desired: Sequence[Obj], observed: Iterable[Obj]) -> list[Action]:
    """Create what is missing, replace what drifted, delete the classes we own and no longer
    want. A class of the same name that someone else made is taken over (the driver's class
    names are its own domain)."""
    have = {o["metadata"]["name"]: o for o in observed}
    want = {d["metadata"]["name"]: d for d in desired}

    def take(body: Obj, current: Obj) -> tuple[Obj, str]:
        return body, "drifted" if _owned(current) else "taking over an unowned class"

    actions = _create_or_update("DeviceClass", want, have, _same, take)
    for name, current in sorted(have.items()):
        if name not in want and _owned(current):
            actions.append(Action("delete", "DeviceClass", name, why="no longer desired"))
    return actions


def _generation(obj: Obj) -> int:
    return int(obj.get("spec", {}).get("pool", {}).get("generation", 0))


def _without_generation(obj: Obj) -> Obj:
    spec = {**obj["spec"], "pool": {**obj["spec"]["pool"]}}
    spec["pool"].pop("generation", None)
    return {**obj, "spec": spec}


def plan_slices(
    desired_fabric: Sequence[Obj], slices: Iterable[Obj], nodes: set[str]
) -> list[Action]:
    """Fabric slices to create or update (a changed slice gets the next pool generation, so the
    scheduler never mixes old and new), owned fabric slices to delete, and node slices of this
    driver whose node no longer exists (a plugin that died with its node cannot clean up)."""
    observed = list(slices)
    fabric_have = {o["metadata"]["name"]: o for o in observed if _owned(o)}
    want = {d["metadata"]["name"]: d for d in desired_fabric}

    def same(body: Obj, current: Obj) -> bool:
        return _same(_without_generation(body), _without_generation(current))

    def bump(body: Obj, current: Obj) -> tuple[Obj, str]:
        bumped = {**body, "spec": {**body["spec"], "pool": {**body["spec"]["pool"]}}}
        bumped["spec"]["pool"]["generation"] = _generation(current) + 1
        return bumped, "drifted"

    actions = _create_or_update("ResourceSlice", want, fabric_have, same, bump)
    for name in sorted(set(fabric_have) - set(want)):
        actions.append(Action("delete", "ResourceSlice", name, why="fabric no longer listed"))
    if not nodes:
        # An empty node list is far likelier a cluster still starting than every node gone.
        return actions
    for obj in sorted(observed, key=lambda o: str(o["metadata"]["name"])):
        spec = obj.get("spec", {})
        node = spec.get("nodeName")
        if spec.get("driver") == DRIVER_NAME and node and node not in nodes:
            actions.append(
                Action(
                    "delete", "ResourceSlice", obj["metadata"]["name"], why=f"node {node} is gone"
                )
            )
    return actions


class ReconcileApi(Protocol):
    def list_device_classes(self, label_selector: str = "") -> list[Obj]: ...
    def create_device_class(self, body: Obj) -> Obj: ...
    def replace_device_class(self, body: Obj) -> Obj: ...
    def delete_device_class(self, name: str) -> None: ...
    def list_driver_slices(self, driver: str) -> list[Obj]: ...
    def create_slice(self, body: Obj) -> Obj: ...
    def update_slice(self, body: Obj) -> Obj: ...
    def delete_slice(self, name: str, resource_version: str | None = None) -> None: ...
    def list_node_names(self) -> set[str]: ...


def apply(api: ReconcileApi, actions: Sequence[Action]) -> None:
    for a in actions:
        log.info("reconcile", verb=a.verb, kind=a.kind, name=a.name, why=a.why)
        if a.kind == "DeviceClass":
            if a.verb == "create":
                api.create_device_class(_body(a))
            elif a.verb == "update":
                api.replace_device_class(_body(a))
            else:
                api.delete_device_class(a.name)
        elif a.verb == "create":
            api.create_slice(_body(a))
        elif a.verb == "update":
            api.update_slice(_body(a))
        else:
            api.delete_slice(a.name)


def _body(action: Action) -> Obj:
    if action.body is None:
        raise ValueError(f"{action.verb} {action.kind} {action.name} without a body")
    return action.body


FabricOf = Callable[[Sequence[Obj]], Sequence[Obj]]


def reconcile_once(
    api: ReconcileApi, classes: Sequence[Obj] | None, fabric_slices: Sequence[Obj] | FabricOf
) -> list[Action]:
    """One pass: observe, plan, apply. Returns what it did. ``classes`` None: the classes are
    not ours to manage (not even to delete the ones an earlier version installed).
    ``fabric_slices``: the desired fabric slices, or the function that makes them from the
    driver's slices observed (resources/fabric.py ``FabricsOf``: they follow the chips'
    fabric faults)."""
    actions = [] if classes is None else plan_classes(classes, api.list_device_classes())
    observed = api.list_driver_slices(DRIVER_NAME)
    desired = fabric_slices(observed) if callable(fabric_slices) else fabric_slices
    actions += plan_slices(desired, observed, api.list_node_names())
    apply(api, actions)
    return actions
