"""A cluster recorded in its directory (state.json), seen from any process: which components
run, stop them all, import an image into its real nodes, which clusters still run."""

from __future__ import annotations

import concurrent.futures
import contextlib
from pathlib import Path

from darwin_dra.cluster import build, nodehost
from darwin_dra.cluster.errors import ComponentError
from darwin_dra.cluster.process import Process
from darwin_dra.cluster.state import ClusterState


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
