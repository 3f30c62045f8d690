"""The pipeline's stage certificates, checked by a real TLS handshake (Python's ssl over a
socket pair): two stages of one pipeline connect; a stage of another pipeline is refused; a
client without a certificate is refused."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from darwin_dra.pipeline.certs import secret_body, stage_material

from tests.pipeline.pipelines import pipeline_obj

NOW = datetime.now(UTC)


def _files(tmp: Path, material: dict[str, bytes], stage: str) -> tuple[Path, Path, Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    paths = (tmp / "ca.crt", tmp / "tls.crt", tmp / "tls.key")
    for p, key in zip(paths, ("ca.crt", f"{stage}.crt", f"{stage}.key"), strict=True):
        p.write_bytes(material[key])
    return paths


def _handshake(
    server: tuple[Path, Path, Path], client: tuple[Path, Path, Path] | None, ca: Path, name: str
) -> str | None:
    """None when both sides accept; else the error the server or the client saw."""
    s_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    s_ctx.load_cert_chain(server[1], server[2])
    s_ctx.load_verify_locations(server[0])
    s_ctx.verify_mode = ssl.CERT_REQUIRED
    c_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c_ctx.load_verify_locations(ca)
    if client is not None:
        c_ctx.load_cert_chain(client[1], client[2])
    a, b = socket.socketpair()
    errors: list[str] = []

    def serve() -> None:
        try:
            with s_ctx.wrap_socket(a, server_side=True) as tls:
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            errors.append(f"server: {exc}")

    t = threading.Thread(target=serve)
    t.start()
    try:
        with c_ctx.wrap_socket(b, server_hostname=name) as tls:
            if tls.recv(2) != b"ok":
                errors.append("client: no data")
    except (ssl.SSLError, OSError) as exc:
        errors.append(f"client: {exc}")
    t.join(10)
    return "; ".join(errors) or None


def test_stages_of_one_pipeline_connect_and_strangers_are_refused(tmp_path: Path) -> None:
    mine = stage_material("digits", ["stage-0", "stage-1"], NOW)
    other = stage_material("other", ["stage-0"], NOW)
    down = _files(tmp_path / "s1", mine, "stage-1")
    up = _files(tmp_path / "s0", mine, "stage-0")
    stranger = _files(tmp_path / "x", other, "stage-0")
    assert _handshake(down, up, up[0], "stage-1") is None
    # A stage of another pipeline (another CA): the server refuses its certificate.
    err = _handshake(down, stranger, up[0], "stage-1")
    assert err is not None
    assert "server" in err
    # No certificate at all: refused.
    assert _handshake(down, None, up[0], "stage-1") is not None
    # The client checks the name: stage-1's certificate is not stage-0's.
    assert "client" in (_handshake(down, up, up[0], "stage-0") or "")


def test_secret_holds_the_ca_and_each_stage_key_and_is_owned() -> None:
    material = stage_material("digits", ["stage-0"], NOW)
    body = secret_body(pipeline_obj(), ["stage-0"], material)
    assert sorted(body["data"]) == ["ca.crt", "stage-0.crt", "stage-0.key"]
    assert base64.b64decode(body["data"]["stage-0.key"]).startswith(b"-----BEGIN PRIVATE KEY")
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert body["metadata"]["labels"]["darwin.snn.io/pipeline"] == "digits"
    with pytest.raises(KeyError):
        _ = material["ca.key"]  # the CA's key is never kept
