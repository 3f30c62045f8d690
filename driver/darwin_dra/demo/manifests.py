"""What the demo asks of the cluster, as data (pure): the inventory of its three nodes, the
chart's values, the network every workload runs, and the workloads' pods, Deployments and claim
templates. The claim templates of the first scenario and of the legacy pod are the ones in
deploy/examples, read from there."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from darwin_dra.engine import Network, NeuronGroup, synapses

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "deploy" / "examples"
CHART = REPO / "deploy" / "helm" / "darwin-dra"
NAMESPACE = "darwin-demo"
RELEASE = "darwin"
RELEASE_NAMESPACE = "darwin-dra"
DEMO_LABEL = "darwin.snn.io/demo"
NETWORKS_CONFIGMAP = "networks"
NETWORK_KEY = "recurrent.npz"
NETWORK_PATH = f"/networks/{NETWORK_KEY}"
# Steps of one run of the workload's network (0.1 ms each: 2 s simulated).
RUN_STEPS = 20000
# Seconds between two runs: the workload's log shows its network running for as long as it
# lives, and a kept cluster stays light on a small machine.
RUN_EVERY_S = 30


@dataclass(frozen=True)
class NodeSpec:
    """One node of the demo cluster: its fabric and the model of each chip on it."""

    fabric: str
    models: tuple[str, ...]


# Two nodes with two darwin3 chips on one fabric each, and one node with a single chip of the
# other profile (stronger router, fewer cores): the heterogeneous fleet the scenarios need.
FULL = (
    NodeSpec("wafer-0", ("darwin3", "darwin3")),
    NodeSpec("wafer-1", ("darwin3", "darwin3")),
    NodeSpec("board-2", ("darwin3-fastroute",)),
)


def inventory(nodes: Sequence[str], specs: Sequence[NodeSpec]) -> dict[str, Any]:
    if len(nodes) != len(specs):
        raise ValueError(f"{len(nodes)} nodes for {len(specs)} node specs")
    entries = []
    for i, (name, spec) in enumerate(zip(nodes, specs, strict=True)):
        chips = [
            {"model": model, "serial": f"{'F' if 'fast' in model else 'D3'}-{i}{c:03d}",
             "firmware": "1.4.2"}
            for c, model in enumerate(spec.models)
        ]  # fmt: skip
        entries.append({"name": name, "fabrics": [{"id": spec.fabric, "chips": chips}]})
    return {"apiVersion": "darwin.snn.io/v1alpha1", "kind": "Inventory", "nodes": entries}


def helm_values(image: str, api_host: str, api_port: int, inv: Mapping[str, Any]) -> dict[str, Any]:
    repository, tag = image.rsplit(":", 1)
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        # No kube-proxy on the local cluster: the driver's pods reach the API server at its
        # address on the nodes' bridge.
        "apiServer": {"host": api_host, "port": str(api_port)},
        "inventory": dict(inv),
        "controller": {"replicas": 1},
    }


def network() -> Network:
    """The workloads' network: 400 Poisson-driven neurons, each with 20 random recurrent
    targets (8,000 synapses), small enough for a single domain."""
    rng = np.random.default_rng(3)
    n = 400
    src = np.repeat(np.arange(n), 20)
    dst = rng.integers(0, n, src.size)
    drive = NeuronGroup(count=n, poisson_rate_hz=2000.0, poisson_weight=2.0)
    cols = synapses(src, dst, np.full(src.size, 0.5), np.full(src.size, 15))
    return Network((drive,), *cols, seed=5)


def networks_configmap(npz: bytes) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": NETWORKS_CONFIGMAP},
        "binaryData": {NETWORK_KEY: base64.b64encode(npz).decode()},
    }


def workload_script(steps: int = RUN_STEPS, every_s: int = RUN_EVERY_S) -> str:
    """The container's command: `darwin-dra run` on the partition CDI named, again and again
    (its log is the proof); stops at once on SIGTERM."""
    return (
        "trap 'exit 0' TERM; "
        f"while :; do darwin-dra run --network {NETWORK_PATH} --steps {steps} || exit 1; "
        f"sleep {every_s} & wait $!; done"
    )


def _container(image: str, resources: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": "model",
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["/bin/sh", "-c", workload_script()],
        "resources": dict(resources),
        "volumeMounts": [{"name": "networks", "mountPath": "/networks", "readOnly": True}],
    }


def _pod_spec(
    image: str, resources: Mapping[str, Any], claims: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 2,
        "containers": [_container(image, resources)],
        "volumes": [{"name": "networks", "configMap": {"name": NETWORKS_CONFIGMAP}}],
    }
    if claims:
        spec["resourceClaims"] = [
            {"name": name, "resourceClaimTemplateName": template} for name, template in claims
        ]
    return spec


def claim_pod(name: str, image: str, template: str, claim: str) -> dict[str, Any]:
    """A pod whose container uses one claim made from `template`."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {DEMO_LABEL: name}},
        "spec": _pod_spec(image, {"claims": [{"name": claim}]}, [(claim, template)]),
    }


