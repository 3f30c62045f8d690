"""The record a running cluster leaves in its directory, so another process can stop it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from darwin_dra.cluster.process import Process

STATE_FILE = "cluster.json"


@dataclass
class ProcessRecord:
    name: str
    pid: int
    argv: list[str]
    log: str

    def process(self) -> Process:
        return Process(self.name, self.pid, tuple(self.argv), Path(self.log))


@dataclass
class NodeRecord:
    name: str
    plugins_registry: str
    plugins: str
    labels: dict[str, str]
    kind: str = "harness"  # or "real": a kubelet and containerd in namespaces of their own
    cdi_dir: str = ""  # real nodes: the directory their containerd reads CDI specs from
    node_ip: str = ""
    containerd_socket: str = ""


@dataclass
class ClusterState:
    directory: str
    version: str
    server: str
    kubeconfig: str
    bin_dir: str = ""
    ports: dict[str, int] = field(default_factory=dict)
    tag: str = ""  # real nodes: the name of their bridge, veths and cgroups (realnode.py)
    slot: int = -1
    images: dict[str, str] = field(default_factory=dict)  # role -> image name on every node
    nodes: list[NodeRecord] = field(default_factory=list)
    processes: list[ProcessRecord] = field(default_factory=list)

    def save(self) -> None:
        path = Path(self.directory) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, directory: Path) -> ClusterState | None:
        path = directory / STATE_FILE
        if not path.is_file():
            return None
        raw = json.loads(path.read_text())
        raw["nodes"] = [NodeRecord(**n) for n in raw.get("nodes", [])]
        raw["processes"] = [ProcessRecord(**p) for p in raw.get("processes", [])]
        return cls(**raw)
