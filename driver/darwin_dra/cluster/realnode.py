"""What a real node of the local cluster is made of, as data: its addresses, the directories
bound over the kubelet's and containerd's fixed host paths inside its mount namespace, and the
configuration files of its kubelet, containerd and CNI network (pure; nodehost.py applies them).

Every real node runs in a mount and network namespace of its own: a veth pair joins it to one
host bridge per cluster, each node routes the other nodes' pod CIDRs to them over that bridge,
and the API server (bound to the bridge address) reaches every kubelet at its InternalIP.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Address plan. Slot k (one per running cluster) owns the node network 10.240.k.0/24 (bridge at
# .1, node i at .10+i) and the pod networks 10.(64+k).i.0/24.
MAX_SLOTS = 64
MAX_REAL_NODES = 200
KUBELET_PORT = 10250
# The fixed host paths the kubelet, containerd, runc and CNI write to; inside a node's mount
# namespace each is a bind mount of a directory of that node.
BOUND_PATHS = (
    "/var/lib/kubelet",
    "/var/log/pods",
    "/var/log/containers",
    "/run/containerd",
    "/var/lib/cni",
    "/run/cdi",
    "/var/lib/darwin-dra",
)
RUNC = "/usr/sbin/runc"
CNI_BIN_DIR = "/usr/lib/cni"


def cluster_tag(directory: Path) -> str:
    """Six hex digits naming a cluster's host objects (bridge, veths, cgroups)."""
    return hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:6]


@dataclass(frozen=True)
class NodeNetwork:
    slot: int
    index: int

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"10.240.{self.slot}.0/24")

    @property
    def gateway(self) -> str:
        return f"10.240.{self.slot}.1"

    @property
    def node_ip(self) -> str:
        return f"10.240.{self.slot}.{10 + self.index}"

    @property
    def pod_cidr(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"10.{64 + self.slot}.{self.index}.0/24")


def networks(slot: int, count: int) -> list[NodeNetwork]:
    if not 0 <= slot < MAX_SLOTS:
        raise ValueError(f"network slot {slot} is outside 0..{MAX_SLOTS - 1}")
    if not 0 <= count <= MAX_REAL_NODES:
        raise ValueError(f"{count} real nodes: at most {MAX_REAL_NODES} fit one node network")
    return [NodeNetwork(slot, i) for i in range(count)]


def slot_networks(slot: int) -> list[ipaddress.IPv4Network]:
    """Everything slot `slot` routes: its node network and its pod networks."""
    return [
        ipaddress.IPv4Network(f"10.240.{slot}.0/24"),
        ipaddress.IPv4Network(f"10.{64 + slot}.0.0/16"),
    ]


def free_slot(taken: Sequence[ipaddress.IPv4Network]) -> int:
    """The first slot none of whose networks overlaps a route or address already on the host."""
    for slot in range(MAX_SLOTS):
        if not any(n.overlaps(t) for n in slot_networks(slot) for t in taken):
            return slot
    raise ValueError(f"all {MAX_SLOTS} node-network slots overlap networks already on this host")


def bridge_name(tag: str) -> str:
    return f"dra{tag}"  # at most 15 characters, the kernel's limit


def veth_name(tag: str, index: int) -> str:
    return f"dra{tag}n{index}"


def cgroup_root(tag: str, index: int) -> str:
    """The kubelet's cgroupRoot: its kubepods hierarchy goes below it, one per node."""
    return f"/darwin-dra-{tag}-{index}"


@dataclass(frozen=True)
class NodeLayout:
    """The host directories of one real node."""

    base: Path

    def bound(self, target: str) -> Path:
        """The directory bind-mounted over `target` inside the node's mount namespace."""
        return self.base / "root" / target.strip("/").replace("/", "-")

    @property
    def kubelet_dir(self) -> Path:
        return self.bound("/var/lib/kubelet")

    @property
    def cdi_dir(self) -> Path:
        return self.bound("/run/cdi")

    @property
    def containerd_root(self) -> Path:
        return self.base / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.base / "containerd.sock"

    @property
    def runc_root(self) -> Path:
        return self.base / "runc"

    @property
    def cni_conf_dir(self) -> Path:
        return self.base / "cni"

    @property
    def config_dir(self) -> Path:
        return self.base / "config"

    @property
    def kubelet_config(self) -> Path:
        return self.config_dir / "kubelet.yaml"

    @property
    def containerd_config(self) -> Path:
        return self.config_dir / "containerd.toml"


