"""The fleet bench and `darwin-dra status`: pods, namespaces, claim templates, cluster lists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from darwin_dra.kubeapi.controller import ControllerKube
from darwin_dra.kubeapi.errors import NotFound, call
from darwin_dra.kubeapi.kube import CLAIMS, GROUP, VERSION, connect
from darwin_dra.kubetypes import Obj

TEMPLATES = "resourceclaimtemplates"


class FleetKube(ControllerKube):
    """Simulated fleets and cluster-wide views; same error translation as the rest."""

    def create_namespace(self, name: str) -> None:
        body = {"metadata": {"name": name}}
        call(lambda: self._core.create_namespace(body, _request_timeout=self.timeout_s))

    def delete_namespace(self, name: str) -> None:
        try:
            call(lambda: self._core.delete_namespace(name, _request_timeout=self.timeout_s))
        except NotFound:
            return

    def create_pod(self, namespace: str, body: Obj) -> None:
        call(
            lambda: self._core.create_namespaced_pod(
                namespace, body, _request_timeout=self.timeout_s
            )
        )

    def delete_pod_now(self, namespace: str, name: str) -> None:
        """Delete with grace period 0: no kubelet runs these pods to confirm a graceful stop."""
        try:
            call(
                lambda: self._core.delete_namespaced_pod(
                    name, namespace, grace_period_seconds=0, _request_timeout=self.timeout_s
                )
            )
        except NotFound:
            return

    def list_pods(self, namespace: str) -> tuple[list[Obj], str]:
        out = call(
            lambda: self._core.list_namespaced_pod(namespace, _request_timeout=self.timeout_s)
        )
        return [self._dict(p) for p in out.items], str(out.metadata.resource_version or "")

    def watch_pods(
        self, namespace: str, resource_version: str, timeout_s: int
    ) -> Iterator[tuple[str, Obj]]:
        """(event type, pod as a dict) from ``resource_version`` on, for at most timeout_s."""
        events = self._watch(
            self._core.list_namespaced_pod,
            namespace,
            resource_version=resource_version,
            timeout_s=timeout_s,
        )
        return ((kind, self._dict(pod)) for kind, pod in events)

    def ungate_pod(self, namespace: str, name: str) -> None:
        """Remove every scheduling gate (a JSON patch), so the scheduler may take the pod."""
        patch = [{"op": "remove", "path": "/spec/schedulingGates"}]
        # The answer is not read into a V1Pod: that decoding was most of the bench's client
        # time, and ungating must outpace the scheduler for pods/s to measure the scheduler.
        resp = call(
            lambda: self._core.patch_namespaced_pod(
                name, namespace, patch, _request_timeout=self.timeout_s, _preload_content=False
            )
        )
        resp.read()
        resp.release_conn()

    def count_claims(self, namespace: str) -> int:
        out = call(
            lambda: self._custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, CLAIMS, _request_timeout=max(self.timeout_s, 60)
            )
        )
        return len(out.get("items", []))

    def create_claim_template(self, namespace: str, body: Obj) -> None:
        call(
            lambda: self._custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, TEMPLATES, body, _request_timeout=self.timeout_s
            )
        )


def connect_fleet(kubeconfig: Path | None = None, timeout_s: float = 10.0) -> FleetKube:
    base = connect(kubeconfig, timeout_s)
    return FleetKube(base.api, base.timeout_s)
