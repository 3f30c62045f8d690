"""A split run as two processes (the process edge): one CA, a certificate for each party, the
server started first (it writes the port it listens on), then the edge; both reports read back.
Each party writes its weights into its own directory; nothing else passes between them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from darwin_dra.cluster.pki import CertificateAuthority
from darwin_dra.splitlearn.data import Split, save
from darwin_dra.splitlearn.parts import Config
from darwin_dra.splitlearn.transport import EDGE, SERVER


def _party(
    role: str, work: Path, ca: Path, cert: Path, key: Path, extra: list[str], cfg: Config, seed: int
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, err = work / f"{role}.out", work / f"{role}.err"
    cmd = [
        sys.executable, "-m", "darwin_dra.splitlearn.party", role,
        "--config", json.dumps(cfg.to_dict()), "--seed", str(seed),
        "--out", str(work / role), "--tls-ca", str(ca), "--tls-cert", str(cert),
        "--tls-key", str(key), *extra,
    ]  # fmt: skip
    env = dict(os.environ, PYTHONHASHSEED="0")
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(cmd, stdout=o, stderr=e, env=env)
    return proc, out, err


def run_split(
    work: Path, cfg: Config, seed: int, data: Split, timeout_s: float = 900.0
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Trains the split model with two processes; returns (edge report, server report). The
    data goes to the edge alone, as a file in its own directory."""
    work.mkdir(parents=True, exist_ok=True)
    (work / EDGE).mkdir(exist_ok=True)
    data_file = work / EDGE / "data.npz"
    save(data_file, data)
    ca = CertificateAuthority(work / "pki")
    e_pair = ca.issue(EDGE, EDGE)
    s_pair = ca.issue(SERVER, SERVER, server=True)
    port_file = work / "server.port"
    port_file.unlink(missing_ok=True)
    server, s_out, s_err = _party(
        SERVER, work, ca.cert_path, s_pair.cert, s_pair.key,
        ["--listen", "127.0.0.1:0", "--port-file", str(port_file)], cfg, seed,
    )  # fmt: skip
    procs = [server]
    try:
        deadline = time.monotonic() + 120
        while not port_file.exists() or not port_file.read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not listen:\n{s_err.read_text()[-2000:]}")
            time.sleep(0.05)
        extra = ["--connect", f"127.0.0.1:{port_file.read_text()}", "--data", str(data_file)]
        edge, e_out, e_err = _party(
            EDGE, work, ca.cert_path, e_pair.cert, e_pair.key, extra, cfg, seed
        )
        procs.append(edge)
        reports = []
        for name, p, out, err in ((EDGE, edge, e_out, e_err), (SERVER, server, s_out, s_err)):
            try:
                p.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"the {name} did not finish in {timeout_s} s") from None
            if p.returncode != 0:
                raise RuntimeError(f"the {name} exited {p.returncode}:\n{err.read_text()[-3000:]}")
            reports.append(json.loads(out.read_text().strip().splitlines()[-1]))
        return reports[0], reports[1]
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
