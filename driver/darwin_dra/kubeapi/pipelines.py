"""The controller's SpikingPipelines and what they own (pods, claims, ConfigMaps, Secrets)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from darwin_dra.kubeapi.controller import ControllerKube
from darwin_dra.kubeapi.errors import NotFound, call
from darwin_dra.kubeapi.kube import CLAIMS, GROUP, VERSION, connect
from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline import spec

PIPELINE_GROUP, PIPELINE_VERSION, PIPELINES = spec.GROUP, spec.VERSION, spec.PLURAL


class PipelineKube(ControllerKube):
    """SpikingPipelines and the namespaced objects they own; same error translation."""

    def list_pipelines(self) -> tuple[list[Obj], str]:
        return self._list_cluster(PIPELINES, PIPELINE_GROUP, PIPELINE_VERSION)

    def patch_pipeline_status(self, namespace: str, name: str, status: Obj) -> None:
        call(
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
        if what == "pipelines":
            fn: Any = self._custom.list_cluster_custom_object
            args: tuple[Any, ...] = (PIPELINE_GROUP, PIPELINE_VERSION, PIPELINES)
        else:
            fn, args = self._core.list_pod_for_all_namespaces, ()
        events = self._watch(
            fn,
            *args,
            label_selector=selector,
            resource_version=version or None,
            timeout_s=timeout_s,
        )
        return (kind for kind, _ in events)

    def list_owned(self, namespace: str, selector: str) -> tuple[list[Obj], list[Obj]]:
        """(claims, pods) in ``namespace`` matching the label ``selector``."""
        claims = call(
            lambda: self._custom.list_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                CLAIMS,
                label_selector=selector,
                _request_timeout=self.timeout_s,
            )
        )
        pods = call(
            lambda: self._core.list_namespaced_pod(
                namespace, label_selector=selector, _request_timeout=self.timeout_s
            )
        )
        return list(claims.get("items", [])), [self._dict(p) for p in pods.items]

    def get_config_map(self, namespace: str, name: str) -> Obj:
        cm = call(
            lambda: self._core.read_namespaced_config_map(
                name, namespace, _request_timeout=self.timeout_s
            )
        )
        return self._dict(cm)

    def create(self, namespace: str, body: Obj) -> None:
        kind = body["kind"]
        if kind == "ResourceClaim":
            self.create_claim(namespace, body)
            return
        fn = {
            "Pod": self._core.create_namespaced_pod,
            "ConfigMap": self._core.create_namespaced_config_map,
            "Secret": self._core.create_namespaced_secret,
        }[kind]
        call(lambda: fn(namespace, body, _request_timeout=self.timeout_s))

    def read_pod_log(self, namespace: str, name: str, tail_lines: int = 200) -> str:
        out = call(
            lambda: self._core.read_namespaced_pod_log(
                name, namespace, tail_lines=tail_lines, _request_timeout=self.timeout_s
            )
        )
        return str(out)

    def replace_config_map(self, namespace: str, body: Obj) -> None:
        name = body["metadata"]["name"]
        call(
            lambda: self._core.replace_namespaced_config_map(
                name, namespace, body, _request_timeout=self.timeout_s
            )
        )

    def delete(self, namespace: str, kind: str, name: str) -> None:
        """Delete (background propagation); gone already is fine."""
        if kind == "ResourceClaim":
            self.delete_claim(namespace, name)
            return
        fn = {
            "Pod": self._core.delete_namespaced_pod,
            "ConfigMap": self._core.delete_namespaced_config_map,
            "Secret": self._core.delete_namespaced_secret,
        }[kind]
        try:
            call(lambda: fn(name, namespace, _request_timeout=self.timeout_s))
        except NotFound:
            return


def connect_pipelines(kubeconfig: Path | None = None, timeout_s: float = 10.0) -> PipelineKube:
    base = connect(kubeconfig, timeout_s)
    return PipelineKube(base.api, base.timeout_s)
