"""Starting a local cluster's nodes: simulated ones (a node agent and one kubelet harness per
node) or real ones (per node a namespace holder, containerd and a kubelet; see realnode.py and
nodehost.py), for LocalCluster.up once the control plane answers."""

from __future__ import annotations

import fcntl
import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from darwin_dra import DRIVER_NAME, kubeapi
from darwin_dra.cluster import build, components, hostdeps, images, nodehost, realnode
from darwin_dra.cluster import nodes as simulated
from darwin_dra.cluster.errors import ComponentError
from darwin_dra.cluster.process import Process, tail
from darwin_dra.cluster.recorded import running_directories
from darwin_dra.cluster.state import NodeRecord

if TYPE_CHECKING:
    from darwin_dra.cluster.launcher import LocalCluster

log = structlog.get_logger(__name__)

NODE_LABEL_DOMAIN = DRIVER_NAME


def node_name(index: int) -> str:
    return f"darwin-node-{index}"


def node_labels(name: str, index: int) -> dict[str, str]:
    """What a kubelet on a real machine reports, plus the rack the node sits in."""
    return {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "darwin-sim",
        "topology.kubernetes.io/region": "local",
        "topology.kubernetes.io/zone": f"local-{'ab'[index % 2]}",
        f"{NODE_LABEL_DOMAIN}/simulated": "true",
    }


def start_simulated(cluster: LocalCluster, api: kubeapi.Kube, creds: dict[str, Path]) -> None:
    """The node agent (every node's object and Lease) and one kubelet harness per node."""
    assert cluster.state is not None
    nodes: dict[str, dict[str, str]] = {}
    for i in range(cluster.config.nodes):
        name = node_name(i)
        nodes[name] = node_labels(name, i)
        base = cluster.dir / "nodes" / name
        record = NodeRecord(
            name=name,
            plugins_registry=str(base / "plugins_registry"),
            plugins=str(base / "plugins"),
            labels=nodes[name],
        )
        for d in (record.plugins_registry, record.plugins):
            Path(d).mkdir(parents=True, exist_ok=True)
        cluster.state.nodes.append(record)
    nodes_file = cluster.dir / "nodes.json"
    nodes_file.write_text(json.dumps(nodes, indent=2))
    ready = cluster.dir / "node-agent.ready"
    ready.unlink(missing_ok=True)
    agent = cluster.start_process(
        "node-agent",
        [
            "-m",
            "darwin_dra.cluster.heartbeat",
            f"--kubeconfig={cluster.kubeconfig}",
            f"--nodes={nodes_file}",
            f"--version={cluster.bin.version}",
            f"--ready-file={ready}",
        ],
        executable=sys.executable,
    )
    agent.wait_ready(ready.exists, 60)
    harnesses: list[tuple[Process, Path]] = []
    for record in cluster.state.nodes:
        state_dir = cluster.dir / "nodes" / record.name / "state"
        (state_dir / "ready").unlink(missing_ok=True)
        args = components.kubelet_harness(
            creds["node:" + record.name],
            record.name,
            Path(record.plugins_registry),
            state_dir,
        )
        proc = cluster.start_process(
            f"kubelet-harness[{record.name}]", args, binary="kubelet-harness"
        )
        harnesses.append((proc, state_dir / "ready"))
    for proc, marker in harnesses:
        proc.wait_ready(marker.exists, 60)
    names = [n.name for n in cluster.state.nodes]
    try:
        agent.wait_ready(lambda: not simulated.nodes_not_ready(api, names), 90)
    except ComponentError as exc:
        why = "; ".join(simulated.nodes_not_ready(api, names))
        raise ComponentError("node-agent", f"nodes not ready: {why}", exc.log_tail) from exc


