"""The host side of real nodes: a namespace holder per node, bind mounts, the bridge and veths,
routes, and the clean-up of everything they leave (also after a crash: see `clean_stale`).

Each node is a process (`holder`) started by `unshare --mount --net`; containerd, the kubelet
and everything they start join its namespaces with `nsenter`. When all of them are gone the
namespaces, their mounts (the kubelet's, containerd's overlays, pod network namespaces) and the
node's veth vanish with them. What outlives the processes is removed here: the bridge, the
kubepods cgroups below the node's cgroupRoot, and the mount-point directories made on the host.
A registry in /run/darwin-dra (gone at reboot, as are bridges and cgroups) names every cluster
that has real nodes, so a later `cluster up` cleans up after one that crashed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import structlog

from darwin_dra.cluster import realnode
from darwin_dra.cluster.errors import ComponentError

log = structlog.get_logger(__name__)

REGISTRY = Path(os.environ.get("DARWIN_DRA_RUN_DIR", "/run/darwin-dra"))
CGROUP_FS = Path("/sys/fs/cgroup")
HOLDER_MARK = "darwin-dra-node"


def run(argv: Sequence[str], *, what: str, check: bool = True, timeout: float = 60) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=timeout)
    if check and proc.returncode != 0:
        raise ComponentError(what, f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    return proc.stdout


def in_node(holder: int, *argv: str) -> list[str]:
    """`argv` run inside the mount and network namespaces of the node held by `holder`."""
    return ["nsenter", f"--target={holder}", "--mount", "--net", "--", *argv]


def holder_argv(base: Path) -> tuple[list[str], list[str]]:
    """(wrapper, program) of a node's namespace holder: a process that only waits; its command
    line names the node's directory, so a leftover one is recognised after a crash."""
    wrapper = ["unshare", "--mount", "--net", "--propagation", "private", "--"]
    program = [sys.executable, "-S", "-c", "import signal; signal.pause()", HOLDER_MARK, str(base)]
    return wrapper, program


def wait_namespaced(holder: int, timeout: float = 10.0) -> None:
    """Until `unshare` has made the namespaces and run the holder program."""
    deadline = time.monotonic() + timeout
    mine = os.stat("/proc/self/ns/net").st_ino
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{holder}/cmdline").read_bytes()
            if HOLDER_MARK.encode() in cmdline and os.stat(f"/proc/{holder}/ns/net").st_ino != mine:
                return
        time.sleep(0.05)
    raise ComponentError("node namespace", f"pid {holder} made no namespaces in {timeout:.0f}s")


def host_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the host has an address in or a route to."""
    nets: list[ipaddress.IPv4Network] = []
    for entry in json.loads(run(["ip", "-4", "-j", "route", "show", "table", "all"], what="ip")):
        dst = entry.get("dst", "")
        if dst and dst != "default" and not dst.startswith(("127.", "local", "broadcast")):
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.IPv4Network(dst, strict=False))
    for link in json.loads(run(["ip", "-4", "-j", "addr"], what="ip")):
        for addr in link.get("addr_info", []):
            net = ipaddress.IPv4Network(f"{addr['local']}/{addr['prefixlen']}", strict=False)
            if not net.is_loopback:
                nets.append(net)
    return nets


# --- the registry of clusters with real nodes ---------------------------------------------


def register(tag: str, directory: Path, slot: int) -> None:
    (REGISTRY / "clusters").mkdir(parents=True, exist_ok=True)
    entry = {"directory": str(directory), "slot": slot}
    (REGISTRY / "clusters" / f"{tag}.json").write_text(json.dumps(entry) + "\n")


def registered() -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for path in sorted((REGISTRY / "clusters").glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            out[path.stem] = json.loads(path.read_text())
    return out


def slots_in_use() -> set[int]:
    return {int(str(e["slot"])) for e in registered().values() if "slot" in e}


def make_mount_points() -> None:
    """The fixed paths the nodes bind over must exist on the host; note the ones made here."""
    made_file = REGISTRY / "made-dirs.json"
    made: list[str] = json.loads(made_file.read_text()) if made_file.is_file() else []
    for target in realnode.BOUND_PATHS:
        path = Path(target)
        if not path.exists():
            path.mkdir(parents=True)
            made.append(target)
    REGISTRY.mkdir(parents=True, exist_ok=True)
    made_file.write_text(json.dumps(sorted(set(made))) + "\n")


def _remove_mount_points() -> None:
    """The mount points this project made, once no cluster with real nodes is left."""
    made_file = REGISTRY / "made-dirs.json"
    if registered() or not made_file.is_file():
        return
    for target in json.loads(made_file.read_text()):
        with contextlib.suppress(OSError):  # not empty: something else uses it now
            Path(target).rmdir()
    made_file.unlink(missing_ok=True)


# --- setting a node up ---------------------------------------------------------------------


def bind_mounts(holder: int, layout: realnode.NodeLayout) -> None:
    for target in realnode.BOUND_PATHS:
        source = layout.bound(target)
        source.mkdir(parents=True, exist_ok=True)
        argv = ["nsenter", f"--target={holder}", "--mount", "--", "mount", "--bind"]
        run([*argv, str(source), target], what=f"bind mount {target}")


def make_cgroup_root(tag: str, index: int) -> None:
    """The node's cgroupRoot in every hierarchy: the kubelet refuses one that does not exist.
    A new v1 cpuset is empty; it gets its parent's cpus and memory nodes."""
    root = realnode.cgroup_root(tag, index).lstrip("/")
    for hierarchy in sorted(CGROUP_FS.iterdir()):
        if not (hierarchy / "cgroup.procs").exists():
            continue
        path = hierarchy / root
        path.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if (hierarchy / name).exists():
                (path / name).write_text((hierarchy / name).read_text())


