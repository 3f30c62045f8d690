"""The two processes of a split run: ``python -m darwin_dra.splitlearn.party edge|server``.

The server holds the server half, listens (mutual TLS), answers each batch of cut spikes with
the gradient at the cut (training) or the classes (use), and at END writes its own weights.
The edge loads the digits, holds the edge half, drives training and evaluation over the
stream, and writes its own weights. Each prints one JSON report line on stdout."""

from __future__ import annotations

import argparse
import base64
import errno
import io
import json
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from darwin_dra.runtime.framing import FrameError
from darwin_dra.runtime.tls import TlsFiles
from darwin_dra.splitlearn import wire
from darwin_dra.splitlearn.data import load, read, spikes
from darwin_dra.splitlearn.parts import Config, ServerPart, save_weights
from darwin_dra.splitlearn.snn import F32
from darwin_dra.splitlearn.train import cut_traffic, train_edge
from darwin_dra.splitlearn.transport import StreamLink, accept_edge, connect_server, listen


def _tls(args: argparse.Namespace) -> TlsFiles:
    return TlsFiles(Path(args.tls_ca), Path(args.tls_cert), Path(args.tls_key))


def _own_weights(args: argparse.Namespace, name: str, weights: dict[str, F32]) -> dict[str, str]:
    """Writes this party's weights; with --report-weights also puts them (an .npz, base64) in
    the report, which is how a pod hands them to whoever collects its log."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_weights(out / f"{name}.npz", weights)
    if not args.report_weights:
        return {}
    buf = io.BytesIO()
    np.savez(buf, **weights)  # type: ignore[arg-type]
    return {"weights_npz_b64": base64.b64encode(buf.getvalue()).decode()}


def _not_up_yet(exc: OSError) -> bool:
    """The server's pod may have its IP before it listens: refused, unreachable, timed out."""
    if isinstance(exc, ssl.SSLError):
        return False
    if isinstance(exc, (ConnectionRefusedError, TimeoutError)):
        return True
    return exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNRESET)


def run_server(args: argparse.Namespace) -> dict[str, Any]:
    cfg = Config(**json.loads(args.config))
    server = ServerPart(cfg, args.seed)
    host, port = args.listen.rsplit(":", 1)
    srv = listen(host, int(port))
    Path(args.port_file).write_text(str(srv.getsockname()[1]))
    stream = accept_edge(srv, _tls(args), args.timeout)
    srv.close()
    batches = samples = 0
    try:
        while True:
            kind, body = stream.receive()
            if kind == wire.END:
                break
            if kind != wire.BATCH:
                raise FrameError(f"expected BATCH or END, got {kind!r}")
            b = wire.decode_batch(body)
            if b.spikes.shape[2] != cfg.hidden:
                raise FrameError(f"{b.spikes.shape[2]} neurons at the cut, not {cfg.hidden}")
            batches += 1
            samples += b.spikes.shape[0]
            if b.labels is not None and b.labels.size and int(b.labels.max()) >= 10:
                raise FrameError(f"a label {int(b.labels.max())} outside the 10 classes")
            if b.train and b.labels is not None:
                loss, g = server.train_step(b.spikes, b.labels)
                stream.send(wire.encode_grad(loss, g))
            else:
                stream.send(wire.encode_pred(server.predict(b.spikes)))
    finally:
        stream.close()
    weights = _own_weights(args, "server", server.weights())
    return {
        **weights,
        "role": "server",
        "batches": batches,
        "samples": samples,
        "received": dict(stream.received),
        "sent": dict(stream.sent),
    }


def run_edge(args: argparse.Namespace) -> dict[str, Any]:
    cfg = Config(**json.loads(args.config))
    data = read(Path(args.data)) if args.data else load(limit=args.limit)
    host, port = args.connect.rsplit(":", 1)
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            stream = connect_server(host, int(port), _tls(args), args.timeout)
            break
        except OSError as exc:
            if not _not_up_yet(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    link = StreamLink(stream)
    try:
        edge, result = train_edge(data, cfg, args.seed, link)
        # the held-out traffic once more, alone on the wire, to count its bytes per sample
        rng = np.random.default_rng([args.seed, 4])
        before = stream.sent["B"]
        xte = spikes(data.test_x, cfg.steps)
        frames = 0
        for i in range(0, len(xte), 256):
            cut = cut_traffic(edge, xte[i : i + 256], cfg, rng)
            frames += len(wire.spike_frame(cut))
            link.predict(cut)
        held_out_bytes = stream.sent["B"] - before
        stream.send(wire.envelope(wire.END, b""))
    finally:
        stream.close()
    weights = _own_weights(args, "edge", edge.weights())
    n_test = len(data.test_x)
    return {
        **weights,
        "role": "edge",
        "accuracy": result.accuracy,
        "train_accuracy": result.train_accuracy,
        "losses": result.losses,
        "spikes_per_sample": result.spikes_per_sample,
        "cut_bytes_per_sample": held_out_bytes / n_test,
        "spike_frame_bytes_per_sample": frames / n_test,
        "seconds": result.seconds,
        "train_samples": len(data.train_x),
        "test_samples": n_test,
        "sent": dict(stream.sent),
        "received": dict(stream.received),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m darwin_dra.splitlearn.party")
    p.add_argument("role", choices=("edge", "server"))
    p.add_argument("--config", required=True, help="parts.Config as JSON")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, help="directory for this party's own weights")
    p.add_argument("--tls-ca", required=True)
    p.add_argument("--tls-cert", required=True)
    p.add_argument("--tls-key", required=True)
    p.add_argument("--listen", default="127.0.0.1:0", help="server: HOST:PORT")
    p.add_argument("--port-file", help="server: where to write the port it listens on")
    p.add_argument("--connect", help="edge: the server's HOST:PORT")
    p.add_argument("--limit", type=int, default=None, help="edge: at most this many samples")
    p.add_argument("--data", help="edge: the digits split as an .npz (data.save); else sklearn's")
    p.add_argument(
        "--report-weights", action="store_true", help="put this party's weights in its report"
    )
    p.add_argument("--timeout", type=float, default=120.0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.role == "server" and not args.port_file:
        print("server: --port-file is required", file=sys.stderr)
        return 2
    if args.role == "edge" and not args.connect:
        print("edge: --connect is required", file=sys.stderr)
        return 2
    try:
        report = run_server(args) if args.role == "server" else run_edge(args)
    except (OSError, ValueError, PermissionError) as exc:
        print(f"{args.role}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
