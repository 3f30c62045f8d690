"""A split run on a cluster, as API objects (pure): the server and the edge as two pods on two
different nodes, each holding a claim on a Darwin device, and what each pod mounts.

- Each party's Secret holds the run's CA and that party's own certificate and key; the
  ConfigMap with the digits is mounted by the edge pod only (the server never sees a pixel).
- The pods carry the run's label and a required anti-affinity on it per hostname, so the
  scheduler puts them on two nodes; ``--edge-node``/``--server-node`` pin them further, and
  the party not pinned keeps off the other's node (the server, created first, would not see
  the edge's anti-affinity yet).
- The edge reaches the server by its pod IP (the local cluster has no DNS and no kube-proxy),
  over the mutual-TLS stream of transport.py; nothing else passes between them.
- Each party prints one JSON report line, its own weights included (``--report-weights``);
  ``report_of_log`` reads it back."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from darwin_dra.kubetypes import Obj
from darwin_dra.splitlearn.parts import Config
from darwin_dra.splitlearn.transport import EDGE, SERVER

RUN_LABEL = "darwin.snn.io/split-learn"
ROLE_LABEL = "darwin.snn.io/split-role"
MOUNT = "/etc/split-learn"
PORT = 7443
DATA_KEY = "digits.npz"


@dataclass(frozen=True)
class PodSettings:
    run: str  # the run's name: prefix of every object, value of RUN_LABEL
    image: str
    device_class: str = "darwin-domain.snn.io"
    pull_policy: str = "IfNotPresent"
    edge_node: str | None = None
    server_node: str | None = None
    timeout_s: float = 600.0

    def name(self, role: str) -> str:
        return f"{self.run}-{role}"


def _meta(s: PodSettings, name: str, role: str) -> Obj:
    return {"name": name, "labels": {RUN_LABEL: s.run, ROLE_LABEL: role}}


def tls_secret(s: PodSettings, role: str, ca: bytes, cert: bytes, key: bytes) -> Obj:
    data = {"ca.crt": ca, "tls.crt": cert, "tls.key": key}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(s, s.name(f"{role}-tls"), role),
        "type": "Opaque",
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


def data_config_map(s: PodSettings, npz: bytes) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(s, s.name("edge-data"), EDGE),
        "binaryData": {DATA_KEY: base64.b64encode(npz).decode()},
    }


def claim(s: PodSettings, role: str) -> Obj:
    """One device of ``device_class`` for the party: where its half is deployed afterwards."""
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": _meta(s, s.name(role), role),
        "spec": {
            "devices": {
                "requests": [{"name": "chip", "exactly": {"deviceClassName": s.device_class}}]
            }
        },
    }


def _args(s: PodSettings, role: str, cfg: Config, seed: int, server_ip: str | None) -> list[str]:
    args = [
        "python", "-m", "darwin_dra.splitlearn.party", role,
        "--config", json.dumps(cfg.to_dict()), "--seed", str(seed), "--out", f"/tmp/{role}",
        "--tls-ca", f"{MOUNT}/tls/ca.crt", "--tls-cert", f"{MOUNT}/tls/tls.crt",
        "--tls-key", f"{MOUNT}/tls/tls.key", "--report-weights", "--timeout", str(s.timeout_s),
    ]  # fmt: skip
    if role == SERVER:
        return [*args, "--listen", f"0.0.0.0:{PORT}", "--port-file", "/tmp/server.port"]
    if not server_ip:
        raise ValueError("the edge pod needs the server pod's IP")
    return [*args, "--connect", f"{server_ip}:{PORT}", "--data", f"{MOUNT}/data/{DATA_KEY}"]


def pod(s: PodSettings, role: str, cfg: Config, seed: int, server_ip: str | None = None) -> Obj:
    """The party's pod; the edge's needs the server pod's IP."""
    mounts: list[Obj] = [{"name": "tls", "mountPath": f"{MOUNT}/tls", "readOnly": True}]
    volumes: list[Obj] = [{"name": "tls", "secret": {"secretName": s.name(f"{role}-tls")}}]
    if role == EDGE:
        mounts.append({"name": "data", "mountPath": f"{MOUNT}/data", "readOnly": True})
        volumes.append({"name": "data", "configMap": {"name": s.name("edge-data")}})
    node = s.edge_node if role == EDGE else s.server_node
    spec: Obj = {
        "restartPolicy": "Never",
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": {RUN_LABEL: s.run}},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        },
        "resourceClaims": [{"name": "chip", "resourceClaimName": s.name(role)}],
        "containers": [
            {
                "name": role,
                "image": s.image,
                "imagePullPolicy": s.pull_policy,
                "command": _args(s, role, cfg, seed, server_ip),
                "env": [{"name": "PYTHONHASHSEED", "value": "0"}],
                "resources": {"claims": [{"name": "chip"}]},
                "volumeMounts": mounts,
            }
        ],
        "volumes": volumes,
    }
    if role == SERVER:
        spec["containers"][0]["ports"] = [{"containerPort": PORT, "name": "cut"}]
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    elif other := (s.server_node if role == EDGE else s.edge_node):
        # The server is created first: its anti-affinity finds no edge yet, so without this it
        # may take the node the edge is pinned to and leave the edge nowhere to go.
        away = {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": [other]}
        spec["affinity"]["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [away]}]
            }
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(s, s.name(role), role),
        "spec": spec,
    }


def objects(s: PodSettings) -> list[tuple[str, str]]:
    """(kind, name) of everything a run creates, for cleaning up."""
    out = [("Pod", s.name(r)) for r in (EDGE, SERVER)]
    out += [("ResourceClaim", s.name(r)) for r in (EDGE, SERVER)]
    out += [("Secret", s.name(f"{r}-tls")) for r in (EDGE, SERVER)]
    return [*out, ("ConfigMap", s.name("edge-data"))]


@dataclass(frozen=True)
class PodState:
    phase: str
    node: str
    ip: str
    reason: str  # why it waits or failed, from the container's state or the pod's conditions


def pod_state(p: Mapping[str, Any]) -> PodState:
    st = p.get("status") or {}
    reason = ""
    for c in st.get("containerStatuses") or []:
        for what in ("waiting", "terminated"):
            r = (c.get("state") or {}).get(what) or {}
            if r.get("reason"):
                reason = f"{r['reason']}: {r.get('message') or ''}".strip(": ")
    if not reason:
        for c in st.get("conditions") or []:
            if c.get("status") == "False" and c.get("message"):
                reason = f"{c.get('reason') or c['type']}: {c['message']}"
    return PodState(
        str(st.get("phase") or "Pending"),
        str((p.get("spec") or {}).get("nodeName") or ""),
        str(st.get("podIP") or ""),
        reason,
    )


def report_of_log(role: str, log: str) -> dict[str, Any]:
    """The party's JSON report: the last line of its log that is a JSON object."""
    for line in reversed(log.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                out: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            if out.get("role") == role:
                return out
    raise ValueError(f"the {role} pod's log holds no report line:\n{log[-2000:]}")