def prepare_real(cluster: LocalCluster) -> str:
    """Host packages, containerd, images; clean-up after crashed clusters; this cluster's
    network slot and bridge. Returns the bridge address (where kubelets reach the API)."""
    assert cluster.state is not None
    hostdeps.ensure(hostdeps.NODE_PACKAGES)
    cluster.containerd = build.ensure_containerd()
    busybox, pause = images.busybox_images()
    cluster.node_images = [busybox, pause]
    cluster.state.images = {"busybox": busybox.name, "pause": pause.name}
    nodehost.REGISTRY.mkdir(parents=True, exist_ok=True)
    with (nodehost.REGISTRY / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for directory in nodehost.clean_stale(running_directories()):
            log.warning("cleaned up after a cluster that is gone", directory=directory)
        taken = nodehost.host_networks()
        for used in nodehost.slots_in_use():
            taken += realnode.slot_networks(used)
        slot = realnode.free_slot(taken)
        tag = realnode.cluster_tag(cluster.dir)
        nodehost.register(tag, cluster.dir, slot)
        cluster.state.tag, cluster.state.slot = tag, slot
        cluster.state.save()
        nodehost.make_mount_points()
        nodehost.make_bridge(tag, slot)
    return realnode.networks(slot, 1)[0].gateway


def start_real(cluster: LocalCluster, api: kubeapi.Kube, creds: dict[str, Path]) -> None:
    """Per node: a namespace holder, bind mounts and network, containerd with the images
    imported, then the kubelet; finally routes between the nodes and all of them Ready."""
    assert cluster.state is not None
    tag, slot = cluster.state.tag, cluster.state.slot
    nets = realnode.networks(slot, cluster.config.nodes)
    ctr = str(cluster.containerd / "ctr")
    for net in nets:
        name = node_name(net.index)
        layout = realnode.NodeLayout(cluster.dir / "nodes" / name)
        labels = node_labels(name, net.index)
        for d in (layout.config_dir, layout.cni_conf_dir, layout.kubelet_dir, layout.cdi_dir):
            d.mkdir(parents=True, exist_ok=True)
        (layout.cni_conf_dir / "10-darwin-dra.conflist").write_text(
            json.dumps(realnode.cni_config(net), indent=2)
        )
        layout.containerd_config.write_text(
            realnode.containerd_config(
                layout=layout,
                sandbox_image=cluster.state.images["pause"],
                # The node's CDI directory, bound over /run/cdi (= /var/run/cdi) inside it.
                cdi_dirs=[Path("/run/cdi")],
            )
        )
        kubelet_cfg = realnode.kubelet_configuration(
            net=net,
            tag=tag,
            runtime_socket=layout.containerd_socket,
            client_ca=cluster.dir / "pki" / "ca.crt",
            feature_gates=components.FEATURE_GATES,
        )
        layout.kubelet_config.write_text(json.dumps(kubelet_cfg, indent=2))
        nodehost.make_cgroup_root(tag, net.index)

        wrapper, program = nodehost.holder_argv(layout.base)
        holder = cluster.start_process(
            f"node[{name}]", program[1:], executable=program[0], wrapper=wrapper
        )
        nodehost.wait_namespaced(holder.pid)
        cluster.holders.append(holder.pid)
        nodehost.bind_mounts(holder.pid, layout)
        nodehost.plug_node(holder.pid, tag, net)
        into = nodehost.in_node(holder.pid)
        containerd = cluster.start_process(
            f"containerd[{name}]",
            [f"--config={layout.containerd_config}"],
            executable=str(cluster.containerd / "containerd"),
            wrapper=into,
            path=cluster.containerd,
        )
        sock = str(layout.containerd_socket)
        containerd.wait_ready(functools.partial(_ok, [ctr, f"--address={sock}", "version"]), 60)
        for image in cluster.node_images:
            nodehost.run(
                [*into, ctr, f"--address={sock}", "-n", "k8s.io", "images", "import",
                 str(image.tar)],
                what=f"import {image.name} into {name}",
                timeout=300,
            )  # fmt: skip
        args = realnode.kubelet_args(
            config=layout.kubelet_config,
            kubeconfig=creds["node:" + name],
            name=name,
            net=net,
            labels=labels,
        )
        cluster.start_process(f"kubelet[{name}]", args, binary="kubelet", wrapper=into)
        cluster.state.nodes.append(
            NodeRecord(
                name=name,
                plugins_registry=str(layout.kubelet_dir / "plugins_registry"),
                plugins=str(layout.kubelet_dir / "plugins"),
                labels=labels,
                kind="real",
                cdi_dir=str(layout.cdi_dir),
                node_ip=net.node_ip,
                containerd_socket=sock,
            )
        )
        cluster.state.save()
    nodehost.route_pods(cluster.holders, nets)
    names = [n.name for n in cluster.state.nodes]
    kubelets = [p for p in cluster.processes if p.name.startswith("kubelet[")]

    def all_ready() -> bool:
        for proc in kubelets:
            if not proc.alive():
                raise ComponentError(proc.name, "exited", tail(proc.log_path))
        return not simulated.nodes_not_ready(api, names)

    try:
        kubelets[-1].wait_ready(all_ready, 120)
    except ComponentError as exc:
        why = "; ".join(_not_ready(api, names))
        raise ComponentError("kubelet", f"nodes not ready: {why}", exc.log_tail) from exc


def _ok(cmd: list[str]) -> bool:
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def _not_ready(api: kubeapi.Kube, names: list[str]) -> list[str]:
    try:
        return simulated.nodes_not_ready(api, names)
    except kubeapi.NotFound as exc:
        return [f"a node is not registered ({exc})"]
