"""OCI image layouts written without a registry or a container engine: a root filesystem
directory becomes a gzip layer, and layers, config, manifest and an index carrying
`io.containerd.image.name` go into one tar that `ctr images import` reads.

Byte for byte reproducible: entries sorted, owners root, times fixed, gzip without a name or
time, so the same inputs always give the same digests (the cache relies on it).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EPOCH = 0  # every file's mtime, and the image's "created" time
CREATED = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.data),
            **extra,
        }


@dataclass(frozen=True)
class Layer:
    blob: Blob
    diff_id: str  # sha256 of the uncompressed tar


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def layer_from_dir(root: Path) -> Layer:
    """A gzip layer of everything below `root` (paths relative to it, owners root:root)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(_walk(root)):
            rel = path.relative_to(root).as_posix()
            info = tar.gettarinfo(str(path), arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = EPOCH
            info.pax_headers = {}
            if info.isreg():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    data = raw.getvalue()
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", compresslevel=6, mtime=EPOCH, filename="") as gz:
        gz.write(data)
    return Layer(Blob(LAYER, packed.getvalue()), "sha256:" + hashlib.sha256(data).hexdigest())


def _walk(root: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames + filenames:
            path = base / name
            mode = path.lstat().st_mode
            if stat.S_ISSOCK(mode) or stat.S_ISFIFO(mode):
                continue  # nothing a layer can carry usefully
            out.append(path)
    return out


def image_config(
    layers: Sequence[Layer],
    *,
    entrypoint: Sequence[str] | None = None,
    cmd: Sequence[str] | None = None,
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
    workdir: str = "/",
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {"Env": list(env), "WorkingDir": workdir}
    if entrypoint is not None:
        config["Entrypoint"] = list(entrypoint)
    if cmd is not None:
        config["Cmd"] = list(cmd)
    if labels:
        config["Labels"] = dict(labels)
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": CREATED, "created_by": "darwin-dra oci"} for _ in layers],
    }


def _tag(name: str) -> str:
    return name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"


def write_layout(
    out: Path,
    name: str,
    layers: Sequence[Layer],
    config: Mapping[str, Any],
    *,
    also: Sequence[str] = (),
) -> str:
    """The OCI layout of one image as a tar at `out`, named `name` and every name in `also`;
    returns the manifest digest."""
    config_blob = Blob(CONFIG, _canonical(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [layer.blob.descriptor() for layer in layers],
    }
    manifest_blob = Blob(MANIFEST, _canonical(manifest))
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [
            manifest_blob.descriptor(
                annotations={
                    "io.containerd.image.name": each,
                    "org.opencontainers.image.ref.name": _tag(each),
                },
                platform={"architecture": "amd64", "os": "linux"},
            )
            for each in (name, *also)
        ],
    }
    files: dict[str, bytes] = {
        "oci-layout": _canonical({"imageLayoutVersion": "1.0.0"}),
        "index.json": _canonical(index),
    }
    for blob in (config_blob, manifest_blob, *(layer.blob for layer in layers)):
        files["blobs/sha256/" + blob.digest.removeprefix("sha256:")] = blob.data
    tmp = out.with_suffix(".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tmp, "w") as tar:
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
            tar.addfile(info)
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, EPOCH
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(out)
    return manifest_blob.digest
