"""CDI specs: how a container runtime hands a prepared partition to a container.

One spec file per claim (``darwin.snn.io-<claimUID>.json``), so unprepare deletes one file and a
leftover is easy to match to its claim. Each allocated device becomes one CDI device named
``<claimUID>-<request>-<device>``; the kubelet passes its id ``darwin.snn.io/partition=<name>``
to the runtime, which sets the environment and mounts the partition's spike socket directory.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from darwin_dra import DRIVER_NAME
from darwin_dra.atomicfile import atomic_write
from darwin_dra.plugin.records import DeviceIntent, Prepared

log = structlog.get_logger(__name__)

# Every field used here exists since CDI 0.3.0; 0.6.0 is what the DRA-era runtimes read.
CDI_VERSION = "0.6.0"
VENDOR = DRIVER_NAME  # the CDI vendor is the driver name
CLASS = "partition"
KIND = f"{VENDOR}/{CLASS}"
SPEC_PREFIX = f"{VENDOR}-"
# Where the partition's socket directory appears inside the container.
CONTAINER_ROOT = "/var/run/darwin/partitions"
SPIKE_SOCKET = "spike.sock"

# CDI naming rules (container-device-interface pkg/parser).
VENDOR_RE = re.compile(r"^[A-Za-z]([A-Za-z0-9_.-]*[A-Za-z0-9])?$")
CLASS_RE = VENDOR_RE
DEVICE_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.:-]*[A-Za-z0-9])?$")


def cdi_device_name(claim_uid: str, request: str, device: str) -> str:
    """``<claimUID>-<request>-<device>`` reduced to the characters CDI allows."""
    raw = f"{claim_uid}-{request}-{device}"
    name = re.sub(r"[^A-Za-z0-9_.:-]", "-", raw)
    name = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", name)
    if not name:
        raise ValueError(f"no valid CDI device name can be made from {raw!r}")
    return name


def socket_dir(root: Path, claim_uid: str, intent: DeviceIntent) -> Path:
    """The host directory of a device's spike socket, which its container mounts."""
    return root / cdi_device_name(claim_uid, intent.request, intent.device)


def cdi_device_id(name: str) -> str:
    return f"{KIND}={name}"


def compact_ranges(values: Sequence[int]) -> str:
    """``0,1,2,5,7,8`` -> ``0-2,5,7-8``: the core list stays short for a whole chip."""
    out: list[str] = []
    ordered = sorted(set(values))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def env_scope(request: str, index: int) -> str:
    """The variable infix of a request's device: ``reservoir``, 1 -> ``RESERVOIR_1``.

    A container that gets several devices sees every device's edits; the unscoped DARWIN_*
    variables then hold only one of them, so each device also sets its own, named after its
    request (and its index within the request from the second device on)."""
    base = re.sub(r"[^A-Za-z0-9]", "_", request).upper()
    return base if index == 0 else f"{base}_{index}"


def device_env(dev: Prepared, container_dir: str, scope: str) -> list[str]:
    fields = {
        "PARTITION": str(dev.partition_id),
        "CORES": compact_ranges(dev.cores),
        "SPIKE_ENDPOINT": f"unix://{container_dir}/{SPIKE_SOCKET}",
        "KEPS": str(dev.intent.keps),
    }
    plain = [f"DARWIN_{k}={v}" for k, v in fields.items()]
    return plain + [f"DARWIN_{scope}_{k}={v}" for k, v in fields.items()]


def build_spec(claim_uid: str, devices: Sequence[Prepared], socket_root: Path) -> dict[str, Any]:
    """The CDI spec of one claim (pure); each device mounts its socket dir under socket_root."""
    entries = []
    seen: dict[str, int] = {}
    for dev in devices:
        request = dev.intent.request
        name = cdi_device_name(claim_uid, request, dev.intent.device)
        container_dir = f"{CONTAINER_ROOT}/{name}"
        index = seen.get(request, 0)
        seen[request] = index + 1
        entries.append(
            {
                "name": name,
                "containerEdits": {
                    "env": device_env(dev, container_dir, env_scope(request, index)),
                    # A directory, not the socket itself: the engine may recreate the socket
                    # and a bind mount of the old inode would go stale.
                    "mounts": [
                        {
                            "hostPath": str(socket_dir(socket_root, claim_uid, dev.intent)),
                            "containerPath": container_dir,
                            "options": ["rbind", "rw", "nosuid", "nodev", "noexec"],
                        }
                    ],
                },
            }
        )
    if len({e["name"] for e in entries}) != len(entries):
        raise ValueError(f"claim {claim_uid}: two devices map to the same CDI name")
    return {"cdiVersion": CDI_VERSION, "kind": KIND, "devices": entries}


class CDIWriter:
    def __init__(self, cdi_dir: Path, socket_root: Path) -> None:
        self.cdi_dir = cdi_dir
        self.socket_root = socket_root

    def spec_path(self, claim_uid: str) -> Path:
        if not DEVICE_RE.match(claim_uid):
            raise ValueError(f"claim UID {claim_uid!r} cannot name a CDI spec file")
        return self.cdi_dir / f"{SPEC_PREFIX}{claim_uid}.json"

    def write(self, claim_uid: str, devices: Sequence[Prepared], namespace: str = "") -> list[str]:
        """Write (or replace) the claim's spec; returns the CDI device ids, in device order."""
        spec = build_spec(claim_uid, devices, self.socket_root)
        self.cdi_dir.mkdir(parents=True, exist_ok=True)
        path = self.spec_path(claim_uid)
        data = json.dumps(spec, indent=2, sort_keys=True).encode()
        atomic_write(path, data, mode=0o644)
        ids = [cdi_device_id(d["name"]) for d in spec["devices"]]
        log.info("wrote CDI spec", claim_uid=claim_uid, namespace=namespace, path=str(path))
        return ids

    def remove(self, claim_uid: str, namespace: str = "") -> bool:
        """Delete the claim's spec; False if there was none (unprepare is idempotent)."""
        try:
            self.spec_path(claim_uid).unlink()
        except FileNotFoundError:
            return False
        log.info("removed CDI spec", claim_uid=claim_uid, namespace=namespace)
        return True

    def claims(self) -> list[str]:
        """Claim UIDs that have a spec here, for garbage collection against the checkpoint."""
        out: list[str] = []
        with contextlib.suppress(FileNotFoundError):
            for path in self.cdi_dir.iterdir():
                name = path.name
                if name.startswith(SPEC_PREFIX) and name.endswith(".json"):
                    out.append(name[len(SPEC_PREFIX) : -len(".json")])
        return sorted(out)
