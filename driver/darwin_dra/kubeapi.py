"""The one module that talks to the API server through the kubernetes client.

resource.k8s.io/v1 objects travel as plain dicts through the generic custom-objects API: the
Python client's models lag the v1 fields and would silently drop them on a round trip. Every
client error becomes NotFound, Conflict, Unavailable or KubeApiError, so no caller ever sees
the client's types.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline import spec

GROUP = "resource.k8s.io"
VERSION = "v1"
SLICES = "resourceslices"
CLAIMS = "resourceclaims"
CLASSES = "deviceclasses"

T = TypeVar("T")


class KubeApiError(Exception):
    """The API server refused a request; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotFound(KubeApiError):
    pass


class Conflict(KubeApiError):
    """Stale resourceVersion on update, or the object already exists on create."""


class Unavailable(KubeApiError):
    """No usable answer: connection refused or reset, timeout, 429 or a 5xx. Retry later."""


class ConfigError(KubeApiError):
    """No kubeconfig and not running in a pod, or a kubeconfig that cannot be used."""


def _message(exc: ApiException) -> str:
    try:
        detail = json.loads(exc.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        detail = ""
    return f"HTTP {exc.status} {exc.reason}: {detail}".strip()


def _call(fn: Callable[[], T]) -> T:
    """Run one client call, translating its exceptions."""
    try:
        return fn()
    except ApiException as exc:
        status = int(exc.status or 0)
        text = _message(exc)
        if status == 404:
            raise NotFound(text, status) from None
        if status == 409:
            raise Conflict(text, status) from None
        if status == 429 or status >= 500 or status == 0:
            raise Unavailable(text, status) from None
        raise KubeApiError(text, status) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        # MaxRetryError, ProtocolError, timeouts, connection refused: the server is away.
        raise Unavailable(f"API server unreachable: {type(exc).__name__}: {exc}") from None


@dataclass
class Kube:
    """A connected client; cheap to share across threads (urllib3 pools connections)."""

    api: Any  # kubernetes.client.ApiClient
    timeout_s: float = 10.0

    @property
    def _custom(self) -> Any:
        return client.CustomObjectsApi(self.api)

    def close(self) -> None:
        self.api.close()

    # ---- Nodes, their Leases, service accounts (what the simulated kubelets post) ----
    @property
    def _core(self) -> Any:
        return client.CoreV1Api(self.api)

    def create_node(self, body: Obj) -> None:
        _call(lambda: self._core.create_node(body, _request_timeout=self.timeout_s))

    def patch_node_status(self, name: str, body: Obj) -> None:
        _call(lambda: self._core.patch_node_status(name, body, _request_timeout=self.timeout_s))

    def get_node(self, name: str) -> Obj:
        node = _call(lambda: self._core.read_node(name, _request_timeout=self.timeout_s))
        out: Obj = self.api.sanitize_for_serialization(node)
        return out

    def renew_lease(self, namespace: str, name: str, spec: Obj) -> None:
        """Patches the Lease's spec, creating the Lease when it does not exist yet."""
        coord: Any = client.CoordinationV1Api(self.api)
        try:
            _call(
                lambda: coord.patch_namespaced_lease(
                    name, namespace, {"spec": spec}, _request_timeout=self.timeout_s
                )
            )
        except NotFound:
            body = {"metadata": {"name": name, "namespace": namespace}, "spec": spec}
            _call(
                lambda: coord.create_namespaced_lease(
                    namespace, body, _request_timeout=self.timeout_s
                )
            )

    def service_account_exists(self, namespace: str, name: str = "default") -> bool:
        try:
            _call(
                lambda: self._core.read_namespaced_service_account(
                    name, namespace, _request_timeout=self.timeout_s
                )
            )
        except NotFound:
            return False
        return True

    # ---- ResourceSlices (cluster scoped) ----
    def list_slices(self, driver: str, node: str) -> list[Obj]:
        selector = f"spec.nodeName={node},spec.driver={driver}"
        out = _call(
            lambda: self._custom.list_cluster_custom_object(
                GROUP, VERSION, SLICES, field_selector=selector, _request_timeout=self.timeout_s
            )
        )
        items: list[Obj] = out.get("items", [])
        return items

    def create_slice(self, body: Obj) -> Obj:
        out: Obj = _call(
            lambda: self._custom.create_cluster_custom_object(
                GROUP, VERSION, SLICES, body, _request_timeout=self.timeout_s
            )
        )
        return out

    def update_slice(self, body: Obj) -> Obj:
        """Replace; body.metadata.resourceVersion must be the one read (else Conflict)."""
        name = body["metadata"]["name"]
        out: Obj = _call(
            lambda: self._custom.replace_cluster_custom_object(
                GROUP, VERSION, SLICES, name, body, _request_timeout=self.timeout_s
            )
        )
        return out

    def delete_slice(self, name: str, resource_version: str | None = None) -> None:
        """Delete; with a resourceVersion only that version (else Conflict). Gone is fine."""
        opts: Obj = {"preconditions": {"resourceVersion": resource_version}}
        try:
            _call(
                lambda: self._custom.delete_cluster_custom_object(
                    GROUP,
                    VERSION,
                    SLICES,
                    name,
                    body=opts if resource_version else {},
                    _request_timeout=self.timeout_s,
                )
            )
        except NotFound:
            return

    def get_slice(self, name: str) -> Obj:
        out: Obj = _call(
            lambda: self._custom.get_cluster_custom_object(
                GROUP, VERSION, SLICES, name, _request_timeout=self.timeout_s
            )
        )
        return out

    # ---- ResourceClaims (namespaced) ----
    def get_claim(self, namespace: str, name: str) -> Obj:
        out: Obj = _call(
            lambda: self._custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, CLAIMS, name, _request_timeout=self.timeout_s
            )
        )
        return out

    def create_claim(self, namespace: str, body: Obj) -> Obj:
        out: Obj = _call(
            lambda: self._custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, CLAIMS, body, _request_timeout=self.timeout_s
            )
        )
        return out

    def delete_claim(self, namespace: str, name: str) -> None:
        try:
            _call(
                lambda: self._custom.delete_namespaced_custom_object(
                    GROUP, VERSION, namespace, CLAIMS, name, _request_timeout=self.timeout_s
                )
            )
        except NotFound:
            return

    def replace_claim_status(self, claim: Obj) -> Obj:
        """PUT the claim's status subresource; claim.metadata.resourceVersion guards it."""
        meta = claim["metadata"]
        out: Obj = _call(
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

    def update_claim_status(
        self,
        namespace: str,
        name: str,
        change: Callable[[Obj], Obj | None],
        attempts: int = 5,
        current: Obj | None = None,
    ) -> Obj | None:
        """Read, apply ``change`` (returns the new claim or None for nothing to do), write.

        ``current``, a copy just read, saves the first read. Retries on Conflict with a fresh
        read, so entries other writers (other drivers, the scheduler) put in the status survive.
        """
        for attempt in range(attempts):
            if current is None or attempt > 0:
                current = self.get_claim(namespace, name)
            updated = change(current)
            if updated is None:
                return None
            try:
                return self.replace_claim_status(updated)
            except Conflict:
                if attempt == attempts - 1:
                    raise
        return None

    # ---- DeviceClasses (cluster scoped) ----
    def get_device_class(self, name: str) -> Obj:
        out: Obj = _call(
            lambda: self._custom.get_cluster_custom_object(
                GROUP, VERSION, CLASSES, name, _request_timeout=self.timeout_s
            )
        )
        return out

    def create_device_class(self, body: Obj) -> Obj:
        out: Obj = _call(
            lambda: self._custom.create_cluster_custom_object(
                GROUP, VERSION, CLASSES, body, _request_timeout=self.timeout_s
            )
        )
        return out

    def server_version(self) -> str:
        info = _call(lambda: client.VersionApi(self.api).get_code(_request_timeout=self.timeout_s))
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


# ---- The controller's calls (cluster-wide lists, DeviceClasses, claims, leases) ----

LEASES_GROUP = "coordination.k8s.io"


class ControllerKube(Kube):
    """What the controller needs beyond the plugin's calls; same error translation."""

    def list_driver_slices(self, driver: str) -> list[Obj]:
        out = _call(
            lambda: self._custom.list_cluster_custom_object(
                GROUP,
                VERSION,
                SLICES,
                field_selector=f"spec.driver={driver}",
                _request_timeout=self.timeout_s,
            )
        )
        items: list[Obj] = out.get("items", [])
        return items

    def list_device_classes(self, label_selector: str = "") -> list[Obj]:
        out = _call(
            lambda: self._custom.list_cluster_custom_object(
                GROUP,
                VERSION,
                CLASSES,
                label_selector=label_selector,
                _request_timeout=self.timeout_s,
            )
        )
        items: list[Obj] = out.get("items", [])
        return items

    def replace_device_class(self, body: Obj) -> Obj:
        """Replace; body.metadata.resourceVersion must be the one read (else Conflict)."""
        name = body["metadata"]["name"]
        out: Obj = _call(
            lambda: self._custom.replace_cluster_custom_object(
                GROUP, VERSION, CLASSES, name, body, _request_timeout=self.timeout_s
            )
        )
        return out

    def delete_device_class(self, name: str) -> None:
        try:
            _call(
                lambda: self._custom.delete_cluster_custom_object(
                    GROUP, VERSION, CLASSES, name, _request_timeout=self.timeout_s
                )
            )
        except NotFound:
            return

    def list_node_names(self) -> set[str]:
        out = _call(lambda: client.CoreV1Api(self.api).list_node(_request_timeout=self.timeout_s))
        return {str(n.metadata.name) for n in out.items if n.metadata}

    def list_claims(self) -> tuple[list[Obj], str]:
        """Every ResourceClaim of every namespace, and the list's resourceVersion."""
        out = _call(
            lambda: self._custom.list_cluster_custom_object(
                GROUP, VERSION, CLAIMS, _request_timeout=self.timeout_s
            )
        )
        items: list[Obj] = out.get("items", [])
        return items, str(out.get("metadata", {}).get("resourceVersion", ""))

    def watch_claims(self, resource_version: str, timeout_s: int) -> Iterator[tuple[str, Obj]]:
        """(event type, claim) from ``resource_version`` on, for at most ``timeout_s``.

        410 Gone (history compacted) surfaces as KubeApiError status 410: list again.
        """
        from kubernetes import watch

        w = watch.Watch()  # type: ignore[no-untyped-call]
        stream = w.stream(  # type: ignore[no-untyped-call]
            self._custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            CLAIMS,
            resource_version=resource_version,
            timeout_seconds=timeout_s,
            _request_timeout=timeout_s + self.timeout_s,
        )
        try:
            while True:
                try:
                    event = _call(lambda: next(stream))
                except StopIteration:
                    return
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    code = int(obj.get("code", 0) or 0)
                    raise KubeApiError(f"watch: {obj.get('message', obj)}", code)
                yield str(event.get("type")), obj
        finally:
            w.stop()  # type: ignore[no-untyped-call]

    # ---- Leases (coordination.k8s.io/v1), through the generic API: plain dicts both ways ----
    def get_lease(self, namespace: str, name: str) -> Obj:
        out: Obj = _call(
            lambda: self._custom.get_namespaced_custom_object(
                LEASES_GROUP, "v1", namespace, "leases", name, _request_timeout=self.timeout_s
            )
        )
        return out

    def create_lease(self, namespace: str, body: Obj) -> Obj:
        out: Obj = _call(
            lambda: self._custom.create_namespaced_custom_object(
                LEASES_GROUP, "v1", namespace, "leases", body, _request_timeout=self.timeout_s
            )
        )
        return out

    def replace_lease(self, namespace: str, body: Obj) -> Obj:
        """Replace; body.metadata.resourceVersion guards against a concurrent holder."""
        name = body["metadata"]["name"]
        out: Obj = _call(
            lambda: self._custom.replace_namespaced_custom_object(
                LEASES_GROUP, "v1", namespace, "leases", name, body, _request_timeout=self.timeout_s
            )
        )
        return out


def connect_controller(kubeconfig: Path | None = None, timeout_s: float = 10.0) -> ControllerKube:
    base = connect(kubeconfig, timeout_s)
    return ControllerKube(base.api, base.timeout_s)


# ---- The fleet bench and `darwin-dra status`: pods, namespaces, templates, cluster lists ----

TEMPLATES = "resourceclaimtemplates"


class FleetKube(ControllerKube):
    """Simulated fleets and cluster-wide views; same error translation as the rest."""

    def _dict(self, obj: Any) -> Obj:
        out: Obj = self.api.sanitize_for_serialization(obj)
        return out

    def create_namespace(self, name: str) -> None:
        body = {"metadata": {"name": name}}
        _call(lambda: self._core.create_namespace(body, _request_timeout=self.timeout_s))

    def delete_namespace(self, name: str) -> None:
        try:
            _call(lambda: self._core.delete_namespace(name, _request_timeout=self.timeout_s))
        except NotFound:
            return

    def list_nodes(self) -> list[Obj]:
        out = _call(lambda: self._core.list_node(_request_timeout=self.timeout_s))
        return [self._dict(n) for n in out.items]

    def create_pod(self, namespace: str, body: Obj) -> None:
        _call(
            lambda: self._core.create_namespaced_pod(
                namespace, body, _request_timeout=self.timeout_s
            )
        )

    def delete_pod_now(self, namespace: str, name: str) -> None:
        """Delete with grace period 0: no kubelet runs these pods to confirm a graceful stop."""
        try:
            _call(
                lambda: self._core.delete_namespaced_pod(
                    name, namespace, grace_period_seconds=0, _request_timeout=self.timeout_s
                )
            )
        except NotFound:
            return

    def list_pods(self, namespace: str) -> tuple[list[Obj], str]:
        out = _call(
            lambda: self._core.list_namespaced_pod(namespace, _request_timeout=self.timeout_s)
        )
        return [self._dict(p) for p in out.items], str(out.metadata.resource_version or "")

    def watch_pods(
        self, namespace: str, resource_version: str, timeout_s: int
    ) -> Iterator[tuple[str, Obj]]:
        """(event type, pod as a dict) from ``resource_version`` on, for at most timeout_s."""
        from kubernetes import watch

        w = watch.Watch()  # type: ignore[no-untyped-call]
        stream = w.stream(  # type: ignore[no-untyped-call]
            self._core.list_namespaced_pod,
            namespace,
            resource_version=resource_version,
            timeout_seconds=timeout_s,
            _request_timeout=timeout_s + self.timeout_s,
        )
        try:
            while True:
                try:
                    event = _call(lambda: next(stream))
                except StopIteration:
                    return
                obj = event.get("object")
                if event.get("type") == "ERROR":
                    raw = obj if isinstance(obj, dict) else self._dict(obj)
                    raise KubeApiError(f"watch: {raw.get('message', raw)}", int(raw.get("code", 0)))
                yield str(event.get("type")), self._dict(obj)
        finally:
            w.stop()  # type: ignore[no-untyped-call]

    def ungate_pod(self, namespace: str, name: str) -> None:
        """Remove every scheduling gate (a JSON patch), so the scheduler may take the pod."""
        patch = [{"op": "remove", "path": "/spec/schedulingGates"}]
        _call(
            lambda: self._core.patch_namespaced_pod(
                name, namespace, patch, _request_timeout=self.timeout_s
            )
        )

    def count_claims(self, namespace: str) -> int:
        out = _call(
            lambda: self._custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, CLAIMS, _request_timeout=max(self.timeout_s, 60)
            )
        )
        return len(out.get("items", []))

    def create_claim_template(self, namespace: str, body: Obj) -> None:
        _call(
            lambda: self._custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, TEMPLATES, body, _request_timeout=self.timeout_s
            )
        )

    def list_all_slices(self) -> list[Obj]:
        out = _call(
            lambda: self._custom.list_cluster_custom_object(
                GROUP, VERSION, SLICES, _request_timeout=self.timeout_s
            )
        )
        items: list[Obj] = out.get("items", [])
        return items


