"""Command lines of the control-plane components: loopback only, same feature gates everywhere.

Kept apart from the launcher so the flags can be read (and tested) without starting anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Explicit even where on by default, so a cluster of another version fails loudly instead of
# silently dropping the fields the driver depends on.
FEATURE_GATES = (
    "DRAPartitionableDevices",
    "DRAConsumableCapacity",
    "DRADeviceBindingConditions",
    "ResourceHealthStatus",
    "DRADeviceTaints",
    "DRAExtendedResource",
    "DRAPrioritizedList",
    "DRAResourceClaimDeviceStatus",
)
RUNTIME_CONFIG = ",".join(
    f"resource.k8s.io/{v}=true" for v in ("v1", "v1beta2", "v1beta1", "v1alpha3")
)
# What DRA needs (claims from templates, device taints, garbage collection of generated claims),
# what keeps simulated nodes honest (node lifecycle, taint eviction), what pods and the demo's
# workloads need, and the binding and protection of pre-bound volumes (a SpikingPipeline's
# model on a volume; without the protection controllers a deleted claim never goes).
# Cloud, provisioning, attach, certificate and IPAM controllers have nothing to do here.
CONTROLLERS = (
    "namespace-controller",
    "garbage-collector-controller",
    "resourceclaim-controller",
    "device-taint-eviction-controller",
    "node-lifecycle-controller",
    "taint-eviction-controller",
    "pod-garbage-collector-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "replicaset-controller",
    "deployment-controller",
    "daemonset-controller",
    "job-controller",
    "persistentvolume-binder-controller",
    "persistentvolume-protection-controller",
    "persistentvolumeclaim-protection-controller",
)
LOOPBACK = "127.0.0.1"


def feature_gates() -> str:
    return ",".join(f"{gate}=true" for gate in FEATURE_GATES)


@dataclass(frozen=True)
class Ports:
    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int

    def named(self) -> dict[str, int]:
        return {
            "etcd": self.etcd,
            "etcd-peer": self.etcd_peer,
            "kube-apiserver": self.apiserver,
            "kube-controller-manager": self.controller_manager,
            "kube-scheduler": self.scheduler,
        }


def etcd_url(ports: Ports) -> str:
    return f"http://{LOOPBACK}:{ports.etcd}"


def etcd(data_dir: Path, ports: Ports) -> list[str]:
    client, peer = etcd_url(ports), f"http://{LOOPBACK}:{ports.etcd_peer}"
    return [
        "--name=local",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=local={peer}",
        # Throwaway data: skipping fsync makes the tests several times faster.
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def apiserver(pki: Path, ports: Ports, *, node_gateway: str | None = None) -> list[str]:
    """With real nodes (`node_gateway`: the host's address on their bridge) the API server
    also listens there and reaches each kubelet at its InternalIP with a client certificate."""
    real_nodes = []
    if node_gateway:
        real_nodes = [
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP",
        ]
    return [
        f"--etcd-servers={etcd_url(ports)}",
        f"--bind-address={'0.0.0.0' if node_gateway else LOOPBACK}",
        f"--advertise-address={node_gateway or LOOPBACK}",
        *real_nodes,
        f"--secure-port={ports.apiserver}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        # The front-proxy settings publish a request-header CA; without them the scheduler and
        # controller manager log an error about it every few seconds.
        f"--requestheader-client-ca-file={pki / 'ca.crt'}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
        f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--feature-gates={feature_gates()}",
        f"--runtime-config={RUNTIME_CONFIG}",
        "--endpoint-reconciler-type=none",
        "--profiling=false",
        "--v=1",
    ]


def _controller_common(name: str, pki: Path, kubeconfig: Path, port: int) -> list[str]:
    return [
        f"--bind-address={LOOPBACK}",
        f"--secure-port={port}",
        f"--tls-cert-file={pki / f'{name}-serving.crt'}",
        f"--tls-private-key-file={pki / f'{name}-serving.key'}",
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        f"--feature-gates={feature_gates()}",
        "--profiling=false",
        "--v=1",
    ]


def controller_manager(pki: Path, kubeconfig: Path, ports: Ports) -> list[str]:
    name = "kube-controller-manager"
    return [
        *_controller_common(name, pki, kubeconfig, ports.controller_manager),
        f"--controllers={','.join(CONTROLLERS)}",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}",
        # Each controller acts under its own service account and RBAC role, as in kubeadm.
        "--use-service-account-credentials=true",
    ]


def scheduler(pki: Path, kubeconfig: Path, ports: Ports, config: Path | None = None) -> list[str]:
    """kube-scheduler's flags; with ``config`` (a KubeSchedulerConfiguration file, see
    ``scheduler_configuration``) --config, and without the flags it would then ignore
    (--kubeconfig, --profiling, --kube-api-qps...: their values live in the file)."""
    args = _controller_common("kube-scheduler", pki, kubeconfig, ports.scheduler)
    if config is None:
        return args
    ignored = ("--kubeconfig=", "--profiling=")
    return [a for a in args if not a.startswith(ignored)] + [f"--config={config}"]


def scheduler_configuration(kubeconfig: Path, settings: Mapping[str, Any]) -> dict[str, Any]:
    """A KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1): the launcher's defaults
    (its kubeconfig, no leader election, no profiling) with ``settings`` merged over them
    (e.g. ``percentageOfNodesToScore``; a mapping merges into a mapping, anything else
    replaces)."""
    base: dict[str, Any] = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "leaderElection": {"leaderElect": False},
        "enableProfiling": False,
    }
    return _merged(base, settings)


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = _merged(old, value)
        else:
            out[key] = value
    return out


def kubelet_harness(
    kubeconfig: Path, node: str, plugins_registry: Path, state_dir: Path
) -> list[str]:
    return [
        f"--kubeconfig={kubeconfig}",
        f"--node-name={node}",
        f"--plugins-registry={plugins_registry}",
        f"--state-dir={state_dir}",
        f"--feature-gates={feature_gates()}",
        "--v=2",
    ]
