"""The demo's edge to the cluster: kubectl and helm, run as a user runs them (the binaries the
local cluster and `make helm-bin` built), every command and its output appended to a log."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HELM_VERSION = "v3.22.0"  # as the Makefile's helm-bin target builds it


class ToolError(RuntimeError):
    pass


def helm_binary() -> Path:
    """helm from $HELM, else where `make helm-bin` puts it."""
    env = os.environ.get("HELM")
    path = (
        Path(env)
        if env
        else Path.home() / ".cache" / "darwin-dra" / f"helm-{HELM_VERSION}" / "helm"
    )
    if not path.is_file():
        raise ToolError(f"no helm at {path}: run `make helm-bin` (or set HELM)")
    return path


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
