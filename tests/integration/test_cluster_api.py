"""The API server of the local cluster serves resource.k8s.io/v1 with every DRA field the driver
publishes: what is written comes back unchanged (a disabled gate silently drops its fields)."""

from __future__ import annotations

from typing import Any

import pytest
from darwin_dra.cluster import build
from k8s_helpers import Kube, claim, device_class
from kubernetes import client

pytestmark = pytest.mark.integration

# (feature gate, path into the object read back, value written)
Check = tuple[str, tuple[str | int, ...], Any]


def _dig(obj: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        if isinstance(key, int):
            if not isinstance(obj, list) or len(obj) <= key:
                return None
        elif not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def _assert_kept(kind: str, obj: dict[str, Any], checks: list[Check]) -> None:
    dropped = [
        f"{'.'.join(map(str, path))} (written {want!r}, read {_dig(obj, path)!r}): is {gate} on?"
        for gate, path, want in checks
        if _dig(obj, path) != want
    ]
    assert not dropped, f"{kind} lost fields:\n  " + "\n  ".join(dropped)


def test_resource_v1_is_served_and_preferred(kube: Kube) -> None:
    group = client.ResourceApi(kube.api).get_api_group()
    assert "v1" in [v.version for v in group.versions]
    assert group.preferred_version.version == "v1"


def test_server_reports_the_pinned_release(kube: Kube) -> None:
    # Unstamped builds say v0.0.0-master, which version checks (Helm's kubeVersion) reject.
    info = client.VersionApi(kube.api).get_code()
    assert info.git_version == build.kubernetes_version(build.module_dir())
    assert (info.major, info.minor) == ("1", "37")


def test_resource_slices_keep_every_field(kube: Kube, driver: str, nodes: list[str]) -> None:
    node = nodes[0]
    pool = {"name": node, "generation": 1, "resourceSliceCount": 2}
    counters = kube.create(
        "resourceslices",
        {
            "kind": "ResourceSlice",
            "metadata": {"name": f"{driver}-counters"},
            "spec": {
                "driver": driver,
                "nodeName": node,
                "pool": pool,
                "sharedCounters": [
                    {
                        "name": "chip-0-top",
                        "counters": {"d0": {"value": "16"}, "d1": {"value": "16"}},
                    }
                ],
            },
        },
    )
    _assert_kept(
        "counter ResourceSlice",
        kube.get("resourceslices", counters["metadata"]["name"]),
        [
            ("DRAPartitionableDevices", ("spec", "sharedCounters", 0, "name"), "chip-0-top"),
            (
                "DRAPartitionableDevices",
                ("spec", "sharedCounters", 0, "counters", "d1", "value"),
                "16",
            ),
        ],
    )

    shared_capacity = {
        "value": "1k",  # canonical form: the server normalises quantities
        "requestPolicy": {"default": "100", "validRange": {"min": "100", "step": "100"}},
    }
    devices = kube.create(
        "resourceslices",
        {
            "kind": "ResourceSlice",
            "metadata": {"name": f"{driver}-devices"},
            "spec": {
                "driver": driver,
                "nodeName": node,
                "pool": pool,
                "devices": [
                    {
                        "name": "chip-0-half-0",
                        "attributes": {
                            "model": {"string": "darwin3"},
                            "chip": {"int": 0},
                            "onChipLearning": {"bool": True},
                            "firmware": {"version": "1.2.3"},
                            "resource.kubernetes.io/pcieRoot": {"string": "pci0000:00"},
                        },
                        "capacity": {"cores": {"value": "287"}},
                        "consumesCounters": [
                            {"counterSet": "chip-0-top", "counters": {"d0": {"value": "16"}}}
                        ],
                        "taints": [
                            {
                                "key": "darwin.snn.io/unhealthy",
                                "value": "d0",
                                "effect": "NoSchedule",
                            }
                        ],
                        "bindingConditions": ["darwin.snn.io/ready"],
                        "bindingFailureConditions": ["darwin.snn.io/failed"],
                    },
                    {
                        "name": "chip-0-shared-0",
                        "allowMultipleAllocations": True,
                        "capacity": {"keps": shared_capacity},
                    },
                ],
            },
        },
    )
    back = kube.get("resourceslices", devices["metadata"]["name"])
    d0 = ("spec", "devices", 0)
    d1 = ("spec", "devices", 1)
    _assert_kept(
        "device ResourceSlice",
        back,
        [
            ("(core)", (*d0, "attributes", "model", "string"), "darwin3"),
            ("(core)", (*d0, "attributes", "chip", "int"), 0),
            ("(core)", (*d0, "attributes", "onChipLearning", "bool"), True),
            ("(core)", (*d0, "attributes", "firmware", "version"), "1.2.3"),
            (
                "(core)",
                (*d0, "attributes", "resource.kubernetes.io/pcieRoot", "string"),
                "pci0000:00",
            ),
            ("(core)", (*d0, "capacity", "cores", "value"), "287"),
            ("DRAPartitionableDevices", (*d0, "consumesCounters", 0, "counterSet"), "chip-0-top"),
            (
                "DRAPartitionableDevices",
                (*d0, "consumesCounters", 0, "counters", "d0", "value"),
                "16",
            ),
            ("DRADeviceTaints", (*d0, "taints", 0, "key"), "darwin.snn.io/unhealthy"),
            ("DRADeviceTaints", (*d0, "taints", 0, "effect"), "NoSchedule"),
            ("DRADeviceBindingConditions", (*d0, "bindingConditions"), ["darwin.snn.io/ready"]),
            (
                "DRADeviceBindingConditions",
                (*d0, "bindingFailureConditions"),
                ["darwin.snn.io/failed"],
            ),
            ("DRAConsumableCapacity", (*d1, "allowMultipleAllocations"), True),
            ("DRAConsumableCapacity", (*d1, "capacity", "keps"), shared_capacity),
        ],
    )


def test_classes_and_claims_keep_every_field(kube: Kube, driver: str, namespace: str) -> None:
    cls = device_class(f"{driver}-ext", driver)
    cls["spec"]["extendedResourceName"] = f"{driver}/chip"
    back = kube.get("deviceclasses", kube.create("deviceclasses", cls)["metadata"]["name"])
    _assert_kept(
        "DeviceClass",
        back,
        [("DRAExtendedResource", ("spec", "extendedResourceName"), f"{driver}/chip")],
    )

    body = claim(
        "prioritized",
        [
            {
                "name": "stage",
                "firstAvailable": [
                    {"name": "quad", "deviceClassName": cls["metadata"]["name"]},
                    {"name": "domains", "deviceClassName": cls["metadata"]["name"], "count": 4},
                ],
            },
            {
                "name": "share",
                "exactly": {
                    "deviceClassName": cls["metadata"]["name"],
                    "capacity": {"requests": {"keps": "250"}},
                },
            },
        ],
    )
    kube.create_ns(namespace, "resourceclaims", body)
    back = kube.get_ns(namespace, "resourceclaims", "prioritized")
    reqs = ("spec", "devices", "requests")
    _assert_kept(
        "ResourceClaim",
        back or {},
        [
            ("DRAPrioritizedList", (*reqs, 0, "firstAvailable", 0, "name"), "quad"),
            ("DRAPrioritizedList", (*reqs, 0, "firstAvailable", 1, "count"), 4),
            (
                "DRAConsumableCapacity",
                (*reqs, 1, "exactly", "capacity", "requests"),
                {"keps": "250"},
            ),
        ],
    )
