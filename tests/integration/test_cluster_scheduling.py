"""The real kube-scheduler allocates devices from ResourceSlices; the resourceclaim controller
creates claims from templates and frees them when their pod goes away."""

from __future__ import annotations

from typing import Any

import pytest
from k8s_helpers import (
    Kube,
    allocated_devices,
    claim_template,
    device_class,
    exact_request,
    wait_for,
)

pytestmark = pytest.mark.integration


def _slice(name: str, driver: str, node: str, count: int = 1, **spec: Any) -> dict[str, Any]:
    pool = {"name": node, "generation": 1, "resourceSliceCount": count}
    return {
        "kind": "ResourceSlice",
        "metadata": {"name": name},
        "spec": {"driver": driver, "nodeName": node, "pool": pool, **spec},
    }


def _chip(name: str, **attrs: Any) -> dict[str, Any]:
    return {"name": name, "attributes": dict(attrs)}


def _allocated_claim(kube: Kube, namespace: str, pod: str) -> dict[str, Any]:
    def claim() -> dict[str, Any] | None:
        name = kube.pod_claim_name(namespace, pod, "chip")
        obj = kube.get_ns(namespace, "resourceclaims", name) if name else None
        return obj if allocated_devices(obj) else None

    return wait_for(f"an allocated claim for pod {pod}", claim)


def _unschedulable(kube: Kube, namespace: str, pod: str) -> dict[str, Any]:
    def condition() -> dict[str, Any] | None:
        cond = kube.scheduled_condition(namespace, pod)
        return cond if cond and cond.get("status") == "False" else None

    return wait_for(f"pod {pod} to be reported unschedulable", condition)


def test_cel_selector_picks_the_matching_device_and_node(
    kube: Kube, driver: str, namespace: str, nodes: list[str]
) -> None:
    # Only the second node has a darwin3 chip: the scheduler must place the pod there.
    kube.create(
        "resourceslices",
        _slice(
            f"{driver}-a", driver, nodes[0], devices=[_chip("chip-0", model={"string": "darwin2"})]
        ),
    )
    kube.create(
        "resourceslices",
        _slice(
            f"{driver}-b", driver, nodes[1], devices=[_chip("chip-0", model={"string": "darwin3"})]
        ),
    )
    cls = f"{driver}-darwin3"
    kube.create(
        "deviceclasses",
        device_class(cls, driver, f'device.attributes["{driver}"].model == "darwin3"'),
    )
    kube.create_ns(
        namespace, "resourceclaimtemplates", claim_template("chip", [exact_request("chip", cls)])
    )
    kube.create_pod(namespace, "app", {"chip": {"resourceClaimTemplateName": "chip"}})

    claim = _allocated_claim(kube, namespace, "app")
    [result] = allocated_devices(claim)
    assert (result["driver"], result["pool"], result["device"]) == (driver, nodes[1], "chip-0")
    assert result["request"] == "chip"
    assert [r["name"] for r in claim["status"]["reservedFor"]] == ["app"]
    pod = wait_for(
        "pod bound", lambda: (kube.pod(namespace, "app") or {}).get("spec", {}).get("nodeName")
    )
    assert pod == nodes[1]

    # DRAResourceClaimDeviceStatus: a driver reports per-device conditions and data.
    device_status = {
        "driver": driver,
        "pool": nodes[1],
        "device": "chip-0",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Prepared",
                "message": "cores granted",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
        "data": {"cores": 575, "measuredKeps": 1000},
    }
    kube.custom.patch_namespaced_custom_object_status(
        "resource.k8s.io",
        "v1",
        namespace,
        "resourceclaims",
        claim["metadata"]["name"],
        {"status": {"devices": [device_status]}},
    )
    back = kube.get_ns(namespace, "resourceclaims", claim["metadata"]["name"]) or {}
    assert back["status"].get("devices") == [device_status], (
        "status.devices dropped: is DRAResourceClaimDeviceStatus on?"
    )

    # Deleting the pod frees the claim: the harness finalizes the pod, then the generated
    # claim (owned by the pod) is deleted.
    claim_name = claim["metadata"]["name"]
    kube.core.delete_namespaced_pod("app", namespace)
    wait_for("pod removed", lambda: kube.pod(namespace, "app") is None)
    wait_for(
        "generated claim deleted",
        lambda: kube.get_ns(namespace, "resourceclaims", claim_name) is None,
    )


