"""Thin helpers over the kubernetes client for the integration tests.

resource.k8s.io/v1 objects go through the generic CustomObjectsApi as plain dicts: the client's
models lag the API and would drop exactly the fields these tests check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from darwin_dra import polling
from kubernetes import client
from kubernetes.client.exceptions import ApiException

GROUP, VERSION = "resource.k8s.io", "v1"
T = TypeVar("T")


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 60, every: float = 0.5) -> T:
    """darwin_dra.polling.wait_for with the tests' defaults."""
    return polling.wait_for(what, fn, timeout, every)


def describe_namespace(kube: Kube, namespace: str) -> str:
    """What `kubectl describe` would show of a namespace's pods and events, for a failure report."""
    lines: list[str] = []
    try:
        for pod in kube.core.list_namespaced_pod(namespace).items:
            status = pod.status
            lines.append(f"pod {pod.metadata.name}: phase={status.phase} node={pod.spec.node_name}")
            for cond in status.conditions or []:
                why = f"{cond.reason or ''} {cond.message or ''}".strip()
                lines.append(f"  condition {cond.type}={cond.status} {why}")
            for cs in status.container_statuses or []:
                lines.append(f"  container {cs.name}: ready={cs.ready} state={cs.state.to_dict()}")
        events = kube.core.list_namespaced_event(namespace).items
        for ev in sorted(events, key=lambda e: str(e.last_timestamp or e.event_time or "")):
            obj = ev.involved_object
            lines.append(
                f"event {ev.last_timestamp or ev.event_time} {ev.type} {obj.kind}/{obj.name} "
                f"{ev.reason}: {ev.message}"
            )
    except ApiException as exc:  # the report must not hide the test's own failure
        lines.append(f"(could not describe namespace {namespace}: {exc.status} {exc.reason})")
    return "\n".join(lines)


class Kube:
    def __init__(self, api: client.ApiClient, label: dict[str, str]) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.label = label  # put on cluster-scoped objects so the test can remove them

    # resource.k8s.io, cluster scoped
    def create(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        body.setdefault("metadata", {}).setdefault("labels", {}).update(self.label)
        body.setdefault("apiVersion", f"{GROUP}/{VERSION}")
        obj: dict[str, Any] = self.custom.create_cluster_custom_object(GROUP, VERSION, plural, body)
        return obj

    def get(self, plural: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_cluster_custom_object(GROUP, VERSION, plural, name)
        return obj

    def cleanup(self) -> None:
        selector = ",".join(f"{k}={v}" for k, v in self.label.items())
        for plural in ("resourceslices", "deviceclasses"):
            self.custom.delete_collection_cluster_custom_object(
                GROUP, VERSION, plural, label_selector=selector
            )

    # resource.k8s.io, namespaced
    def create_ns(self, namespace: str, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        body.setdefault("apiVersion", f"{GROUP}/{VERSION}")
        obj: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, body
        )
        return obj

    def get_ns(self, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    def list_ns(self, namespace: str, plural: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, plural
        )["items"]
        return items

    # core
    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            pod = self.core.read_namespaced_pod(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        out: dict[str, Any] = self.api.sanitize_for_serialization(pod)
        return out

    def create_pod(
        self, namespace: str, name: str, claims: dict[str, dict[str, str]]
    ) -> dict[str, Any]:
        """A pod with one container using every claim; `claims`: pod claim name -> source,
        e.g. {"resourceClaimTemplateName": "t"} or {"resourceClaimName": "c"}."""
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "terminationGracePeriodSeconds": 5,
                "containers": [
                    {
                        "name": "main",
                        "image": "registry.invalid/darwin/app:none",
                        "resources": {"claims": [{"name": n} for n in claims]},
                    }
                ],
                "resourceClaims": [{"name": n, **src} for n, src in claims.items()],
            },
        }
        out: dict[str, Any] = self.api.sanitize_for_serialization(
            self.core.create_namespaced_pod(namespace, body)
        )
        return out

    def pod_claim_name(self, namespace: str, pod: str, claim: str) -> str | None:
        """The generated ResourceClaim of a template claim, once the controller made it."""
        obj = self.pod(namespace, pod) or {}
        for status in obj.get("status", {}).get("resourceClaimStatuses") or []:
            if status.get("name") == claim:
                name: str | None = status.get("resourceClaimName")
                return name
        return None

    def scheduled_condition(self, namespace: str, pod: str) -> dict[str, Any] | None:
        obj = self.pod(namespace, pod) or {}
        for cond in obj.get("status", {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled":
                return dict(cond)
        return None


def device_class(name: str, driver: str, expression: str | None = None) -> dict[str, Any]:
    selectors = [{"cel": {"expression": f'device.driver == "{driver}"'}}]
    if expression:
        selectors.append({"cel": {"expression": expression}})
    return {"kind": "DeviceClass", "metadata": {"name": name}, "spec": {"selectors": selectors}}


def exact_request(name: str, device_class: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "exactly": {"deviceClassName": device_class, **extra}}


def claim_template(name: str, requests: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name},
        "spec": {"spec": {"devices": {"requests": requests}}},
    }


def claim(name: str, requests: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "ResourceClaim",
        "metadata": {"name": name},
        "spec": {"devices": {"requests": requests}},
    }


def allocated_devices(claim_obj: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not claim_obj:
        return []
    alloc = claim_obj.get("status", {}).get("allocation") or {}
    results: list[dict[str, Any]] = alloc.get("devices", {}).get("results") or []
    return results


def device_taints(slices: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The taints of every tainted device of ``slices``, by device name."""
    return {
        d["name"]: d["taints"]
        for s in slices
        for d in s["spec"].get("devices", [])
        if d.get("taints")
    }
