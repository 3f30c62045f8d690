"""The simulated nodes: the Node and status bodies a healthy kubelet posts (pure), and the
agent that registers them and keeps their Leases fresh through kubeapi.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from darwin_dra import kubeapi

LEASE_NAMESPACE = "kube-node-lease"
LEASE_SECONDS = 40


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _micro(ts: datetime.datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seconds(ts: datetime.datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def node_manifest(name: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {},
    }


def node_status(name: str, kubelet_version: str) -> dict[str, Any]:
    """A healthy kubelet's node status: capacity, addresses and the four standard conditions."""
    now = _seconds(_now())
    resources = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}

    def cond(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return {
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": name,
                "systemUUID": name,
                "bootID": name,
                "kernelVersion": "simulated",
                "osImage": "darwin-dra simulated node",
                "containerRuntimeVersion": "kubelet-harness://0",
                "kubeletVersion": kubelet_version,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "simulated"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "simulated"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "simulated"),
                cond("Ready", "True", "KubeletReady", "kubelet-harness is posting ready status"),
            ],
        }
    }


class NodeAgent:
    """Keeps a set of simulated nodes registered and Ready, as their kubelets would."""

    def __init__(self, kube: kubeapi.Kube, kubelet_version: str) -> None:
        self._kube = kube
        self._version = kubelet_version

    def register(self, name: str, labels: Mapping[str, str]) -> None:
        with contextlib.suppress(kubeapi.Conflict):  # already registered
            self._kube.create_node(node_manifest(name, labels))
        self.post_status(name)
        self.renew_lease(name)

    def post_status(self, name: str) -> None:
        self._kube.patch_node_status(name, node_status(name, self._version))

    def renew_lease(self, name: str) -> None:
        spec = {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": _micro(_now()),
        }
        self._kube.renew_lease(LEASE_NAMESPACE, name, spec)

    def exists(self, name: str) -> bool:
        try:
            self._kube.get_node(name)
        except kubeapi.NotFound:
            return False
        return True


def not_ready_reasons(node: Mapping[str, Any]) -> list[str]:
    """Why a node (as a dict) is not yet usable: Ready not True, or a NoSchedule/NoExecute
    taint."""
    name = node.get("metadata", {}).get("name", "?")
    conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions") or []}
    problems = []
    if conditions.get("Ready") != "True":
        problems.append(f"{name}: Ready={conditions.get('Ready', 'missing')}")
    for taint in node.get("spec", {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute"):
            problems.append(f"{name}: taint {taint['key']}:{taint['effect']}")
    return problems


def nodes_not_ready(kube: kubeapi.Kube, names: Iterable[str]) -> list[str]:
    return [p for name in names for p in not_ready_reasons(kube.get_node(name))]
