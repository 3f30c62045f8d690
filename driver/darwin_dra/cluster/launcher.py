"""Starts and stops a local cluster: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler on loopback, and N nodes: real ones (a kubelet and a containerd each, in a mount
and network namespace of its own, see realnode.py and nodehost.py) or, for many nodes that need
not run pods, simulated ones (a node agent and one kubelet harness per node).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog

from darwin_dra import kubeapi
from darwin_dra.cluster import build, components, images, nodehost, nodestart, pki
from darwin_dra.cluster.errors import ClusterError, PortInUseError
from darwin_dra.cluster.nodestart import NODE_LABEL_DOMAIN as NODE_LABEL_DOMAIN
from darwin_dra.cluster.nodestart import node_labels as node_labels
from darwin_dra.cluster.nodestart import node_name
from darwin_dra.cluster.ports import bind_error, distinct_free_ports
from darwin_dra.cluster.process import Process, start
from darwin_dra.cluster.recorded import down as down
from darwin_dra.cluster.recorded import import_image as import_image
from darwin_dra.cluster.recorded import running_directories as running_directories
from darwin_dra.cluster.recorded import status as status
from darwin_dra.cluster.recorded import stop_all
from darwin_dra.cluster.state import ClusterState, ProcessRecord

log = structlog.get_logger(__name__)

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def check_port_free(component: str, port: int) -> None:
    exc = bind_error(port)
    if exc is not None:
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
    # KubeSchedulerConfiguration fields (e.g. percentageOfNodesToScore): when given, the
    # scheduler runs with --config of a file holding them (components.scheduler_configuration).
    scheduler_config: Mapping[str, Any] | None = None


class LocalCluster:
    """One cluster in one directory. `up` either returns a running cluster or stops it all."""

    def __init__(self, config: ClusterConfig, binaries: build.Binaries) -> None:
        self.config = config
        self.bin = binaries
        self.dir = config.directory.resolve()
        self.processes: list[Process] = []
        self.state: ClusterState | None = None
        self._ssl: ssl.SSLContext | None = None
        self.holders: list[int] = []
        # How each component was started, so that `restart` can start it again the same way.
        self._recipes: dict[str, tuple[list[str], dict[str, Any]]] = {}
        self.containerd = Path()
        self.node_images: list[images.Image] = []

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
        picked = distinct_free_ports(5, taken={cfg.apiserver_port})
        ports = components.Ports(
            etcd=picked[0],
            etcd_peer=picked[1],
            apiserver=cfg.apiserver_port or picked[2],
            controller_manager=picked[3],
            scheduler=picked[4],
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
        gateway = nodestart.prepare_real(self) if self.real else None
        creds = self._pki(server, gateway)
        pki_dir = self.dir / "pki"

        etcd = self.start_process("etcd", components.etcd(self.dir / "etcd", ports))
        health = f"{components.etcd_url(ports)}/health"
        etcd.wait_ready(lambda: self._get(health, tls=False), cfg.start_timeout)
        apiserver_args = components.apiserver(pki_dir, ports, node_gateway=gateway)
        apiserver = self.start_process("kube-apiserver", apiserver_args)
        apiserver.wait_ready(lambda: self._get(f"{server}/readyz"), cfg.start_timeout)

        kcm_args = components.controller_manager(pki_dir, creds["kube-controller-manager"], ports)
        kcm = self.start_process("kube-controller-manager", kcm_args)
        sched_config = None
        if cfg.scheduler_config is not None:
            body = components.scheduler_configuration(creds["kube-scheduler"], cfg.scheduler_config)
            sched_config = self.dir / "kube-scheduler-config.json"
            sched_config.write_text(json.dumps(body, indent=2) + "\n")
        sched_args = components.scheduler(pki_dir, creds["kube-scheduler"], ports, sched_config)
        sched = self.start_process("kube-scheduler", sched_args)
        kcm_health = f"https://127.0.0.1:{ports.controller_manager}/healthz"
        kcm.wait_ready(lambda: self._get(kcm_health), 120)
        sched_health = f"https://127.0.0.1:{ports.scheduler}/healthz"
        sched.wait_ready(lambda: self._get(sched_health), 120)

        api = kubeapi.connect(self.kubeconfig)
        try:
            if self.real:
                nodestart.start_real(self, api, creds)
            else:
                nodestart.start_simulated(self, api, creds)
            # Pods are rejected until the service-account controller made `default`; wait
            # here once rather than in every test.
            kcm.wait_ready(lambda: api.service_account_exists("default"), 60)
        finally:
            api.close()
        state.save()
        log.info("cluster up", server=server, kubeconfig=str(self.kubeconfig))
        return state

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

    def start_process(
        self,
        name: str,
        args: list[str],
        *,
        binary: str | None = None,
        executable: str | None = None,
        wrapper: Sequence[str] = (),
        path: Path | None = None,
    ) -> Process:
        """Start one component (``binary`` from the cluster's binaries, or ``executable``),
        logged to logs/<name>.log and recorded, so ``restart`` and ``cluster down`` find it."""
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

    def fetch(self, url: str, timeout: float) -> bytes:
        """GET a component's HTTPS endpoint as the cluster admin (e.g. kube-scheduler's
        /debug/pprof when it runs with --profiling=true)."""
        with urllib.request.urlopen(url, timeout=timeout, context=self._ssl) as resp:
            body: bytes = resp.read()
            return body

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
        proc = self.start_process("kube-apiserver", list(old.argv[1:]))
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
        return self.start_process(name, args, **how)

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
