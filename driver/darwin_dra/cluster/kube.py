"""The one production module that talks to the API server through the kubernetes client.

It does what a kubelet does for its Node object (register, keep the Lease and the Ready condition
fresh) for every simulated node, and answers the launcher's readiness questions.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

LEASE_NAMESPACE = "kube-node-lease"
LEASE_SECONDS = 40


def api_client(kubeconfig: Path) -> Any:
    return config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]


def describe(exc: Exception) -> str:
    """One line for a log: the API status message rather than the client's full dump."""
    if isinstance(exc, ApiException):
        try:
            message = json.loads(exc.body or "{}").get("message", "")
        except ValueError:
            message = ""
        return f"HTTP {exc.status} {exc.reason}: {message}".strip()
    return f"{type(exc).__name__}: {exc}"


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

    def __init__(self, api: Any, kubelet_version: str) -> None:
        # Typed as Any: bodies are plain dicts, the client's models lag the API.
        self._core: Any = client.CoreV1Api(api)
        self._coord: Any = client.CoordinationV1Api(api)
        self._version = kubelet_version

    def register(self, name: str, labels: Mapping[str, str]) -> None:
        try:
            self._core.create_node(node_manifest(name, labels))
        except ApiException as exc:
            if exc.status != 409:
                raise
        self.post_status(name)
        self.renew_lease(name)

    def post_status(self, name: str) -> None:
        self._core.patch_node_status(name, node_status(name, self._version))

    def renew_lease(self, name: str) -> None:
        spec = {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": _micro(_now()),
        }
        try:
            self._coord.patch_namespaced_lease(name, LEASE_NAMESPACE, {"spec": spec})
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = {"metadata": {"name": name, "namespace": LEASE_NAMESPACE}, "spec": spec}
            self._coord.create_namespaced_lease(LEASE_NAMESPACE, body)

    def exists(self, name: str) -> bool:
        try:
            self._core.read_node(name)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True


def nodes_not_ready(api: Any, names: Iterable[str]) -> list[str]:
    """Why each named node is not yet usable: Ready not True, or a NoSchedule/NoExecute taint."""
    core: Any = client.CoreV1Api(api)
    problems = []
    for name in names:
        node = core.read_node(name)
        conditions = {c.type: c.status for c in (node.status.conditions or [])}
        if conditions.get("Ready") != "True":
            problems.append(f"{name}: Ready={conditions.get('Ready', 'missing')}")
        for taint in node.spec.taints or []:
            if taint.effect in ("NoSchedule", "NoExecute"):
                problems.append(f"{name}: taint {taint.key}:{taint.effect}")
    return problems


def service_account_exists(api: Any, namespace: str, name: str = "default") -> bool:
    try:
        client.CoreV1Api(api).read_namespaced_service_account(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True