def connect_fleet(kubeconfig: Path | None = None, timeout_s: float = 10.0) -> FleetKube:
    base = connect(kubeconfig, timeout_s)
    return FleetKube(base.api, base.timeout_s)


# ---- The controller's SpikingPipelines and what they own (pods, claims, ConfigMaps, Secrets) ----

PIPELINE_GROUP, PIPELINE_VERSION, PIPELINES = spec.GROUP, spec.VERSION, spec.PLURAL


class PipelineKube(ControllerKube):
    """SpikingPipelines and the namespaced objects they own; same error translation."""

    def _dict(self, obj: Any) -> Obj:
        out: Obj = self.api.sanitize_for_serialization(obj)
        return out

    def list_pipelines(self) -> tuple[list[Obj], str]:
        out = _call(
            lambda: self._custom.list_cluster_custom_object(
                PIPELINE_GROUP, PIPELINE_VERSION, PIPELINES, _request_timeout=self.timeout_s
            )
        )
        items: list[Obj] = out.get("items", [])
        return items, str(out.get("metadata", {}).get("resourceVersion", ""))

    def patch_pipeline_status(self, namespace: str, name: str, status: Obj) -> None:
        _call(
            lambda: self._custom.patch_namespaced_custom_object_status(
                PIPELINE_GROUP,
                PIPELINE_VERSION,
                namespace,
                PIPELINES,
                name,
                {"status": status},
                _request_timeout=self.timeout_s,
            )
        )

    def watch_changes(
        self, what: str, selector: str, version: str, timeout_s: int
    ) -> Iterator[str]:
        """The event types of pipelines (``what`` = "pipelines") or of pods matching the label
        ``selector`` ("pods") from ``version`` on, for at most ``timeout_s``; 410 Gone raises
        KubeApiError status 410 (list again)."""
        from kubernetes import watch

        if what == "pipelines":
            fn: Any = self._custom.list_cluster_custom_object
            args: tuple[Any, ...] = (PIPELINE_GROUP, PIPELINE_VERSION, PIPELINES)
        else:
            fn, args = self._core.list_pod_for_all_namespaces, ()
        w = watch.Watch()  # type: ignore[no-untyped-call]
        stream = w.stream(  # type: ignore[no-untyped-call]
            fn,
            *args,
            label_selector=selector,
            resource_version=version or None,
            timeout_seconds=timeout_s,
            _request_timeout=timeout_s + self.timeout_s,
        )
        try:
            while True:
                try:
                    event = _call(lambda: next(stream))
                except StopIteration:
                    return
                if event.get("type") == "ERROR":
                    raw = event.get("object")
                    raw = raw if isinstance(raw, dict) else self._dict(raw)
                    raise KubeApiError(f"watch: {raw.get('message', raw)}", int(raw.get("code", 0)))
                yield str(event.get("type"))
        finally:
            w.stop()  # type: ignore[no-untyped-call]

    def list_owned(self, namespace: str, selector: str) -> tuple[list[Obj], list[Obj]]:
        """(claims, pods) in ``namespace`` matching the label ``selector``."""
        claims = _call(
            lambda: self._custom.list_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                CLAIMS,
                label_selector=selector,
                _request_timeout=self.timeout_s,
            )
        )
        pods = _call(
            lambda: self._core.list_namespaced_pod(
                namespace, label_selector=selector, _request_timeout=self.timeout_s
            )
        )
        return list(claims.get("items", [])), [self._dict(p) for p in pods.items]

    def list_nodes(self) -> list[Obj]:
        out = _call(lambda: self._core.list_node(_request_timeout=self.timeout_s))
        return [self._dict(n) for n in out.items]

    def list_all_slices(self) -> list[Obj]:
        out = _call(
            lambda: self._custom.list_cluster_custom_object(
                GROUP, VERSION, SLICES, _request_timeout=self.timeout_s
            )
        )
        items: list[Obj] = out.get("items", [])
        return items

    def get_config_map(self, namespace: str, name: str) -> Obj:
        cm = _call(
            lambda: self._core.read_namespaced_config_map(
                name, namespace, _request_timeout=self.timeout_s
            )
        )
        return self._dict(cm)

    def create(self, namespace: str, body: Obj) -> None:
        kind = body["kind"]
        if kind == "ResourceClaim":
            _call(
                lambda: self._custom.create_namespaced_custom_object(
                    GROUP, VERSION, namespace, CLAIMS, body, _request_timeout=self.timeout_s
                )
            )
            return
        fn = {
            "Pod": self._core.create_namespaced_pod,
            "ConfigMap": self._core.create_namespaced_config_map,
            "Secret": self._core.create_namespaced_secret,
        }[kind]
        _call(lambda: fn(namespace, body, _request_timeout=self.timeout_s))

    def read_pod_log(self, namespace: str, name: str, tail_lines: int = 200) -> str:
        out = _call(
            lambda: self._core.read_namespaced_pod_log(
                name, namespace, tail_lines=tail_lines, _request_timeout=self.timeout_s
            )
        )
        return str(out)

    def replace_config_map(self, namespace: str, body: Obj) -> None:
        name = body["metadata"]["name"]
        _call(
            lambda: self._core.replace_namespaced_config_map(
                name, namespace, body, _request_timeout=self.timeout_s
            )
        )

    def delete(self, namespace: str, kind: str, name: str) -> None:
        """Delete (background propagation); gone already is fine."""
        try:
            if kind == "ResourceClaim":
                _call(
                    lambda: self._custom.delete_namespaced_custom_object(
                        GROUP, VERSION, namespace, CLAIMS, name, _request_timeout=self.timeout_s
                    )
                )
                return
            fn = {
                "Pod": self._core.delete_namespaced_pod,
                "ConfigMap": self._core.delete_namespaced_config_map,
                "Secret": self._core.delete_namespaced_secret,
            }[kind]
            _call(lambda: fn(name, namespace, _request_timeout=self.timeout_s))
        except NotFound:
            return


def connect_pipelines(kubeconfig: Path | None = None, timeout_s: float = 10.0) -> PipelineKube:
    base = connect(kubeconfig, timeout_s)
    return PipelineKube(base.api, base.timeout_s)
