"""The images the real nodes run, made here from Debian's packages (no registry can be reached):
a busybox image for test and example pods, a pause image for pod sandboxes, and (images_driver)
the driver's own image. Each is an OCI tar in the cache, named by a hash of its inputs, and
imported into every node's containerd.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import structlog

from darwin_dra.cluster import build, hostdeps, oci
from darwin_dra.cluster.errors import ToolchainError

log = structlog.get_logger(__name__)

REGISTRY_NAME = "darwin-dra.local"
# The recipe is part of every image's inputs: this file and the OCI writer.
RECIPE = (
    b"".join(Path(m.__file__).read_bytes() for m in (oci,) if m.__file__)
    + Path(__file__).read_bytes()
)
# PID 1 of a pod sandbox: wait until told to stop.
PAUSE_SCRIPT = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"


@dataclass(frozen=True)
class Image:
    name: str  # e.g. darwin-dra.local/busybox:3f2a9c0d1e2b
    tar: Path


def images_dir() -> Path:
    return build.cache_root() / "images"


def _debian_package(name: str, into: Path) -> Path:
    """The .deb of `name` as Debian ships it for this host (apt-get download)."""
    into.mkdir(parents=True, exist_ok=True)
    for attempt in range(2):
        proc = subprocess.run(
            ["apt-get", "download", name], cwd=into, capture_output=True, text=True, check=False
        )
        if proc.returncode == 0:
            break
        if attempt == 0:
            hostdeps.apt("update")  # a fresh machine has no package lists yet
    else:
        raise ToolchainError(f"apt-get download {name} failed: {proc.stderr.strip()}")
    debs = sorted(into.glob(f"{name}_*.deb"), key=lambda p: p.stat().st_mtime)
    if not debs:
        raise ToolchainError(f"apt-get download {name} left no .deb in {into}")
    return debs[-1]


def _busybox_root(deb: Path, root: Path) -> None:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, capture_output=True)
    busybox = root / "bin" / "busybox"
    applets = subprocess.run(
        [str(busybox), "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    for applet in applets:
        link = root / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    for d in ("proc", "sys", "dev", "tmp", "etc", "var/run", "run"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")


def busybox_images() -> tuple[Image, Image]:
    """(busybox, pause): one busybox layer from Debian's busybox-static, two entrypoints."""
    work = images_dir()
    work.mkdir(parents=True, exist_ok=True)
    with (work / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        deb = _debian_package("busybox-static", work / "debs")
        key = hashlib.sha256(deb.read_bytes() + RECIPE).hexdigest()[:12]
        busybox = Image(f"{REGISTRY_NAME}/busybox:{key}", work / f"busybox-{key}.tar")
        pause = Image(f"{REGISTRY_NAME}/pause:{key}", work / f"pause-{key}.tar")
        if busybox.tar.is_file() and pause.tar.is_file():
            return busybox, pause
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            root = Path(tmp) / "root"
            _busybox_root(deb, root)
            layer = oci.layer_from_dir(root)
        config = oci.image_config([layer], cmd=["/bin/sh"])
        oci.write_layout(busybox.tar, busybox.name, [layer], config)
        pause_config = oci.image_config([layer], entrypoint=["/bin/sh", "-c", PAUSE_SCRIPT])
        oci.write_layout(pause.tar, pause.name, [layer], pause_config)
        log.info("images built", busybox=busybox.name, pause=pause.name)
        prune("busybox-*.tar", keep=4)
        prune("pause-*.tar", keep=4)
        return busybox, pause


def prune(pattern: str, keep: int) -> list[Path]:
    """Remove all but the `keep` newest tars matching `pattern` (other checkouts may still use
    those); returns what went."""
    tars = sorted(images_dir().glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in tars[keep:]:
        old.unlink(missing_ok=True)
    return tars[keep:]


# --- the driver's image --------------------------------------------------------------------

# The same recipe as deploy/image/Containerfile: Debian bookworm (Python 3.11) with python3 and
# venv, the project's wheel installed by pip into /opt/darwin-dra.
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3", "python3-venv", "ca-certificates")
DRIVER_NAME = f"{REGISTRY_NAME}/darwin-dra"
VENV = "/opt/darwin-dra"
_SOURCE_GLOBS = (
    "pyproject.toml",
    "setup.py",
    "README.md",
    "native/build_engine.py",
    "native/include/*.h",
    "native/src/*.[ch]",
    "driver/darwin_dra/**/*.py",
    "driver/darwin_dra/**/*.yaml",
    "driver/darwin_dra/py.typed",
    "deploy/image/Containerfile",
)
# Docs, man pages and locales: nothing in the image reads them.
_DPKG_EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/locale/*",
    "/usr/share/info/*",
)


@dataclass(frozen=True)
class DriverImage:
    image: Image
    version_name: str  # also darwin-dra.local/darwin-dra:<appVersion>, the chart's default
    built: bool
    seconds: float


def source_key(root: Path) -> str:
    """Hash of everything that goes into the driver image (sources, recipe, Debian suite)."""
    digest = hashlib.sha256(RECIPE + DEBIAN_SUITE.encode() + " ".join(DEBIAN_PACKAGES).encode())
    for pattern in _SOURCE_GLOBS:
        for path in sorted(root.glob(pattern)):
            if "__pycache__" in path.parts:
                continue
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _chroot(root: Path, *argv: str, binds: dict[str, Path] | None = None) -> None:
    """`argv` in `root` as root, with /proc and `binds` (host path -> path inside) mounted in a
    private mount namespace, so nothing stays mounted whatever happens."""
    mounts = [f"mount -t proc proc {root}/proc"]
    for inside, host in (binds or {}).items():
        target = root / inside.lstrip("/")
        if host.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        mounts.append(f"mount --bind {host} {root}/{inside.lstrip('/')}")
    script = " && ".join([*mounts, 'exec chroot "$0" "$@"'])
    cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(root), *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolchainError(f"in the image root, {' '.join(argv)} failed:\n{proc.stderr[-3000:]}")


def _base_root(work: Path, rootfs: Path) -> None:
    """Debian bookworm with python3 and an empty venv at /opt/darwin-dra, copied to `rootfs`.
    mmdebstrap runs once per suite and package list (its result is kept in the cache): only
    the wheel changes from one build to the next."""
    key = hashlib.sha256(
        repr((DEBIAN_SUITE, DEBIAN_PACKAGES, _DPKG_EXCLUDES, VENV)).encode()
    ).hexdigest()[:12]
    base = work / f"bookworm-{key}"
    if not (base / ".complete").is_file():
        shutil.rmtree(base, ignore_errors=True)
        debstrap = [
            "mmdebstrap", "--quiet", "--variant=minbase", "--mode=root",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            *(f"--dpkgopt=path-exclude={p}" for p in _DPKG_EXCLUDES),
            "--aptopt=APT::Install-Recommends false",
            DEBIAN_SUITE, str(base),
        ]  # fmt: skip
        env = dict(os.environ, SOURCE_DATE_EPOCH="0")
        proc = subprocess.run(debstrap, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise ToolchainError(f"mmdebstrap {DEBIAN_SUITE} failed:\n{proc.stderr[-3000:]}")
        _chroot(base, "python3", "-m", "venv", VENV)
        (base / ".complete").touch()
    subprocess.run(["cp", "-a", str(base), str(rootfs)], check=True)
    (rootfs / ".complete").unlink()


def driver_image(root: Path, version: str, *, python: str) -> DriverImage:
    """The driver's image as an OCI tar in the cache, built from Debian's packages and the
    project's wheel when its inputs changed (`root`: the source tree; `python`: an interpreter
    with pip, to build the wheel)."""
    import time

    work = images_dir()
    work.mkdir(parents=True, exist_ok=True)
    version_name = f"{DRIVER_NAME}:{version}"
    with (work / ".driver.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # The key is read under the lock, after any wait for another build: the wheel is built
        # from the tree as it is now, and the tag must name that tree.
        key = source_key(root)
        image = Image(f"{DRIVER_NAME}:{key}", work / f"darwin-dra-{key}.tar")
        if image.tar.is_file():
            return DriverImage(image, version_name, built=False, seconds=0.0)
        hostdeps.ensure(hostdeps.IMAGE_PACKAGES)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=work, prefix="build-") as tmp:
            rootfs, dist = Path(tmp) / "rootfs", Path(tmp) / "dist"
            wheel = subprocess.run(
                [python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(root)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if wheel.returncode != 0:
                raise ToolchainError(f"building the project's wheel failed:\n{wheel.stderr}")
            [whl] = dist.glob("darwin_dra-*.whl")
            if source_key(root) != key:
                raise ToolchainError(
                    f"the source tree {root} changed while its wheel was built: the image "
                    "would not be the tree its tag names; build it again"
                )
            log.info("image: wheel built", seconds=round(time.monotonic() - started, 1))
            _base_root(work, rootfs)
            log.info("image: bookworm root ready", seconds=round(time.monotonic() - started, 1))
            shutil.copy(whl, rootfs / "tmp" / whl.name)
            shutil.copy("/etc/resolv.conf", rootfs / "etc" / "resolv.conf")  # for pip only
            pip_cache = Path(os.environ.get("PIP_CACHE_DIR", Path.home() / ".cache" / "pip"))
            pip_cache.mkdir(parents=True, exist_ok=True)
            binds = {"/root/.cache/pip": pip_cache}
            # pip trusts what the host trusts (a proxy's CA, say): the host's bundle, during
            # the install only; the image keeps Debian's.
            bundle = Path(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")
            if bundle.is_file():
                binds["/etc/ssl/certs/ca-certificates.crt"] = bundle
            _chroot(
                rootfs, f"{VENV}/bin/pip", "install", "-q", "--disable-pip-version-check",
                f"/tmp/{whl.name}", binds=binds,
            )  # fmt: skip
            (rootfs / "tmp" / whl.name).unlink()
            (rootfs / "etc" / "resolv.conf").write_text("")
            for leftover in ("var/cache/apt", "var/lib/apt/lists", "root/.cache"):
                shutil.rmtree(rootfs / leftover, ignore_errors=True)
            for cache in rootfs.rglob("__pycache__"):
                if str(cache).startswith(str(rootfs / "usr" / "share")):
                    shutil.rmtree(cache, ignore_errors=True)
            log.info("image: wheel installed", seconds=round(time.monotonic() - started, 1))
            layer = oci.layer_from_dir(rootfs)
            log.info("image: layer written", seconds=round(time.monotonic() - started, 1))
        config = oci.image_config(
            [layer],
            entrypoint=["darwin-dra"],
            env=[f"PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            labels={"org.opencontainers.image.version": version, "io.snn.darwin.source": key},
        )
        oci.write_layout(image.tar, image.name, [layer], config, also=[version_name])
        seconds = time.monotonic() - started
        log.info("driver image built", image=image.name, seconds=round(seconds, 1))
        prune("darwin-dra-*.tar", keep=4)  # about 120 MB each; other checkouts use theirs
        return DriverImage(image, version_name, built=True, seconds=seconds)
