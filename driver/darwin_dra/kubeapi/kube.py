"""The plugin's calls (its node, Lease, ResourceSlices, ResourceClaims, DeviceClasses), the
shared list and watch runs every client class uses, and ``connect``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.config.config_exception import ConfigException

from darwin_dra.kubeapi.claims import ClaimStatusUpdates
from darwin_dra.kubeapi.errors import ConfigError, KubeApiError, NotFound, call
from darwin_dra.kubetypes import Obj

GROUP = "resource.k8s.io"
VERSION = "v1"
SLICES = "resourceslices"
CLAIMS = "resourceclaims"
CLASSES = "deviceclasses"


@dataclass
class Kube(ClaimStatusUpdates):
    """A connected client; cheap to share across threads (urllib3 pools connections)."""

    api: Any  # kubernetes.client.ApiClient
    timeout_s: float = 10.0

    @property
    def _custom(self) -> Any:
        return client.CustomObjectsApi(self.api)

    @property
    def _core(self) -> Any:
        return client.CoreV1Api(self.api)

    def close(self) -> None:
        self.api.close()

    def _dict(self, obj: Any) -> Obj:
        out: Obj = self.api.sanitize_for_serialization(obj)
        return out

    def _list_cluster(
        self, plural: str, group: str = GROUP, version: str = VERSION, **selectors: str
    ) -> tuple[list[Obj], str]:
        """Every cluster-scoped (or all-namespace) custom object of ``plural`` matching the
        ``field_selector``/``label_selector`` given, and the list's resourceVersion."""
        out = call(
            lambda: self._custom.list_cluster_custom_object(
                group, version, plural, **selectors, _request_timeout=self.timeout_s
            )
        )
        items: list[Obj] = out.get("items", [])
        return items, str(out.get("metadata", {}).get("resourceVersion", ""))

    def _watch(
        self, list_fn: Callable[..., Any], *args: Any, timeout_s: int, **kwargs: Any
    ) -> Iterator[tuple[str, Any]]:
        """(event type, object as the client decoded it) of one watch of ``list_fn`` for at
        most ``timeout_s``. An ERROR event (410 Gone: history compacted, list again) raises
        KubeApiError with the event's code as status."""
        w = watch.Watch()  # type: ignore[no-untyped-call]
        stream = w.stream(  # type: ignore[no-untyped-call]
            list_fn,
            *args,
            timeout_seconds=timeout_s,
            _request_timeout=timeout_s + self.timeout_s,
            **kwargs,
        )
        try:
            while True:
                try:
                    event = call(lambda: next(stream))
                except StopIteration:
                    return
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    raw = obj if isinstance(obj, dict) else self._dict(obj)
                    code = int(raw.get("code", 0) or 0)
                    raise KubeApiError(f"watch: {raw.get('message', raw)}", code)
                yield str(event.get("type")), obj
        finally:
            w.stop()  # type: ignore[no-untyped-call]

    def _create_cluster(self, plural: str, body: Obj) -> Obj:
        out: Obj = call(
            lambda: self._custom.create_cluster_custom_object(
                GROUP, VERSION, plural, body, _request_timeout=self.timeout_s
            )
        )
        return out

    def _get_cluster(self, plural: str, name: str) -> Obj:
        out: Obj = call(
            lambda: self._custom.get_cluster_custom_object(
                GROUP, VERSION, plural, name, _request_timeout=self.timeout_s
            )
        )
        return out

    def _replace_cluster(self, plural: str, body: Obj) -> Obj:
        """Replace; body.metadata.resourceVersion must be the one read (else Conflict)."""
        name = body["metadata"]["name"]
        out: Obj = call(
            lambda: self._custom.replace_cluster_custom_object(
                GROUP, VERSION, plural, name, body, _request_timeout=self.timeout_s
            )
        )
        return out

    def _delete_cluster(self, plural: str, name: str, options: Obj | None = None) -> None:
        """Delete (with ``options``, e.g. preconditions); gone already is fine."""
        try:
            call(
                lambda: self._custom.delete_cluster_custom_object(
                    GROUP,
                    VERSION,
                    plural,
                    name,
                    body=options or {},
                    _request_timeout=self.timeout_s,
                )
            )
        except NotFound:
            return

    # ---- Nodes, their Leases, service accounts (what the simulated kubelets post) ----
    def create_node(self, body: Obj) -> None:
        call(lambda: self._core.create_node(body, _request_timeout=self.timeout_s))

    def patch_node_status(self, name: str, body: Obj) -> None:
        call(lambda: self._core.patch_node_status(name, body, _request_timeout=self.timeout_s))

    def get_node(self, name: str) -> Obj:
        return self._dict(call(lambda: self._core.read_node(name, _request_timeout=self.timeout_s)))

    def renew_lease(self, namespace: str, name: str, spec: Obj) -> None:
        """Patches the Lease's spec, creating the Lease when it does not exist yet."""
        coord: Any = client.CoordinationV1Api(self.api)
        try:
            call(
                lambda: coord.patch_namespaced_lease(
                    name, namespace, {"spec": spec}, _request_timeout=self.timeout_s
                )
            )
        except NotFound:
            body = {"metadata": {"name": name, "namespace": namespace}, "spec": spec}
            call(
                lambda: coord.create_namespaced_lease(
                    namespace, body, _request_timeout=self.timeout_s
                )
            )

    def service_account_exists(self, namespace: str, name: str = "default") -> bool:
        try:
            call(
                lambda: self._core.read_namespaced_service_account(
                    name, namespace, _request_timeout=self.timeout_s
                )
            )
        except NotFound:
            return False
        return True

    # ---- ResourceSlices (cluster scoped) ----
    def list_slices(self, driver: str, node: str) -> list[Obj]:
        return self._list_cluster(
            SLICES, field_selector=f"spec.nodeName={node},spec.driver={driver}"
        )[0]

    def create_slice(self, body: Obj) -> Obj:
        return self._create_cluster(SLICES, body)

    def update_slice(self, body: Obj) -> Obj:
        """Replace; body.metadata.resourceVersion must be the one read (else Conflict)."""
        return self._replace_cluster(SLICES, body)

    def delete_slice(self, name: str, resource_version: str | None = None) -> None:
        """Delete; with a resourceVersion only that version (else Conflict). Gone is fine."""
        opts: Obj = {"preconditions": {"resourceVersion": resource_version}}
        self._delete_cluster(SLICES, name, opts if resource_version else None)

    def get_slice(self, name: str) -> Obj:
        return self._get_cluster(SLICES, name)

    # ---- ResourceClaims (namespaced) ----
    def get_claim(self, namespace: str, name: str) -> Obj:
        out: Obj = call(
            lambda: self._custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, CLAIMS, name, _request_timeout=self.timeout_s
            )
        )
        return out

    def list_claims(self) -> tuple[list[Obj], str]:
        """Every ResourceClaim of every namespace, and the list's resourceVersion."""
        return self._list_cluster(CLAIMS)

    def watch_claims(self, resource_version: str, timeout_s: int) -> Iterator[tuple[str, Obj]]:
        """(event type, claim) from ``resource_version`` on, for at most ``timeout_s``.

        410 Gone (history compacted) surfaces as KubeApiError status 410: list again.
        """
        return self._watch(
            self._custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            CLAIMS,
            resource_version=resource_version,
            timeout_s=timeout_s,
        )

    def create_claim(self, namespace: str, body: Obj) -> Obj:
        out: Obj = call(
            lambda: self._custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, CLAIMS, body, _request_timeout=self.timeout_s
            )
        )
        return out

    def delete_claim(self, namespace: str, name: str) -> None:
        try:
            call(
                lambda: self._custom.delete_namespaced_custom_object(
                    GROUP, VERSION, namespace, CLAIMS, name, _request_timeout=self.timeout_s
                )
            )
        except NotFound:
            return

    def replace_claim_status(self, claim: Obj) -> Obj:
        """PUT the claim's status subresource; claim.metadata.resourceVersion guards it."""
        meta = claim["metadata"]
        out: Obj = call(
            lambda: self._custom.replace_namespaced_custom_object_status(
                GROUP,
                VERSION,
                meta["namespace"],
                CLAIMS,
                meta["name"],
                claim,
                _request_timeout=self.timeout_s,
            )
        )
        return out

    # ---- DeviceClasses (cluster scoped) ----
    def get_device_class(self, name: str) -> Obj:
        return self._get_cluster(CLASSES, name)

    def create_device_class(self, body: Obj) -> Obj:
        return self._create_cluster(CLASSES, body)

    def server_version(self) -> str:
        info = call(lambda: client.VersionApi(self.api).get_code(_request_timeout=self.timeout_s))
        return str(info.git_version)


def connect(kubeconfig: Path | None = None, timeout_s: float = 10.0) -> Kube:
    """A client from ``kubeconfig``, or from the pod's service account when it is None."""
    try:
        if kubeconfig is not None:
            api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        else:
            cfg = client.Configuration()
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            api = client.ApiClient(cfg)
    except (ConfigException, OSError) as exc:
        where = str(kubeconfig) if kubeconfig else "in-cluster service account"
        raise ConfigError(f"cannot load Kubernetes client config from {where}: {exc}") from None
    # The client's default retries hide an absent server for minutes; we back off ourselves.
    api.configuration.retries = False
    return Kube(api, timeout_s)