def test_overlapping_partitions_are_never_allocated_together(
    kube: Kube, driver: str, namespace: str, nodes: list[str]
) -> None:
    node = nodes[0]
    kube.create(
        "resourceslices",
        _slice(
            f"{driver}-counters",
            driver,
            node,
            count=2,
            sharedCounters=[{"name": "chip-0", "counters": {"cores": {"value": "4"}}}],
        ),
    )

    def part(name: str, kind: str, cores: str) -> dict[str, Any]:
        dev = _chip(name, partition={"string": kind})
        dev["consumesCounters"] = [
            {"counterSet": "chip-0", "counters": {"cores": {"value": cores}}}
        ]
        return dev

    kube.create(
        "resourceslices",
        _slice(
            f"{driver}-devices",
            driver,
            node,
            count=2,
            devices=[
                part("chip-0", "chip", "4"),
                part("chip-0-half-0", "half", "2"),
                part("chip-0-half-1", "half", "2"),
            ],
        ),
    )
    for kind in ("chip", "half"):
        kube.create(
            "deviceclasses",
            device_class(
                f"{driver}-{kind}", driver, f'device.attributes["{driver}"].partition == "{kind}"'
            ),
        )
        kube.create_ns(
            namespace,
            "resourceclaimtemplates",
            claim_template(kind, [exact_request("chip", f"{driver}-{kind}")]),
        )

    kube.create_pod(namespace, "whole", {"chip": {"resourceClaimTemplateName": "chip"}})
    [whole] = allocated_devices(_allocated_claim(kube, namespace, "whole"))
    assert whole["device"] == "chip-0"

    # The halves share the whole chip's counters: nothing is left for them.
    kube.create_pod(namespace, "part", {"chip": {"resourceClaimTemplateName": "half"}})
    cond = _unschedulable(kube, namespace, "part")
    assert cond["reason"] == "Unschedulable"
    assert "cannot allocate all claims" in cond["message"], cond["message"]
    part_claim = kube.pod_claim_name(namespace, "part", "chip")
    assert part_claim is not None
    assert not allocated_devices(kube.get_ns(namespace, "resourceclaims", part_claim))

    # Once the whole chip is released its counters return and the half is allocated.
    kube.core.delete_namespaced_pod("whole", namespace)
    [half] = allocated_devices(_allocated_claim(kube, namespace, "part"))
    assert half["device"] in ("chip-0-half-0", "chip-0-half-1")


def test_consumable_capacity_is_shared_until_used_up(
    kube: Kube, driver: str, namespace: str, nodes: list[str]
) -> None:
    shared = {
        "name": "chip-0-shared-0",
        "allowMultipleAllocations": True,
        "capacity": {
            "keps": {
                "value": "1k",
                "requestPolicy": {"default": "100", "validRange": {"min": "100", "step": "100"}},
            }
        },
    }
    kube.create("resourceslices", _slice(f"{driver}-shared", driver, nodes[1], devices=[shared]))
    cls = f"{driver}-shared"
    kube.create("deviceclasses", device_class(cls, driver, "device.allowMultipleAllocations"))
    # 350 is rounded up to the policy's step: 400 consumed per claim, so two fit in 1k.
    request = exact_request("chip", cls, capacity={"requests": {"keps": "350"}})
    kube.create_ns(namespace, "resourceclaimtemplates", claim_template("share", [request]))

    share_ids = set()
    for pod in ("s1", "s2"):
        kube.create_pod(namespace, pod, {"chip": {"resourceClaimTemplateName": "share"}})
        [result] = allocated_devices(_allocated_claim(kube, namespace, pod))
        assert result["device"] == "chip-0-shared-0"
        assert result["consumedCapacity"] == {"keps": "400"}
        share_ids.add(result["shareID"])
    assert len(share_ids) == 2, "each allocation of a shared device gets its own shareID"

    kube.create_pod(namespace, "s3", {"chip": {"resourceClaimTemplateName": "share"}})
    cond = _unschedulable(kube, namespace, "s3")
    assert cond["reason"] == "Unschedulable"
    assert "cannot allocate all claims" in cond["message"], cond["message"]