def legacy_pod(name: str, image: str, limits: Mapping[str, str]) -> dict[str, Any]:
    """A pod written for a device plugin: an extended resource in its limits, no claim."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {DEMO_LABEL: name}},
        "spec": _pod_spec(image, {"limits": dict(limits)}, []),
    }


def deployment(name: str, image: str, template: str, claim: str, replicas: int) -> dict[str, Any]:
    """A service: `replicas` pods, each with a claim of its own made from `template`."""
    labels = {DEMO_LABEL: name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": _pod_spec(image, {"claims": [{"name": claim}]}, [(claim, template)]),
            },
        },
    }


def claim_template(
    name: str,
    requests: Sequence[Mapping[str, Any]],
    constraints: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    devices: dict[str, Any] = {"requests": [dict(r) for r in requests]}
    if constraints:
        devices["constraints"] = [dict(c) for c in constraints]
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name},
        "spec": {"spec": {"devices": devices}},
    }


def request(
    name: str,
    device_class: str,
    *,
    cel: str = "",
    count: int = 1,
    keps: int = 0,
) -> dict[str, Any]:
    exactly: dict[str, Any] = {"deviceClassName": device_class}
    if count != 1:
        exactly["count"] = count
    if cel:
        exactly["selectors"] = [{"cel": {"expression": cel}}]
    if keps:
        exactly["capacity"] = {"requests": {"keps": str(keps)}}
    return {"name": name, "exactly": exactly}


# The examples the demo runs as real pods, in the order it shows them.
EXAMPLE_FILES = (
    "two-domains-one-chip.yaml",
    "legacy-extended-resource.yaml",
    "quad-or-four-domains.yaml",
    "shared-keps.yaml",
    "pipeline-one-fabric.yaml",
)


def example_docs(file: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((EXAMPLES / file).read_text()) if d]


def as_workload(pod: Mapping[str, Any], image: str, avoid: Sequence[str] = ()) -> dict[str, Any]:
    """An example pod as it runs here: its claims and resources as written, its containers
    the driver's image running the network (the examples name a registry this cluster cannot
    reach), and kept off the nodes in `avoid` (the later scenarios need those chips free; the
    scheduler allocates a pod's claims only on a node the pod may run on)."""
    meta = dict(pod["metadata"])
    meta["labels"] = {**meta.get("labels", {}), DEMO_LABEL: meta["name"]}
    [container] = pod["spec"]["containers"]
    spec = _pod_spec(image, container.get("resources", {}), [])
    if pod["spec"].get("resourceClaims"):
        spec["resourceClaims"] = list(pod["spec"]["resourceClaims"])
    if avoid:
        term = {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": list(avoid)}
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [term]}]
                }
            }
        }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def example(file: str, kind: str) -> dict[str, Any]:
    """The first object of `kind` in deploy/examples/`file`."""
    path = EXAMPLES / file
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") == kind:
            found: dict[str, Any] = doc
            return found
    raise ValueError(f"{path}: no {kind}")


def share_keps(capacity_keps: int, per_device: int, step: int = 10) -> int:
    """The KEPS one replica asks so that `per_device` replicas fit on a shared device of
    `capacity_keps` and one more does not, by half a share either way (a multiple of the
    request policy's step)."""
    if per_device < 1 or capacity_keps < step * (2 * per_device + 1):
        raise ValueError(f"cannot split {capacity_keps} KEPS into {per_device} shares")
    keps = (2 * capacity_keps) // (2 * per_device + 1)
    return max(step, keps // step * step)
