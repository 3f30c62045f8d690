"""OCI layouts written without a registry: readable, named for containerd, reproducible."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

from darwin_dra.cluster import oci


def _root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_text("#!/bin/sh\necho hi\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "bin" / "alias").symlink_to("tool")
    (root / "etc").mkdir()
    (root / "etc" / "motd").write_text("hello\n")
    return root


def _read(tar_path: Path) -> dict[str, bytes]:
    with tarfile.open(tar_path) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def test_layout_is_what_ctr_import_reads(tmp_path: Path) -> None:
    layer = oci.layer_from_dir(_root(tmp_path))
    config = oci.image_config([layer], cmd=["/bin/tool"])
    out = tmp_path / "img.tar"
    digest = oci.write_layout(out, "darwin-dra.local/x:1", [layer], config, also=["x.local/y:2"])
    files = _read(out)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    names = [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]]
    assert names == ["darwin-dra.local/x:1", "x.local/y:2"]
    assert {m["digest"] for m in index["manifests"]} == {digest}
    manifest = json.loads(files["blobs/sha256/" + digest.removeprefix("sha256:")])
    for desc in (manifest["config"], *manifest["layers"]):
        blob = files["blobs/sha256/" + desc["digest"].removeprefix("sha256:")]
        assert len(blob) == desc["size"]
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == desc["digest"]
    [layer_desc] = manifest["layers"]
    assert layer_desc["mediaType"] == oci.LAYER
    raw = gzip.decompress(files["blobs/sha256/" + layer_desc["digest"].removeprefix("sha256:")])
    img_config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"][7:]])
    assert img_config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(raw).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin/alias"].issym()
    assert members["bin/alias"].linkname == "tool"
    assert members["bin/tool"].mode & 0o111
    assert {m.uid for m in members.values()} == {0}
    assert {m.mtime for m in members.values()} == {0}


def test_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    first = oci.layer_from_dir(_root(tmp_path / "a"))
    second = oci.layer_from_dir(_root(tmp_path / "b"))
    assert first.blob.digest == second.blob.digest
    assert first.diff_id == second.diff_id
    (tmp_path / "b" / "root" / "etc" / "motd").write_text("changed\n")
    assert oci.layer_from_dir(tmp_path / "b" / "root").blob.digest != first.blob.digest
