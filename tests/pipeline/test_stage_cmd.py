"""`darwin-dra stage` as a user runs it: a NIR model split into three engine stages plus the
input and output stages, five processes on this machine, each engine stage on its own
partition of a real chip host (two chips), every edge over TCP with mutual TLS. The outputs
equal the same model run unsplit on one engine, spike for spike; strangers are refused."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from darwin_dra.cluster.pki import CertificateAuthority
from darwin_dra.models.nirfile import load_model, write_graph
from darwin_dra.pipeline.local import Slot, chip_hosts, launch, stage_certificates
from darwin_dra.pipeline.outputs import output_digest
from darwin_dra.pipeline.split import plan_split
from darwin_dra.runtime import framing

from tests.pipeline.graphs import layered
from tests.pipeline.threestage import three_stages

STEPS = 150


def _stranger(address: str, ca: Path, cert: Path | None, key: Path | None) -> str:
    """Connects to a stage as someone not in the pipeline; what happened."""
    host, port = address[len("tcp://") :].rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(ca))
    if cert is not None and key is not None:
        ctx.load_cert_chain(str(cert), str(key))
    try:
        with (
            socket.create_connection((host, int(port)), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname="s1") as s,
        ):
            s.sendall(framing.encode_hello(framing.Hello("x", "s0", "s1", 1)))
            data = s.recv(1)
            return "closed" if not data else f"answered {data!r}"
    except (ssl.SSLError, OSError) as exc:
        return f"refused: {type(exc).__name__}"


@pytest.mark.slow  # runs stages or the CLI in subprocesses (10-25 s)
def test_three_stages_over_mutual_tls_equal_the_unsplit_model(tmp_path: Path) -> None:
    x = three_stages(tmp_path, STEPS)
    nir_file, model, plan, plan_file, spikes, want = (
        x.nir_file,
        x.model,
        x.plan,
        x.plan_file,
        x.spikes,
        x.want,
    )
    assert sum(x.size for x, _ in want.values()) > 50

    names = [s.name for s in plan.stages]
    tls, ca = stage_certificates(tmp_path, names)
    slots = {s.name: Slot("node-a", j % 2, (j // 2,)) for j, s in enumerate(plan.engine_stages())}
    out = tmp_path / "outputs.npz"
    with chip_hosts(tmp_path, slots) as endpoints:
        run = launch(
            tmp_path,
            nir_file,
            plan_file,
            plan,
            endpoints,
            # Paced (150 steps in 5 s): the strangers must find s1 still running, however
            # fast this machine runs the model.
            ["--input", f"file:{spikes}", "--rate", str(STEPS // 5)],
            steps=STEPS,
            window=8,
            lookahead=2,
            tls=tls,
            extra=["--dt", "1e-3"],
            output=out,
        )
        # s1 waits for its upstreams: strangers knock first
        time.sleep(0.5)
        other = CertificateAuthority(tmp_path / "other-pki").issue("s0", "s0", server=True)
        deadline = time.monotonic() + 60
        outcomes: list[str] = []
        while time.monotonic() < deadline:
            got = _stranger(run.listen["s1"], ca, None, None)
            if "ConnectionRefusedError" not in got:  # s1 is listening
                outcomes.append(got)
                break
            time.sleep(0.5)
        outcomes.append(_stranger(run.listen["s1"], ca, other.cert, other.key))
        reports = run.wait(240)
    assert all(not o.startswith("answered") for o in outcomes), outcomes
    assert reports["s1"]["refused"] == 2
    assert reports["output"]["output_digest"] == output_digest(want)
    with np.load(out) as z:
        for name, (tt, ii) in want.items():
            assert np.array_equal(z[f"{name}.steps"], tt)
            assert np.array_equal(z[f"{name}.ids"], ii)
    for r in reports.values():
        assert r["steps"] == STEPS + model.latency
        assert r["dropped"] == 0


@pytest.mark.slow  # runs stages or the CLI in subprocesses (10-25 s)
def test_bad_flags_are_named(tmp_path: Path) -> None:
    graph = layered([6, 6], n_in=4, skips=0, seed=1)
    nir_file = tmp_path / "model.nir"
    write_graph(nir_file, graph)
    plan = plan_split(load_model(nir_file), 2, max_group_neurons=6)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.to_json())

    def stage(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "darwin_dra.cli.main", "stage", "--model", str(nir_file)]
        cmd += ["--plan", str(plan_file), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    r = stage("--stage", "s0", "--endpoint", "unix:///nowhere", "--listen", "tcp://127.0.0.1:0")
    assert r.returncode == 1, r.stderr
    assert "no --downstream for s1" in r.stderr
    r = stage("--stage", "s9")
    assert r.returncode == 1, r.stderr
    assert "no stage 's9'" in r.stderr
    r = stage("--stage", "s1", "--downstream", "s1")
    assert r.returncode == 2, r.stderr
    assert "expected NAME=tcp://HOST:PORT" in r.stderr
    r = stage("--stage", "input", "--downstream", "s0=tcp://127.0.0.1:1")
    assert r.returncode == 1, r.stderr
    assert "needs --input" in r.stderr
    r = stage("--stage", "s0", "--tls-ca", "x")
    assert r.returncode == 2, r.stderr
    assert "go together" in r.stderr
