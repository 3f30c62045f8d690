"""The controller's calls: cluster-wide slice, class, node and claim lists, the claim watch,
DeviceClass writes and its leader Lease."""

from __future__ import annotations

from pathlib import Path

from darwin_dra.kubeapi.errors import call
from darwin_dra.kubeapi.kube import CLASSES, SLICES, Kube, connect
from darwin_dra.kubetypes import Obj

LEASES_GROUP = "coordination.k8s.io"


class ControllerKube(Kube):
    """What the controller needs beyond the plugin's calls; same error translation."""

    def list_driver_slices(self, driver: str) -> list[Obj]:
        return self._list_cluster(SLICES, field_selector=f"spec.driver={driver}")[0]

    def list_all_slices(self) -> list[Obj]:
        return self._list_cluster(SLICES)[0]

    def list_device_classes(self, label_selector: str = "") -> list[Obj]:
        return self._list_cluster(CLASSES, label_selector=label_selector)[0]

    def replace_device_class(self, body: Obj) -> Obj:
        """Replace; body.metadata.resourceVersion must be the one read (else Conflict)."""
        return self._replace_cluster(CLASSES, body)

    def delete_device_class(self, name: str) -> None:
        self._delete_cluster(CLASSES, name)

    def list_node_names(self) -> set[str]:
        out = call(lambda: self._core.list_node(_request_timeout=self.timeout_s))
        return {str(n.metadata.name) for n in out.items if n.metadata}

    def list_nodes(self) -> list[Obj]:
        out = call(lambda: self._core.list_node(_request_timeout=self.timeout_s))
        return [self._dict(n) for n in out.items]

    # ---- Leases (coordination.k8s.io/v1), through the generic API: plain dicts both ways ----
    def get_lease(self, namespace: str, name: str) -> Obj:
        out: Obj = call(
            lambda: self._custom.get_namespaced_custom_object(
                LEASES_GROUP, "v1", namespace, "leases", name, _request_timeout=self.timeout_s
            )
        )
        return out

    def create_lease(self, namespace: str, body: Obj) -> Obj:
        out: Obj = call(
            lambda: self._custom.create_namespaced_custom_object(
                LEASES_GROUP, "v1", namespace, "leases", body, _request_timeout=self.timeout_s
            )
        )
        return out

    def replace_lease(self, namespace: str, body: Obj) -> Obj:
        """Replace; body.metadata.resourceVersion guards against a concurrent holder."""
        name = body["metadata"]["name"]
        out: Obj = call(
            lambda: self._custom.replace_namespaced_custom_object(
                LEASES_GROUP, "v1", namespace, "leases", name, body, _request_timeout=self.timeout_s
            )
        )
        return out


def connect_controller(kubeconfig: Path | None = None, timeout_s: float = 10.0) -> ControllerKube:
    base = connect(kubeconfig, timeout_s)
    return ControllerKube(base.api, base.timeout_s)
