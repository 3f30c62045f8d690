"""Setting the demo up, one timed step each: the cluster's binaries, the nodes' packages,
containerd, the images, the cluster with real nodes, the image on the nodes, the chart
installed with helm, and the driver publishing every node's chips."""

from __future__ import annotations

import json
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from darwin_dra import DRIVER_NAME, __version__
from darwin_dra.cluster import build, hostdeps, images, launcher, realnode
from darwin_dra.cluster.state import ClusterState
from darwin_dra.demo import manifests
from darwin_dra.demo.story import Story, wait_for
from darwin_dra.demo.tools import HELM_VERSION, Kubectl, Tool, ensure_helm, helm

CLASSES = ("darwin.snn.io", "darwin-domain.snn.io", "darwin-shared.snn.io", "darwin-chip.snn.io")


def configure_logs(path: Path) -> None:
    """structlog (this process's own log lines: the launcher's, the builders') as JSON into
    `path`; the console keeps only the story."""
    path.parent.mkdir(parents=True, exist_ok=True)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.WriteLoggerFactory(file=path.open("a")),
        cache_logger_on_first_use=False,
    )


@dataclass
class Running:
    """The demo's cluster once the driver runs on it."""

    cluster: launcher.LocalCluster
    state: ClusterState
    kubectl: Kubectl
    helm: Tool
    image: str
    nodes: list[str]
    logs: Path


def image_name(tar: Path) -> str:
    """The image a `--image` OCI tar holds (its index's containerd name)."""
    try:
        with tarfile.open(tar) as t:
            member = t.extractfile("index.json")
            if member is None:
                raise ValueError("no index.json")
            index = json.load(member)
        name = index["manifests"][0]["annotations"]["io.containerd.image.name"]
    except (OSError, KeyError, IndexError, ValueError, tarfile.TarError) as exc:
        raise ValueError(f"--image {tar}: not an OCI image tar with a name ({exc})") from exc
    return str(name)


def prepare(story: Story, image_tar: Path | None) -> tuple[build.Binaries, Path, str]:
    """Everything built or installed before a cluster starts; returns the binaries and the
    driver image (tar, name)."""
    with story.step(
        "Kubernetes binaries (etcd, kube-apiserver, -scheduler, -controller-manager, kubelet, "
        "kubectl), built from their Go modules"
    ):
        binaries = build.ensure_binaries()
    with story.step("the real nodes' Debian packages (runc, CNI plugins, iproute2, mmdebstrap)"):
        hostdeps.ensure({**hostdeps.NODE_PACKAGES, **hostdeps.IMAGE_PACKAGES})
    with story.step(f"containerd {build.CONTAINERD_VERSION}, built from its Go module"):
        build.ensure_containerd()
    with story.step("the pod sandbox (pause) and busybox images, from Debian's busybox-static"):
        images.busybox_images()
    with story.step(f"helm {HELM_VERSION}, built from its Go module"):
        ensure_helm()
    if image_tar is not None:
        with story.step(f"the driver's image from {image_tar}"):
            return binaries, image_tar, image_name(image_tar)
    with story.step(
        "the driver's image: Debian bookworm and the project's wheel (cached by content; a "
        "source change rebuilds it in minutes)"
    ):
        result = images.driver_image(manifests.REPO, __version__, python=sys.executable)
    return binaries, result.image.tar, result.image.name


def start_cluster(
    story: Story,
    cluster: launcher.LocalCluster,
    specs: Sequence[manifests.NodeSpec],
) -> ClusterState:
    n = cluster.config.nodes
    chips = sum(len(s.models) for s in specs)
    with story.step(
        f"the cluster: control plane and {n} real nodes (a kubelet, containerd and runc each, "
        f"in namespaces of their own), {chips} simulated chips"
    ):
        return cluster.up()


def install_driver(
    story: Story,
    cluster: launcher.LocalCluster,
    state: ClusterState,
    specs: Sequence[manifests.NodeSpec],
    tar: Path,
    image: str,
    work: Path,
) -> Running:
    logs = work / "logs"
    nodes = [n.name for n in state.nodes]
    with story.step(f"the driver's image into the containerd of {len(nodes)} nodes"):
        launcher.import_image(state, tar)
    kubectl = Kubectl(Path(state.bin_dir) / "kubectl", cluster.kubeconfig, logs / "kubectl.log")
    tool = helm(cluster.kubeconfig, logs / "helm.log", work / "helm")
    gateway = realnode.networks(state.slot, 1)[0].gateway
    inv = manifests.inventory(nodes, specs)
    values = work / "values.json"
    values.write_text(json.dumps(
        manifests.helm_values(image, gateway, state.ports["kube-apiserver"], inv), indent=2
    ))  # fmt: skip
    with story.step(
        "helm install: the kubelet plugin and chip host DaemonSets, the controller Deployment"
    ):
        tool.run("install", manifests.RELEASE, str(manifests.CHART), "-n",
                 manifests.RELEASE_NAMESPACE, "--create-namespace", "-f", str(values),
                 "--wait", "--timeout", "5m", timeout=330)  # fmt: skip

    def published() -> bool:
        slices = kubectl.items("resourceslices")
        pools = {s["spec"]["pool"]["name"] for s in slices if s["spec"]["driver"] == DRIVER_NAME}
        names = {c["metadata"]["name"] for c in kubectl.items("deviceclasses")}
        return set(nodes) <= pools and set(CLASSES) <= names

    with story.step("every node's chips published as ResourceSlices, the DeviceClasses"):
        wait_for("slices of every node and the DeviceClasses", published, timeout=120)
    return Running(cluster, state, kubectl, tool, image, nodes, logs)