def make_bridge(tag: str, slot: int) -> None:
    bridge = realnode.bridge_name(tag)
    gateway = realnode.networks(slot, 1)[0]
    run(["ip", "link", "del", bridge], what="ip", check=False)
    run(["ip", "link", "add", bridge, "type", "bridge"], what=f"bridge {bridge}")
    run(["ip", "addr", "add", f"{gateway.gateway}/24", "dev", bridge], what=f"bridge {bridge}")
    run(["ip", "link", "set", bridge, "up"], what=f"bridge {bridge}")


def plug_node(holder: int, tag: str, net: realnode.NodeNetwork) -> None:
    """A veth from the bridge into the node, the node's address, default route and forwarding."""
    veth, what = realnode.veth_name(tag, net.index), f"network of node {net.index}"
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", str(holder)],
        what=what)  # fmt: skip
    run(["ip", "link", "set", veth, "master", realnode.bridge_name(tag), "up"], what=what)
    inside = ["nsenter", f"--target={holder}", "--net", "--"]
    run([*inside, "ip", "link", "set", "lo", "up"], what=what)
    run([*inside, "ip", "addr", "add", f"{net.node_ip}/24", "dev", "eth0"], what=what)
    run([*inside, "ip", "link", "set", "eth0", "up"], what=what)
    run([*inside, "ip", "route", "add", "default", "via", net.gateway], what=what)
    run([*inside, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], what=what)


def route_pods(holders: Sequence[int], nets: Sequence[realnode.NodeNetwork]) -> None:
    """Each node routes every other node's pod CIDR to that node; the host routes them all."""
    for holder, net in zip(holders, nets, strict=True):
        for other in nets:
            if other is not net:
                argv = ["nsenter", f"--target={holder}", "--net", "--", "ip", "route", "add"]
                run([*argv, str(other.pod_cidr), "via", other.node_ip], what="pod routes")
        run(["ip", "route", "replace", str(net.pod_cidr), "via", net.node_ip], what="pod routes")


# --- clean-up ------------------------------------------------------------------------------


def _pids_naming(paths: Iterable[str]) -> list[int]:
    marks = [p.encode() for p in paths]
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            args = (entry / "cmdline").read_bytes().split(b"\0")
            if any(m in a for a in args for m in marks):
                found.append(int(entry.name))
    return found


def _cgroup_dirs(tag: str) -> list[Path]:
    """Every cgroup below the cgroupRoots of the cluster's nodes, deepest first."""
    dirs: list[Path] = []
    prefix = realnode.cgroup_root(tag, 0).rsplit("-", 1)[0].lstrip("/") + "-"
    for hierarchy in CGROUP_FS.iterdir() if CGROUP_FS.is_dir() else []:
        for top in hierarchy.glob(prefix + "*"):
            dirs += [Path(d) for d, _, _ in os.walk(top)]
    return sorted(dirs, key=lambda d: len(d.parts), reverse=True)


def _kill_cgroups(tag: str) -> None:
    for _ in range(20):
        pids = set()
        for d in _cgroup_dirs(tag):
            with contextlib.suppress(OSError):
                pids |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    for d in _cgroup_dirs(tag):
        for _ in range(20):
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)


def clean(tag: str, directory: Path) -> None:
    """Remove everything the real nodes of the cluster in `directory` left on the host."""
    nodes_dir = directory / "nodes"
    for _ in range(3):  # shims and holders, then whatever a dying one started
        pids = _pids_naming([str(nodes_dir) + "/"])
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not pids:
            break
        time.sleep(0.2)
    _kill_cgroups(tag)
    run(["ip", "link", "del", realnode.bridge_name(tag)], what="ip", check=False)
    # The namespaces die with their last process; their mounts go with them. Only then can the
    # node directories go (a mount still alive in a dying namespace makes rmtree fail: retry).
    for _ in range(20):
        shutil.rmtree(nodes_dir, ignore_errors=True)
        if not nodes_dir.exists():
            break
        time.sleep(0.2)
    (REGISTRY / "clusters" / f"{tag}.json").unlink(missing_ok=True)
    _remove_mount_points()
    log.info("real nodes cleaned up", tag=tag, directory=str(directory))


def clean_stale(alive: Iterable[str]) -> list[str]:
    """Clean every registered cluster whose directory is not among `alive` directories that
    still run; returns the directories cleaned."""
    running = {str(Path(d).resolve()) for d in alive}
    cleaned = []
    for tag, entry in registered().items():
        directory = str(entry.get("directory", ""))
        if directory and directory not in running:
            clean(tag, Path(directory))
            cleaned.append(directory)
    return cleaned
