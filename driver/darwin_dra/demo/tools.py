"""The demo's edge to the cluster: kubectl and helm, run as a user runs them (the binaries the
local cluster and `make helm-bin` built), every command and its output appended to a log."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darwin_dra.cluster import build

HELM_VERSION = "v3.22.0"  # the Makefile's HELM_VERSION (its helm-bin calls ensure_helm)


class ToolError(RuntimeError):
    pass


HELM_PACKAGE = "helm.sh/helm/v3/cmd/helm"


def helm_binary() -> Path:
    """helm from $HELM, else where `ensure_helm` (`make helm-bin`) puts it."""
    env = os.environ.get("HELM")
    path = Path(env) if env else build.cache_root() / f"helm-{HELM_VERSION}" / "helm"
    if not path.is_file():
        raise ToolError(f"no helm at {path}: run `make helm-bin` (or set HELM)")
    return path


def ensure_helm() -> Path:
    """helm, `go install`ed once into the cache (unless $HELM names one); its path."""
    with contextlib.suppress(ToolError):
        return helm_binary()
    target = build.cache_root() / f"helm-{HELM_VERSION}"
    target.mkdir(parents=True, exist_ok=True)
    # Without symbol tables and DWARF: the link, most of a cold build's wall time, is shorter.
    cmd = [str(build.find_go()), "install", "-trimpath", "-ldflags=-s -w"]
    cmd.append(f"{HELM_PACKAGE}@{HELM_VERSION}")
    env = dict(os.environ, GOBIN=str(target), CGO_ENABLED="0")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise ToolError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return helm_binary()


@dataclass(frozen=True)
class Tool:
    binary: Path
    kubeconfig: Path
    log: Path
    env: Mapping[str, str] | None = None

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> str:
        cmd = [str(self.binary), f"--kubeconfig={self.kubeconfig}", *args]
        env = {**os.environ, **self.env} if self.env else None
        try:
            out = subprocess.run(
                cmd, input=stdin, capture_output=True, text=True, timeout=timeout, env=env,
                check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise ToolError(
                f"{self.binary.name} {' '.join(args)}: no answer in {timeout:g} s"
            ) from exc
        with self.log.open("a") as f:
            # long answers (listings polled every second) stay out: the command and its errors
            shown = out.stdout if len(out.stdout) < 2000 else f"({len(out.stdout)} bytes)\n"
            f.write(
                f"$ {self.binary.name} {' '.join(args)} -> {out.returncode}\n{shown}{out.stderr}"
            )
        if check and out.returncode != 0:
            raise ToolError(f"{self.binary.name} {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout


class Kubectl(Tool):
    def get(self, *args: str) -> Any:
        return json.loads(self.run("get", *args, "-o", "json"))

    def items(self, *args: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.get(*args)["items"]
        return found

    def apply(self, docs: Sequence[Mapping[str, Any]], namespace: str) -> None:
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)})
        self.run("apply", "-n", namespace, "-f", "-", stdin=body)

    def logs(self, pod: str, namespace: str) -> str:
        return self.run("logs", "-n", namespace, pod, check=False)


def helm(kubeconfig: Path, log: Path, cache: Path) -> Tool:
    """helm with its cache and config under `cache`: nothing of the user's helm setup leaks in."""
    env = {
        "HELM_CACHE_HOME": str(cache / "cache"),
        "HELM_CONFIG_HOME": str(cache / "config"),
        "HELM_DATA_HOME": str(cache / "data"),
    }
    return Tool(helm_binary(), kubeconfig, log, env)
