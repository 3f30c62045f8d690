"""Builds the Kubernetes binaries from deploy/local and caches them outside the repository.

The cache directory is keyed on the module files and the harness sources, so a changed pin or a
changed harness gets fresh binaries while an unchanged tree reuses them without invoking Go.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from darwin_dra.cluster.errors import BuildError, ToolchainError
from darwin_dra.cluster.process import tail

log = structlog.get_logger(__name__)

BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-scheduler",
    "kube-controller-manager",
    "kubelet-harness",
    "kubelet",
    "kubectl",
)
# containerd for the real nodes, from its Go module (runc and the CNI plugins are Debian's).
CONTAINERD_VERSION = "v2.4.2"
CONTAINERD_MODULE = "github.com/containerd/containerd/v2"
CONTAINERD_BINARIES = ("containerd", "ctr", "containerd-shim-runc-v2")
_REPO_ROOT = Path(__file__).resolve().parents[3]
# Builds kept in the cache: the current one and the most recent others (other checkouts).
KEEP_ENTRIES = 3
# Where Go lands when installed from the official tarball but not put on PATH.
FALLBACK_GO = ("/usr/local/go/bin/go",)


@dataclass(frozen=True)
class Binaries:
    directory: Path
    version: str

    def path(self, name: str) -> Path:
        return self.directory / name


def module_dir() -> Path:
    """deploy/local of the source tree (overridable for installs outside a checkout)."""
    override = os.environ.get("DARWIN_DRA_K8S_MODULE")
    path = Path(override) if override else _REPO_ROOT / "deploy" / "local"
    if not (path / "go.mod").is_file() or not (path / "go.sum").is_file():
        raise ToolchainError(
            f"no Go module with go.mod and go.sum at {path}: run from a source checkout "
            "or set DARWIN_DRA_K8S_MODULE"
        )
    return path


def cache_root() -> Path:
    if env := os.environ.get("DARWIN_DRA_CACHE"):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "darwin-dra"


def find_go() -> Path:
    """The Go toolchain: $GO, then PATH, then the usual install location."""
    candidates = [os.environ.get("GO"), shutil.which("go"), *FALLBACK_GO]
    for cand in candidates:
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return Path(cand)
    raise ToolchainError(
        "no Go toolchain found (looked at $GO, PATH and /usr/local/go/bin/go); "
        "install Go 1.26 or newer to build the local Kubernetes control plane"
    )


def kubernetes_version(module: Path) -> str:
    match = re.search(
        r"^\s*(?:require\s+)?k8s\.io/kubernetes\s+(v\S+)", (module / "go.mod").read_text(), re.M
    )
    if not match:
        raise ToolchainError(f"{module / 'go.mod'} does not require k8s.io/kubernetes")
    return match.group(1)


def ldflags(version: str) -> str:
    """Strip symbols, and stamp the release as upstream's build does: without it the servers
    report v0.0.0-master and tools that check the server version (Helm's kubeVersion) refuse."""
    major, minor = version.removeprefix("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


def cache_key(module: Path) -> str:
    """Hash of go.mod, go.sum, every Go source of the thin mains and the harness, and the flags."""
    digest = hashlib.sha256(ldflags(kubernetes_version(module)).encode())
    files = [module / "go.mod", module / "go.sum", *sorted((module / "cmd").rglob("*.go"))]
    for path in files:
        digest.update(str(path.relative_to(module)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cached(module: Path | None = None) -> Binaries | None:
    """The cached binaries for the current sources, or None if they must be built."""
    module = module or module_dir()
    version = kubernetes_version(module)
    bindir = cache_root() / f"k8s-{version}-{cache_key(module)}" / "bin"
    if all(os.access(bindir / name, os.X_OK) for name in BINARIES):
        return Binaries(bindir, version)
    return None


def ensure_binaries(*, force: bool = False) -> Binaries:
    """Cached binaries if present, else one `go build` of every command (shared compilation)."""
    module = module_dir()
    version = kubernetes_version(module)
    target = cache_root() / f"k8s-{version}-{cache_key(module)}"
    bindir = target / "bin"
    if not force and (hit := cached(module)):
        log.info("kubernetes binaries cached", dir=str(hit.directory), version=version)
        return hit
    go = find_go()
    target.mkdir(parents=True, exist_ok=True)
    # Concurrent callers (make and pytest) wait for one build instead of racing.
    with (target / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and (hit := cached(module)):
            return hit
        staging = target / "bin.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        log_path = target / "build.log"
        # -buildvcs=false: VCS stamping fails in checkouts git considers unsafe (CI containers).
        cmd = [
            str(go),
            "build",
            "-trimpath",
            "-buildvcs=false",
            f"-ldflags={ldflags(version)}",
            "-o",
            f"{staging}/",
            "./cmd/...",
        ]
        log.info("building kubernetes binaries", version=version, log=str(log_path))
        started = time.monotonic()
        with log_path.open("w") as out:
            out.write(f"$ {' '.join(cmd)}\n")
            out.flush()
            result = subprocess.run(
                cmd, cwd=module, stdout=out, stderr=subprocess.STDOUT, check=False
            )
        elapsed = time.monotonic() - started
        if result.returncode != 0:
            raise BuildError(
                f"go build of {module}/cmd/... failed (exit {result.returncode}) after "
                f"{elapsed:.0f}s; full log: {log_path}\n{tail(log_path, 40)}"
            )
        missing = [name for name in BINARIES if not (staging / name).is_file()]
        if missing:
            raise BuildError(f"go build produced no {', '.join(missing)} in {staging}")
        shutil.rmtree(bindir, ignore_errors=True)
        staging.rename(bindir)
        log.info("kubernetes binaries built", seconds=round(elapsed, 1), dir=str(bindir))
    prune(keep=target)
    return Binaries(bindir, version)


def prune(keep: Path, entries: int = KEEP_ENTRIES) -> list[Path]:
    """Remove all but the newest cache entries (about 0.5 GB each); never `keep`."""
    builds = sorted(
        (d for d in cache_root().glob("k8s-*") if d.is_dir() and d != keep),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    removed = builds[max(entries - 1, 0) :]
    for old in removed:
        shutil.rmtree(old, ignore_errors=True)
        log.info("removed old kubernetes binaries", dir=str(old))
    return removed


def containerd_dir() -> Path:
    return cache_root() / f"containerd-{CONTAINERD_VERSION}" / "bin"


def ensure_containerd() -> Path:
    """containerd, ctr and the runc shim, `go install`ed once into the cache; their directory."""
    bindir = containerd_dir()
    if all(os.access(bindir / name, os.X_OK) for name in CONTAINERD_BINARIES):
        return bindir
    go = find_go()
    bindir.parent.mkdir(parents=True, exist_ok=True)
    with (bindir.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all(os.access(bindir / name, os.X_OK) for name in CONTAINERD_BINARIES):
            return bindir
        staging = bindir.parent / "bin.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        log_path = bindir.parent / "build.log"
        pkgs = [f"{CONTAINERD_MODULE}/cmd/{n}@{CONTAINERD_VERSION}" for n in CONTAINERD_BINARIES]
        cmd = [str(go), "install", "-trimpath", "-ldflags=-s -w", *pkgs]
        env = dict(os.environ, GOBIN=str(staging), GOFLAGS="-buildvcs=false")
        log.info("building containerd", version=CONTAINERD_VERSION, log=str(log_path))
        started = time.monotonic()
        with log_path.open("w") as out:
            out.write(f"$ {' '.join(cmd)}\n")
            out.flush()
            result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
        if result.returncode != 0:
            raise BuildError(
                f"go install of containerd {CONTAINERD_VERSION} failed (exit "
                f"{result.returncode}); full log: {log_path}\n{tail(log_path, 40)}"
            )
        shutil.rmtree(bindir, ignore_errors=True)
        staging.rename(bindir)
        log.info("containerd built", seconds=round(time.monotonic() - started, 1))
    return bindir
