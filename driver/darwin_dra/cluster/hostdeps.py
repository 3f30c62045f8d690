"""What a real node needs from the host's Debian packages, installed when missing (as root,
without asking: `make test` on a fresh machine must get there by itself)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import structlog

from darwin_dra.cluster.errors import ToolchainError

log = structlog.get_logger(__name__)

# A file each package provides -> the Debian package. crun does not work with containerd 2.4
# ("unknown version specified"); runc does.
NODE_PACKAGES: Mapping[str, str] = {
    "/usr/sbin/runc": "runc",
    "/usr/lib/cni/bridge": "containernetworking-plugins",
    "/usr/sbin/ip": "iproute2",
    "/usr/bin/nsenter": "util-linux",
    "/usr/sbin/sysctl": "procps",
}
# The demo's test opens the demo's report in a headless browser (make test installs it).
BROWSER_PACKAGES: Mapping[str, str] = {"/usr/bin/chromium": "chromium"}
IMAGE_PACKAGES: Mapping[str, str] = {
    "/usr/bin/mmdebstrap": "mmdebstrap",
    "/usr/bin/dpkg-deb": "dpkg",
}
# Everything `make test` needs, installed in one apt run before the builds that run side by side.
ALL_PACKAGES: Mapping[str, str] = {**NODE_PACKAGES, **BROWSER_PACKAGES, **IMAGE_PACKAGES}


def missing(packages: Mapping[str, str]) -> list[str]:
    return sorted({pkg for path, pkg in packages.items() if not Path(path).exists()})


def apt(*args: str) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # A fresh machine's apt-daily may hold dpkg's lock for a while: wait for it, do not fail.
    cmd = ["apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=600", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise ToolchainError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr}")


def ensure(packages: Mapping[str, str]) -> list[str]:
    """Install the packages whose files are missing; returns what was installed."""
    needed = missing(packages)
    if not needed:
        return []
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ToolchainError(
            f"real nodes need the Debian packages {', '.join(needed)}: install them as root "
            "(apt-get install) or run with --node-kind harness"
        )
    log.info("installing Debian packages", packages=needed)
    apt("update")
    apt("install", "--no-install-recommends", *needed)
    if still := missing(packages):
        raise ToolchainError(f"apt-get install left {', '.join(still)} missing")
    return needed
