"""The demo: Darwin DRA end to end on a real local control plane, the way a user would run it.

It brings up kube-apiserver, kube-scheduler and kube-controller-manager (built from their Go
modules) with two simulated nodes, starts the controller and one kubelet plugin per node, applies
every example in deploy/examples with kubectl, and shows what each pod got. Then it breaks a
domain, shows the taint, deletes the pods and shows that the claims were unprepared.
Everything it starts is stopped at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from darwin_dra.cluster import build, launcher
from darwin_dra.cluster.chiphost import chip_host_args

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "deploy" / "examples"
DRIVER = "darwin.snn.io"
NAMESPACE = "darwin-demo"


def say(text: str = "") -> None:
    print(text, flush=True)


def wait_for(what: str, check: Callable[[], T | None], timeout: float, every: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


@dataclass
class Demo:
    directory: Path
    keep: bool = False
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    cluster: launcher.LocalCluster | None = None
    kubectl_bin: Path = Path("kubectl")

    # ---- plumbing ----
    def kubectl(self, *args: str, check: bool = True) -> str:
        assert self.cluster is not None
        out = subprocess.run(
            [str(self.kubectl_bin), f"--kubeconfig={self.cluster.kubeconfig}", *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if check and out.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def kget(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def start(self, name: str, *argv: str) -> None:
        log = (self.directory / "logs" / f"{name}.log").open("wb")
        cmd = [sys.executable, "-m", "darwin_dra.cli.main", *argv]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
        self.procs.append((name, proc))

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                tail = (self.directory / "logs" / f"{name}.log").read_text()[-2000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def stop_all(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        if self.cluster is not None and not self.keep:
            self.cluster.down()

    # ---- steps ----
    def up(self) -> list[str]:
        say(
            "1. building (cached) and starting the control plane: etcd, kube-apiserver, "
            "kube-controller-manager, kube-scheduler, 2 simulated nodes"
        )
        binaries = build.ensure_binaries()
        self.kubectl_bin = binaries.path("kubectl")
        (self.directory / "logs").mkdir(parents=True, exist_ok=True)
        self.cluster = launcher.LocalCluster(
            launcher.ClusterConfig(self.directory / "cluster", nodes=2, node_kind="harness"),
            binaries,
        )
        state = self.cluster.up()
        say(f"   Kubernetes {state.version}, kubeconfig {self.cluster.kubeconfig}")
        return [n.name for n in state.nodes]

    def inventory(self, nodes: list[str]) -> Path:
        """The example inventory, its nodes renamed to the cluster's."""
        doc = yaml.safe_load((EXAMPLES / "inventory.yaml").read_text())
        for entry, name in zip(doc["nodes"], nodes, strict=False):
            entry["name"] = name
        path = self.directory / "inventory.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def start_driver(self, nodes: list[str], inventory: Path) -> None:
        assert self.cluster is not None
        assert self.cluster.state is not None
        kubeconfig = str(self.cluster.kubeconfig)
        say(
            "2. starting the controller (DeviceClasses, fabric slices), and a chip host and a "
            "kubelet plugin per node"
        )
        self.start("controller", "controller", "--inventory", str(inventory),
                   "--kubeconfig", kubeconfig, "--namespace", "kube-system",
                   "--identity", "demo-controller")  # fmt: skip
        for node in self.cluster.state.nodes:
            work = self.directory / node.name
            # the node's chips: a process of their own, which the plugin is a client of
            self.start(
                f"chip-host-{node.name}",
                *chip_host_args(node.name, inventory, work / "state", calibrate=True),
            )
            self.start(f"plugin-{node.name}", "kubelet-plugin", "--node-name", node.name,
                       "--kubeconfig", kubeconfig,
                       "--plugins-registry-dir", node.plugins_registry,
                       "--plugins-dir", node.plugins, "--cdi-dir", str(work / "cdi"),
                       "--state-dir", str(work / "state"),
                       "--fault-poll-seconds", "0.2")  # fmt: skip

        def published() -> bool:
            self.check_alive()
            slices = self.kget("resourceslices")["items"]
            pools = {s["spec"]["pool"]["name"] for s in slices if s["spec"]["driver"] == DRIVER}
            classes = {c["metadata"]["name"] for c in self.kget("deviceclasses")["items"]}
            return set(nodes) <= pools and "darwin-domain.snn.io" in classes

        wait_for("slices of every node and the DeviceClasses", published, timeout=90)
        say(self.kubectl("get", "deviceclasses"))
        say(self.kubectl("get", "resourceslices", "-o",
                         "custom-columns=SLICE:.metadata.name,NODE:.spec.nodeName,"
                         "POOL:.spec.pool.name,DEVICES:.spec.devices[*].name"
                         ).replace(",", " ")[:2400])  # fmt: skip

    def run_examples(self) -> list[str]:
        say(f"3. applying every example of deploy/examples in namespace {NAMESPACE}")
        self.kubectl("create", "namespace", NAMESPACE)
        wait_for(
            "the default service account",
            lambda: "default" in self.kubectl("get", "sa", "-n", NAMESPACE),
            30,
        )
        files = sorted(p for p in EXAMPLES.glob("*.yaml") if p.name != "inventory.yaml")
        pods: list[str] = []
        for path in files:
            say(f"   kubectl apply -f {path.relative_to(REPO)}")
            self.kubectl("apply", "-n", NAMESPACE, "-f", str(path))
            for doc in yaml.safe_load_all(path.read_text()):
                if doc and doc.get("kind") == "Pod":
                    pods.append(doc["metadata"]["name"])
        phases: dict[str, str] = {}

        def settled() -> bool:
            self.check_alive()
            for pod in self.kget("pods", "-n", NAMESPACE)["items"]:
                phases[pod["metadata"]["name"]] = pod.get("status", {}).get("phase", "?")
            return all(phases.get(p) == "Running" for p in pods)

        try:
            wait_for("every example pod Running", settled, timeout=120)
        except TimeoutError:
            say(f"   not every pod is Running: {phases}")
        return pods

    def show(self) -> None:
        say("4. what each pod got (claim allocation and the plugin's status.devices)")
        pods = {p["metadata"]["name"]: p for p in self.kget("pods", "-n", NAMESPACE)["items"]}
        claims = self.kget("resourceclaims", "-n", NAMESPACE)["items"]
        rows = [("POD", "PHASE", "NODE", "DEVICES", "CORES", "KEPS", "KEPS SOURCE")]
        for claim in claims:
            owner = next((r["name"] for r in claim["metadata"].get("ownerReferences", [])
                          if r["kind"] == "Pod"), "?")  # fmt: skip
            pod = pods.get(owner, {})
            results = (claim.get("status", {}).get("allocation") or {}).get("devices", {})
            devices = [f"{r['pool']}/{r['device']}" for r in results.get("results", [])]
            cores, keps, sources = 0, 0.0, set()
            for entry in claim.get("status", {}).get("devices", []):
                data = entry.get("data") or {}
                cores += int(data.get("cores", 0))
                keps += float(data.get("measuredKeps", 0) or 0)
                sources.add(str(data.get("kepsSource", "-")))
            rows.append((
                owner, pod.get("status", {}).get("phase", "-"),
                pod.get("spec", {}).get("nodeName", "-"), " ".join(devices) or "(not allocated)",
                str(cores), f"{keps:,.0f}", ",".join(sorted(sources)) or "-",
            ))  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            say("   " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        say()
        for pod in pods.values():
            conditions = pod.get("status", {}).get("conditions", [])
            cond = next(
                (c for c in conditions if c["type"] == "PodScheduled" and c["status"] != "True"),
                None,
            )
            if cond:
                say(f"   {pod['metadata']['name']} pending: {cond.get('message', '')}")
        specs = sorted(self.directory.glob("*/cdi/*.json"))
        if specs:
            spec = json.loads(specs[0].read_text())
            env = spec["devices"][0].get("containerEdits", {}).get("env", [])
            say(
                f"   CDI spec {specs[0].relative_to(self.directory)} gives the container: "
                + " ".join(e for e in env if e.startswith("DARWIN_"))
            )

    def fault(self, nodes: list[str]) -> None:
        users: dict[tuple[str, str], set[str]] = {}  # (node, device) -> pods holding it
        for claim in self.kget("resourceclaims", "-n", NAMESPACE)["items"]:
            results = (claim.get("status", {}).get("allocation") or {}).get("devices") or {}
            owners = {r["name"] for r in claim["metadata"].get("ownerReferences", [])}
            for r in results.get("results", []):
                users.setdefault((r["pool"], r["device"]), set()).update(owners)
        # break a domain some pod holds, so the eviction shows; else domain 3 of chip 0
        node, chip, domain = nodes[0], "0", "3"
        for pool, device in sorted(users):
            parts = device.split("-")  # chip-C-domain-D
            if pool in nodes and len(parts) == 4 and parts[2] == "domain":
                node, chip, domain = pool, parts[1], parts[3]
                break
        say(f"5. domain {domain} of chip {chip} on {node} fails: the plugin taints the devices "
            "that cover it, and pods using them are evicted")  # fmt: skip
        state = self.directory / node / "state"
        subprocess.run([sys.executable, "-m", "darwin_dra.cli.main", "fault", "inject",
                        "--state-dir", str(state), "--chip", chip, "--domain", domain],
                       check=True, capture_output=True)  # fmt: skip

        def tainted() -> dict[str, str]:
            out = {}
            for s in self.kget("resourceslices")["items"]:
                if s["spec"].get("nodeName") != node:
                    continue
                for d in s["spec"].get("devices", []):
                    for t in d.get("taints", []):
                        out[d["name"]] = t["effect"]
            return out

        taints = wait_for("the taints", tainted, timeout=30)
        say("   darwin.snn.io/unhealthy on: "
            + ", ".join(f"{d} ({e})" for d, e in sorted(taints.items())))  # fmt: skip
        victims = sorted({p for d, e in taints.items() if e == "NoExecute"
                          for p in users.get((node, d), ())})  # fmt: skip
        if not victims:
            say("   no pod held those devices")
            return

        def evicted() -> bool:
            pods = self.kget("pods", "-n", NAMESPACE)["items"]
            live = {
                p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")
            }
            return not set(victims) & live

        try:
            wait_for("the eviction", evicted, timeout=60)
            say(f"   kube-controller-manager evicted the pods on those devices: {victims}")
        except TimeoutError:
            say(f"   pods on the failed devices were not evicted within 60 s: {victims}")

    def cleanup_pods(self, pods: list[str]) -> None:
        say("6. deleting the pods: claims are unprepared (partitions freed, CDI specs removed)")
        self.kubectl("delete", "pods", "-n", NAMESPACE, "--all", "--wait=true", "--timeout=60s")
        assert self.cluster is not None
        assert self.cluster.state is not None
        nodes = [n.name for n in self.cluster.state.nodes]

        def unprepared() -> bool:
            return all(not any((self.directory / n / "cdi").glob("*.json")) for n in nodes)

        wait_for("CDI specs removed", unprepared, timeout=60)
        left = self.kget("resourceclaims", "-n", NAMESPACE)["items"]
        say(f"   CDI specs left: 0; claims left in {NAMESPACE}: {len(left)}")


@contextlib.contextmanager
def demo_dir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    # Short: plugin sockets below it must fit a unix socket address (108 bytes).
    yield Path(tempfile.mkdtemp(prefix="darwin-demo-"))


def run(directory: Path | None, keep: bool) -> int:
    with demo_dir(directory) as where:
        demo = Demo(where, keep=keep)
        try:
            nodes = demo.up()
            demo.start_driver(nodes, demo.inventory(nodes))
            pods = demo.run_examples()
            demo.show()
            demo.fault(nodes)
            demo.cleanup_pods(pods)
            say("done. Logs of every process: " + str(where / "logs"))
            if keep:
                kubeconfig = where / "cluster" / "kubeconfig"
                say(
                    f"the cluster is still up: KUBECONFIG={kubeconfig} kubectl get pods -A; "
                    f"stop it with: darwin-dra cluster down --dir {where / 'cluster'}"
                )
            return 0
        finally:
            demo.stop_all()
