"""Starts and stops a local control plane: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, a node agent and one kubelet harness per simulated node, all on loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import structlog

from darwin_dra import kubeapi
from darwin_dra.cluster import build, components, pki
from darwin_dra.cluster import nodes as simulated
from darwin_dra.cluster.errors import ClusterError, ComponentError, PortInUseError
from darwin_dra.cluster.process import Process, start
from darwin_dra.cluster.state import ClusterState, NodeRecord, ProcessRecord

log = structlog.get_logger(__name__)

NODE_LABEL_DOMAIN = "darwin.snn.io"
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


@dataclass(frozen=True)
class ClusterConfig:
    directory: Path
    nodes: int = 2
    apiserver_port: int | None = None
    start_timeout: float = 180.0
    # Extra flags by component name (e.g. a benchmark raising kube-scheduler's client QPS).
    extra_args: tuple[tuple[str, tuple[str, ...]], ...] = ()


class LocalCluster:
    """One cluster in one directory. `up` either returns a running cluster or stops it all."""

    def __init__(self, config: ClusterConfig, binaries: build.Binaries) -> None:
        self.config = config
        self.bin = binaries
        self.dir = config.directory.resolve()
        self.processes: list[Process] = []
        self.state: ClusterState | None = None
        self._ssl: ssl.SSLContext | None = None

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
        creds = self._pki(server)
        pki_dir = self.dir / "pki"

        etcd = self._start("etcd", components.etcd(self.dir / "etcd", ports))
        health = f"{components.etcd_url(ports)}/health"
        etcd.wait_ready(lambda: self._get(health, tls=False), cfg.start_timeout)
        apiserver = self._start("kube-apiserver", components.apiserver(pki_dir, ports))
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

    def _pki(self, server: str) -> dict[str, Path]:
        """Certificates for every component; returns the kubeconfig of each client identity."""
        ca = pki.CertificateAuthority(self.dir / "pki")
        ca.issue("apiserver", "kube-apiserver", server=True)
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
                server=server,
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
    ) -> Process:
        assert self.state is not None
        program = executable or str(self.bin.path(binary or name))
        log_name = name.replace("[", "-").replace("]", "")
        env = None
        if executable is not None:
            # The agent imports this package, wherever it is installed or checked out.
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")])
            )
        extra = [a for comp, more in self.config.extra_args if comp == name for a in more]
        argv = [program, *args, *extra]
        proc = start(name, argv, self.dir / "logs" / f"{log_name}.log", env=env)
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

    def down(self) -> None:
        """Stop every process this object started, newest first."""
        stop_all(self.processes)
        self.processes.clear()


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
    state.processes.clear()
    state.save()
    return stopped


def status(directory: Path) -> dict[str, bool]:
    """Component name -> running, for the cluster recorded in `directory`."""
    state = ClusterState.load(directory.resolve())
    if state is None:
        return {}
    return {p.name: p.process().alive() for p in state.processes}
