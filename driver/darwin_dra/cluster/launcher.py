"""Starts and stops a local cluster: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler on loopback, and N nodes: real ones (a kubelet and a containerd each, in a mount
and network namespace of its own, see realnode.py and nodehost.py) or, for many nodes that need
not run pods, simulated ones (a node agent and one kubelet harness per node).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import functools
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog

from darwin_dra import DRIVER_NAME, kubeapi
from darwin_dra.cluster import build, components, hostdeps, images, nodehost, pki, realnode
from darwin_dra.cluster import nodes as simulated
from darwin_dra.cluster.errors import ClusterError, ComponentError, PortInUseError
from darwin_dra.cluster.process import Process, start, tail
from darwin_dra.cluster.state import ClusterState, NodeRecord, ProcessRecord

log = structlog.get_logger(__name__)

NODE_LABEL_DOMAIN = DRIVER_NAME
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def check_port_free(component: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PortInUseError(component, f"port 127.0.0.1:{port} is in use ({exc})") from exc


NodeKind = Literal["real", "harness"]


@dataclass(frozen=True)
class ClusterConfig:
    directory: Path
    nodes: int = 2
    apiserver_port: int | None = None
    start_timeout: float = 180.0
    # Extra flags by component name (e.g. a benchmark raising kube-scheduler's client QPS).
    extra_args: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # real: kubelet + containerd + runc per node, pods really run. harness: simulated nodes
    # (kubelet-harness + node agent), for many nodes that need not run pods.
    node_kind: NodeKind = "real"


class LocalCluster:
    """One cluster in one directory. `up` either returns a running cluster or stops it all."""

    def __init__(self, config: ClusterConfig, binaries: build.Binaries) -> None:
        self.config = config
        self.bin = binaries
        self.dir = config.directory.resolve()
        self.processes: list[Process] = []
        self.state: ClusterState | None = None
        self._ssl: ssl.SSLContext | None = None
        self._holders: list[int] = []
        # How each component was started, so that `restart` can start it again the same way.
        self._recipes: dict[str, tuple[list[str], dict[str, Any]]] = {}
        self._containerd = Path()
        self._images: list[images.Image] = []

    @property
    def real(self) -> bool:
        return self.config.node_kind == "real" and self.config.nodes > 0

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    def up(self) -> ClusterState:
        existing = ClusterState.load(self.dir)
        if existing and any(p.process().alive() for p in existing.processes):
            raise ClusterError(f"a cluster is already running in {self.dir}; run `cluster down`")
        try:
            return self._up()
        except BaseException:
            self.down()
            raise

    def _up(self) -> ClusterState:
        cfg = self.config
        self.dir.mkdir(parents=True, exist_ok=True)
        # A fresh cluster every time: stale etcd data would hold objects signed by an old CA.
        for stale in ("etcd", "nodes", "logs", "pki"):
            shutil.rmtree(self.dir / stale, ignore_errors=True)
        ports = components.Ports(
            etcd=free_port(),
            etcd_peer=free_port(),
            apiserver=cfg.apiserver_port or free_port(),
            controller_manager=free_port(),
            scheduler=free_port(),
        )
        for component, port in ports.named().items():
            check_port_free(component.removesuffix("-peer"), port)
        server = f"https://127.0.0.1:{ports.apiserver}"
        state = ClusterState(
            directory=str(self.dir),
            version=self.bin.version,
            server=server,
            kubeconfig=str(self.kubeconfig),
            bin_dir=str(self.bin.directory),
            ports=ports.named(),
        )
        self.state = state
        gateway = self._prepare_real_nodes() if self.real else None
        creds = self._pki(server, gateway)
        pki_dir = self.dir / "pki"

        etcd = self._start("etcd", components.etcd(self.dir / "etcd", ports))
        health = f"{components.etcd_url(ports)}/health"
        etcd.wait_ready(lambda: self._get(health, tls=False), cfg.start_timeout)
        apiserver_args = components.apiserver(pki_dir, ports, node_gateway=gateway)
        apiserver = self._start("kube-apiserver", apiserver_args)
        apiserver.wait_ready(lambda: self._get(f"{server}/readyz"), cfg.start_timeout)

        kcm_args = components.controller_manager(pki_dir, creds["kube-controller-manager"], ports)
        kcm = self._start("kube-controller-manager", kcm_args)
        sched_args = components.scheduler(pki_dir, creds["kube-scheduler"], ports)
        sched = self._start("kube-scheduler", sched_args)
        kcm_health = f"https://127.0.0.1:{ports.controller_manager}/healthz"
        kcm.wait_ready(lambda: self._get(kcm_health), 120)
        sched_health = f"https://127.0.0.1:{ports.scheduler}/healthz"
        sched.wait_ready(lambda: self._get(sched_health), 120)

        api = kubeapi.connect(self.kubeconfig)
        try:
            if self.real:
                self._start_real_nodes(api, creds)
            else:
                self._start_nodes(api, creds)
            # Pods are rejected until the service-account controller made `default`; wait
            # here once rather than in every test.
            kcm.wait_ready(lambda: api.service_account_exists("default"), 60)
        finally:
            api.close()
        state.save()
        log.info("cluster up", server=server, kubeconfig=str(self.kubeconfig))
        return state

    def _start_nodes(self, api: kubeapi.Kube, creds: dict[str, Path]) -> None:
        assert self.state is not None
        nodes: dict[str, dict[str, str]] = {}
        for i in range(self.config.nodes):
            name = node_name(i)
            nodes[name] = node_labels(name, i)
            base = self.dir / "nodes" / name
            record = NodeRecord(
                name=name,
                plugins_registry=str(base / "plugins_registry"),
                plugins=str(base / "plugins"),
                labels=nodes[name],
            )
            for d in (record.plugins_registry, record.plugins):
                Path(d).mkdir(parents=True, exist_ok=True)
            self.state.nodes.append(record)
        nodes_file = self.dir / "nodes.json"
        nodes_file.write_text(json.dumps(nodes, indent=2))
        ready = self.dir / "node-agent.ready"
        ready.unlink(missing_ok=True)
        agent = self._start(
            "node-agent",
            [
                "-m",
                "darwin_dra.cluster.heartbeat",
                f"--kubeconfig={self.kubeconfig}",
                f"--nodes={nodes_file}",
                f"--version={self.bin.version}",
                f"--ready-file={ready}",
            ],
            executable=sys.executable,
        )
        agent.wait_ready(ready.exists, 60)
        harnesses: list[tuple[Process, Path]] = []
        for record in self.state.nodes:
            state_dir = self.dir / "nodes" / record.name / "state"
            (state_dir / "ready").unlink(missing_ok=True)
            args = components.kubelet_harness(
                creds["node:" + record.name],
                record.name,
                Path(record.plugins_registry),
                state_dir,
            )
            proc = self._start(f"kubelet-harness[{record.name}]", args, binary="kubelet-harness")
            harnesses.append((proc, state_dir / "ready"))
        for proc, marker in harnesses:
            proc.wait_ready(marker.exists, 60)
        names = [n.name for n in self.state.nodes]
        try:
            agent.wait_ready(lambda: not simulated.nodes_not_ready(api, names), 90)
        except ComponentError as exc:
            why = "; ".join(simulated.nodes_not_ready(api, names))
            raise ComponentError("node-agent", f"nodes not ready: {why}", exc.log_tail) from exc

    def _prepare_real_nodes(self) -> str:
        """Host packages, containerd, images; clean-up after crashed clusters; this cluster's
        network slot and bridge. Returns the bridge address (where kubelets reach the API)."""
        assert self.state is not None
        hostdeps.ensure(hostdeps.NODE_PACKAGES)
        self._containerd = build.ensure_containerd()
        busybox, pause = images.busybox_images()
        self._images = [busybox, pause]
        self.state.images = {"busybox": busybox.name, "pause": pause.name}
        nodehost.REGISTRY.mkdir(parents=True, exist_ok=True)
        with (nodehost.REGISTRY / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for directory in nodehost.clean_stale(running_directories()):
                log.warning("cleaned up after a cluster that is gone", directory=directory)
            taken = nodehost.host_networks()
            for used in nodehost.slots_in_use():
                taken += realnode.slot_networks(used)
            slot = realnode.free_slot(taken)
            tag = realnode.cluster_tag(self.dir)
            nodehost.register(tag, self.dir, slot)
            self.state.tag, self.state.slot = tag, slot
            self.state.save()
            nodehost.make_mount_points()
            nodehost.make_bridge(tag, slot)
        return realnode.networks(slot, 1)[0].gateway

    def _start_real_nodes(self, api: kubeapi.Kube, creds: dict[str, Path]) -> None:
        """Per node: a namespace holder, bind mounts and network, containerd with the images
        imported, then the kubelet; finally routes between the nodes and all of them Ready."""
        assert self.state is not None
        tag, slot = self.state.tag, self.state.slot
        nets = realnode.networks(slot, self.config.nodes)
        ctr = str(self._containerd / "ctr")
        for net in nets:
            name = node_name(net.index)
            layout = realnode.NodeLayout(self.dir / "nodes" / name)
            labels = node_labels(name, net.index)
            for d in (layout.config_dir, layout.cni_conf_dir, layout.kubelet_dir, layout.cdi_dir):
                d.mkdir(parents=True, exist_ok=True)
            (layout.cni_conf_dir / "10-darwin-dra.conflist").write_text(
                json.dumps(realnode.cni_config(net), indent=2)
            )
            layout.containerd_config.write_text(
                realnode.containerd_config(
                    layout=layout,
                    sandbox_image=self.state.images["pause"],
                    # The node's CDI directory, bound over /run/cdi (= /var/run/cdi) inside it.
                    cdi_dirs=[Path("/run/cdi")],
                )
            )
            kubelet_cfg = realnode.kubelet_configuration(
                net=net,
                tag=tag,
                runtime_socket=layout.containerd_socket,
                client_ca=self.dir / "pki" / "ca.crt",
                feature_gates=components.FEATURE_GATES,
            )
            layout.kubelet_config.write_text(json.dumps(kubelet_cfg, indent=2))
            nodehost.make_cgroup_root(tag, net.index)

            wrapper, program = nodehost.holder_argv(layout.base)
            holder = self._start(
                f"node[{name}]", program[1:], executable=program[0], wrapper=wrapper
            )
            nodehost.wait_namespaced(holder.pid)
            self._holders.append(holder.pid)
            nodehost.bind_mounts(holder.pid, layout)
            nodehost.plug_node(holder.pid, tag, net)
            into = nodehost.in_node(holder.pid)
            containerd = self._start(
                f"containerd[{name}]",
                [f"--config={layout.containerd_config}"],
                executable=str(self._containerd / "containerd"),
                wrapper=into,
                path=self._containerd,
            )
            sock = str(layout.containerd_socket)
            containerd.wait_ready(functools.partial(_ok, [ctr, f"--address={sock}", "version"]), 60)
            for image in self._images:
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
            self._start(f"kubelet[{name}]", args, binary="kubelet", wrapper=into)
            self.state.nodes.append(
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
            self.state.save()
        nodehost.route_pods(self._holders, nets)
        names = [n.name for n in self.state.nodes]
        kubelets = [p for p in self.processes if p.name.startswith("kubelet[")]

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

    def _pki(self, server: str, gateway: str | None = None) -> dict[str, Path]:
        """Certificates for every component; returns the kubeconfig of each client identity."""
        ca = pki.CertificateAuthority(self.dir / "pki")
        ca.issue("apiserver", "kube-apiserver", server=True, ips=(gateway,) if gateway else ())
        # What the API server shows a kubelet (logs, exec): the kubelet trusts the cluster CA.
        ca.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", org="system:masters")
        # Real kubelets live in their own network namespaces: they reach the API server on the
        # host's address on their bridge.
        node_server = server.replace("127.0.0.1", gateway) if gateway else server
        pki.service_account_keys(ca.directory)
        ca.issue("front-proxy-client", "front-proxy-client")
        admin = ca.issue("admin", "darwin-admin", org="system:masters")
        pki.write_kubeconfig(self.kubeconfig, server=server, ca=ca, client=admin, user="admin")
        out: dict[str, Path] = {}
        for comp in ("kube-controller-manager", "kube-scheduler"):
            ca.issue(f"{comp}-serving", comp, server=True)
            pair = ca.issue(comp, f"system:{comp}")
            out[comp] = pki.write_kubeconfig(
                ca.directory / f"{comp}.kubeconfig", server=server, ca=ca, client=pair, user=comp
            )
        # Each harness authenticates as its node, so the Node authorizer limits it like a kubelet.
        for i in range(self.config.nodes):
            name = node_name(i)
            pair = ca.issue(f"node-{name}", f"system:node:{name}", org="system:nodes")
            out["node:" + name] = pki.write_kubeconfig(
                ca.directory / f"node-{name}.kubeconfig",
                server=node_server,
                ca=ca,
                client=pair,
                user=f"system:node:{name}",
            )
        self._ssl = ssl.create_default_context(cafile=str(ca.cert_path))
        self._ssl.load_cert_chain(str(admin.cert), str(admin.key))
        return out

    def _start(
        self,
        name: str,
        args: list[str],
        *,
        binary: str | None = None,
        executable: str | None = None,
        wrapper: Sequence[str] = (),
        path: Path | None = None,
    ) -> Process:
        assert self.state is not None
        self._recipes[name] = (
            list(args),
            {"binary": binary, "executable": executable, "wrapper": wrapper, "path": path},
        )
        program = executable or str(self.bin.path(binary or name))
        log_name = name.replace("[", "-").replace("]", "")
        env = None
        if executable is not None or path is not None:
            # The agent imports this package, wherever it is installed or checked out.
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")])
            )
            if path is not None:  # containerd finds its shim on PATH
                env["PATH"] = f"{path}{os.pathsep}{env.get('PATH', '')}"
        extra = [a for comp, more in self.config.extra_args if comp == name for a in more]
        log_path = self.dir / "logs" / f"{log_name}.log"
        proc = start(name, [program, *args, *extra], log_path, env=env, wrapper=wrapper)
        self.processes.append(proc)
        self.state.processes.append(
            ProcessRecord(proc.name, proc.pid, list(proc.argv), str(proc.log_path))
        )
        # Saved after every start so `cluster down` can clean up even a half-started cluster.
        self.state.save()
        return proc

    def _get(self, url: str, *, tls: bool = True) -> bool:
        ctx = self._ssl if tls else None
        with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
            ok: bool = resp.status == 200
            return ok

    def crash_apiserver(self) -> None:
        """SIGKILL the API server, as a crash would (for tests of clients that must ride it
        out); `restart_apiserver` brings it back on the same port and data."""
        proc = next(p for p in self.processes if p.name == "kube-apiserver")
        os.kill(proc.pid, signal.SIGKILL)
        proc.stop(grace=5)  # reaps it

    def restart_apiserver(self) -> None:
        assert self.state is not None
        old = next(p for p in self.processes if p.name == "kube-apiserver")
        self.processes.remove(old)
        self.state.processes = [r for r in self.state.processes if r.pid != old.pid]
        proc = self._start("kube-apiserver", list(old.argv[1:]))
        proc.wait_ready(lambda: self._get(f"{self.state.server}/readyz"),  # type: ignore[union-attr]
                        self.config.start_timeout)  # fmt: skip

    def restart(self, name: str, grace: float = 10.0) -> Process:
        """Stop one component (SIGTERM, then SIGKILL after `grace`) and start it again with the
        same arguments, in the same namespaces: a kubelet or containerd restart on a real node,
        for the tests of what must survive one. The caller waits for what it needs."""
        assert self.state is not None
        old = next(p for p in self.processes if p.name == name)
        old.stop(grace=grace)
        self.processes.remove(old)
        self.state.processes = [r for r in self.state.processes if r.pid != old.pid]
        args, how = self._recipes[name]
        return self._start(name, args, **how)

    def down(self) -> None:
        """Stop every process this object started, newest first, and remove what real nodes
        leave behind."""
        stop_all(self.processes)
        self.processes.clear()
        if self.state is not None and self.state.tag:
            nodehost.clean(self.state.tag, self.dir)
            self.state.tag = ""
            with contextlib.suppress(OSError):
                self.state.save()


def _ok(cmd: list[str]) -> bool:
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def _not_ready(api: kubeapi.Kube, names: list[str]) -> list[str]:
    try:
        return simulated.nodes_not_ready(api, names)
    except kubeapi.NotFound as exc:
        return [f"a node is not registered ({exc})"]


def stop_all(processes: list[Process]) -> list[str]:
    """Stop processes newest first; returns the names of those that were still running."""
    stopped: list[str] = []
    for proc in reversed(processes):
        if proc.alive():
            stopped.append(proc.name)
        with contextlib.suppress(Exception):
            proc.stop()
    return stopped


def down(directory: Path) -> list[str]:
    """Stop the cluster recorded in `directory` (from any process); returns what was running."""
    state = ClusterState.load(directory.resolve())
    if state is None:
        return []
    stopped = stop_all([p.process() for p in state.processes])
    leftover = [p.name for p in state.processes if p.process().alive()]
    if leftover:
        raise ComponentError(", ".join(leftover), "still running after SIGKILL")
    if state.tag:
        nodehost.clean(state.tag, Path(state.directory))
        state.tag = ""
    state.processes.clear()
    state.save()
    return stopped


def import_image(state: ClusterState, tar: Path) -> list[str]:
    """Import an OCI tar into the containerd of every real node of a running cluster (all
    nodes at once: unpacking is most of it); returns the nodes it went to."""
    ctr = str(build.containerd_dir() / "ctr")
    holders = {p.name: p for p in state.processes}
    jobs = []
    for node in state.nodes:
        holder = holders.get(f"node[{node.name}]")
        if node.kind != "real" or holder is None or not holder.process().alive():
            continue
        argv = [ctr, f"--address={node.containerd_socket}", "-n", "k8s.io", "images", "import"]
        jobs.append((node.name, nodehost.in_node(holder.pid, *argv, str(tar))))
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(len(jobs), 1)) as pool:
        for future in [
            pool.submit(nodehost.run, cmd, what=f"import into {n}", timeout=600) for n, cmd in jobs
        ]:
            future.result()
    return [name for name, _ in jobs]


def running_directories() -> list[str]:
    """Directories of registered clusters with real nodes that still have a live process."""
    out = []
    for entry in nodehost.registered().values():
        directory = Path(str(entry.get("directory", "")))
        state = ClusterState.load(directory) if directory.is_dir() else None
        if state and any(p.process().alive() for p in state.processes):
            out.append(str(directory))
    return out


def status(directory: Path) -> dict[str, bool]:
    """Component name -> running, for the cluster recorded in `directory`."""
    state = ClusterState.load(directory.resolve())
    if state is None:
        return {}
    return {p.name: p.process().alive() for p in state.processes}
