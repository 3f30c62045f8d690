"""Runs the helm binary `make helm-bin` builds (or $HELM) on the chart in deploy/helm."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "darwin-dra"


def generator(name: str) -> ModuleType:
    """One of the chart's generators, deploy/helm/<name>.py (scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "deploy" / "helm" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HELM_VERSION = "v3.22.0"
KUBE_VERSION = "1.37.2"


def helm_binary() -> Path:
    path = Path(
        os.environ.get("HELM")
        or Path.home() / ".cache" / "darwin-dra" / f"helm-{HELM_VERSION}" / "helm"
    )
    if not path.is_file():
        raise AssertionError(f"no helm at {path}: run `make helm-bin` (or set HELM)")
    return path


def helm(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # A private HOME for helm's cache and config: nothing from the user's helm setup leaks in.
    env = {
        **os.environ,
        "HELM_CACHE_HOME": "/tmp/darwin-dra-helm/cache",
        "HELM_CONFIG_HOME": "/tmp/darwin-dra-helm/config",
        "HELM_DATA_HOME": "/tmp/darwin-dra-helm/data",
    }
    proc = subprocess.run(
        [str(helm_binary()), *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def render_text(
    namespace: str = "darwin-dra", values: Path | None = None, *sets: str, release: str = "darwin"
) -> str:
    args = [
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
    ]
    if values is not None:
        args += ["-f", str(values)]
    for s in sets:
        args += ["--set", s]
    return helm(*args).stdout


def render(
    namespace: str = "darwin-dra", values: Path | None = None, *sets: str, release: str = "darwin"
) -> list[dict[str, Any]]:
    text = render_text(namespace, values, *sets, release=release)
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in by_kind(objs, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name or ''}: {len(found)} found"
    return found[0]
