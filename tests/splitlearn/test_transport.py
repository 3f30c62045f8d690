"""The stream across the cut is mutual TLS: a client whose certificate is not the edge's is
refused, and a client without a certificate never gets through the handshake."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path

import numpy as np
import pytest
from darwin_dra.cluster.pki import CertificateAuthority
from darwin_dra.runtime.tls import TlsFiles
from darwin_dra.splitlearn import wire
from darwin_dra.splitlearn.transport import accept_edge, connect_server, listen


def _pki(tmp: Path) -> tuple[TlsFiles, TlsFiles, TlsFiles]:
    ca = CertificateAuthority(tmp / "pki")
    s, e, x = (
        ca.issue("server", "server", server=True),
        ca.issue("edge", "edge"),
        ca.issue("mallory", "mallory"),
    )
    return (
        TlsFiles(ca.cert_path, s.cert, s.key),
        TlsFiles(ca.cert_path, e.cert, e.key),
        TlsFiles(ca.cert_path, x.cert, x.key),
    )


def _serve(srv: socket.socket, tls: TlsFiles, out: list[object]) -> None:
    try:
        stream = accept_edge(srv, tls, 30)
        _, body = stream.receive()
        out.append(wire.decode_batch(body))
        stream.close()
    except (PermissionError, OSError, ssl.SSLError) as exc:
        out.append(exc)


@pytest.mark.timeout(60)
def test_the_edge_gets_through_and_a_stranger_is_refused(tmp_path: Path) -> None:
    server_tls, edge_tls, stranger_tls = _pki(tmp_path)
    s = (np.random.default_rng(0).random((2, 4, 5)) < 0.3).astype(np.float32)
    for client, ok in ((edge_tls, True), (stranger_tls, False)):
        srv = listen("127.0.0.1", 0)
        port = srv.getsockname()[1]
        out: list[object] = []
        t = threading.Thread(target=_serve, args=(srv, server_tls, out))
        t.start()
        stream = connect_server("127.0.0.1", port, client, 30)
        with contextlib.suppress(OSError):  # the refused client may see its write fail
            stream.send(wire.encode_batch(s, None))
        t.join(30)
        stream.close()
        srv.close()
        if ok:
            assert isinstance(out[0], wire.Batch)
            assert np.array_equal(out[0].spikes, s)
        else:
            assert isinstance(out[0], PermissionError)
            assert "mallory" in str(out[0])