def kubelet_configuration(
    *,
    net: NodeNetwork,
    tag: str,
    runtime_socket: Path,
    client_ca: Path,
    feature_gates: Sequence[str],
) -> dict[str, Any]:
    """The KubeletConfiguration of a real node on these machines (see docs/testing.md)."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # The machines have cgroup v1 only; 1.37 refuses it unless told not to.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root(tag, net.index),
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{runtime_socket}",
        "address": net.node_ip,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "podLogsDir": "/var/log/pods",
        # The API server authenticates with a client certificate of the cluster CA.
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        # The disk is shared with everything else on the machine: evict only when nearly full.
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
            "imagefs.inodesFree": "1%",
        },
        # Images are imported, never pulled: collecting one would lose it for good.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "makeIPTablesUtilChains": False,  # no iptables on these machines
        "nodeStatusUpdateFrequency": "10s",
        # A crashed container is started again after at most 5 s, not after a back-off doubling
        # up to 5 min (KubeletCrashLoopBackOffMax, beta and on in 1.37): the kill tests crash
        # the plugin's container once per step of prepare and unprepare, eight times in a row.
        "crashLoopBackOff": {"maxContainerRestartPeriod": "5s"},
        "featureGates": dict.fromkeys(feature_gates, True),
    }


def kubelet_args(
    *,
    config: Path,
    kubeconfig: Path,
    name: str,
    net: NodeNetwork,
    labels: Mapping[str, str],
) -> list[str]:
    # The kubelet sets hostname, os and arch itself and may set only some labels of the
    # kubernetes.io domains; the others are set as today by --node-labels.
    own = {"kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch"}
    extra = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in own)
    return [
        f"--config={config}",
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={name}",
        f"--node-ip={net.node_ip}",
        f"--node-labels={extra}",
        "--v=2",
    ]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def toml(tables: Mapping[str, Mapping[str, Any]], top: Mapping[str, Any]) -> str:
    """The small TOML subset containerd's config needs: scalars, lists, dotted tables."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in top.items()]
    for table, values in tables.items():
        lines += ["", f"[{table}]"] + [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def containerd_config(*, layout: NodeLayout, sandbox_image: str, cdi_dirs: Sequence[Path]) -> str:
    """containerd v2 configuration (version 3) of one node: its own root, state and socket, the
    CRI plugin with CDI on, runc from Debian, the node's CNI network, a local pause image."""
    cri_rt = "plugins.'io.containerd.cri.v1.runtime'"
    runc = f"{cri_rt}.containerd.runtimes.runc"
    return toml(
        {
            "grpc": {"address": str(layout.containerd_socket)},
            "ttrpc": {"address": f"{layout.containerd_socket}.ttrpc"},
            cri_rt: {
                # CDI is always on in containerd 2: only where the specs are is configured.
                "cdi_spec_dirs": [str(d) for d in cdi_dirs],
                # The machines lack CAP_SYS_RESOURCE: runc cannot lower oom_score_adj.
                "restrict_oom_score_adj": True,
                "netns_mounts_under_state_dir": True,
            },
            f"{cri_rt}.containerd": {"default_runtime_name": "runc"},
            runc: {"runtime_type": "io.containerd.runc.v2"},
            f"{runc}.options": {
                "BinaryName": RUNC,
                "Root": str(layout.runc_root),
                "SystemdCgroup": False,
            },
            f"{cri_rt}.cni": {"bin_dirs": [CNI_BIN_DIR], "conf_dir": str(layout.cni_conf_dir)},
            "plugins.'io.containerd.cri.v1.images'": {"snapshotter": "overlayfs"},
            "plugins.'io.containerd.cri.v1.images'.pinned_images": {"sandbox": sandbox_image},
            "plugins.'io.containerd.grpc.v1.cri'": {
                "disable_tcp_service": True,
                "stream_server_address": "127.0.0.1",
                "stream_server_port": "0",
            },
            # NRI's socket is a fixed host path; no node here uses NRI.
            "plugins.'io.containerd.nri.v1.nri'": {"disable": True},
            "plugins.'io.containerd.internal.v1.opt'": {"path": str(layout.base / "opt")},
        },
        {
            "version": 3,
            "root": str(layout.containerd_root),
            "state": "/run/containerd",
        },
    )


def cni_config(net: NodeNetwork) -> dict[str, Any]:
    """A bridge network with host-local addresses from the node's pod CIDR (no masquerade:
    there is no iptables here; nodes route each other's pod CIDRs instead)."""
    return {
        "cniVersion": "1.0.0",
        "name": "darwin-dra",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": str(net.pod_cidr)}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
        ],
    }
