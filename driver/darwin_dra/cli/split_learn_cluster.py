"""`darwin-dra split-learn --cluster`: the two parties as pods on two nodes (the API edge of
splitlearn/pods.py). Creates the run's Secrets, the edge's data ConfigMap, a claim per party
and the server pod; once the server has a pod IP, the edge pod connecting to it; waits for both
to finish, reads their reports and their own weights from their logs, and removes what it made
(unless ``keep``)."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path
from typing import Any

from darwin_dra import kubeapi
from darwin_dra.cluster.pki import CertificateAuthority
from darwin_dra.splitlearn import pods
from darwin_dra.splitlearn.data import Split, save
from darwin_dra.splitlearn.parts import Config
from darwin_dra.splitlearn.transport import EDGE, SERVER


def _say(text: str) -> None:
    print(f"split-learn: {text}", file=sys.stderr, flush=True)


def _states(kube: kubeapi.PipelineKube, ns: str, s: pods.PodSettings) -> dict[str, pods.PodState]:
    _, found = kube.list_owned(ns, f"{pods.RUN_LABEL}={s.run}")
    by_role = {p["metadata"]["labels"].get(pods.ROLE_LABEL): p for p in found}
    return {role: pods.pod_state(p) for role, p in by_role.items() if role}


def _failed(kube: kubeapi.PipelineKube, ns: str, s: pods.PodSettings, role: str, why: str) -> str:
    try:
        log = kube.read_pod_log(ns, s.name(role), tail_lines=40)
    except kubeapi.KubeApiError as exc:
        log = f"(no log: {exc})"
    return f"the {role} pod {ns}/{s.name(role)} {why}\n{log[-3000:]}"


def _wait(
    kube: kubeapi.PipelineKube, ns: str, s: pods.PodSettings, roles: tuple[str, ...], done: str
) -> dict[str, pods.PodState]:
    """Until every pod of ``roles`` is past Pending (``done`` "Running") or Succeeded."""
    deadline = time.monotonic() + s.timeout_s
    last = ""
    while True:
        states = _states(kube, ns, s)
        for role in roles:
            st = states.get(role)
            if st is not None and st.phase == "Failed":
                raise RuntimeError(_failed(kube, ns, s, role, f"failed: {st.reason}"))
        ready = [states.get(r) for r in roles]
        if done == "Running" and all(st and st.phase in ("Running", "Succeeded") and st.ip
                                     for st in ready):  # fmt: skip
            return states
        if done == "Succeeded" and all(st and st.phase == "Succeeded" for st in ready):
            return states
        now = "; ".join(f"{r}: {st.phase} {st.node} {st.reason}" for r, st in states.items())
        if now != last:
            _say(now)
            last = now
        if time.monotonic() > deadline:
            raise RuntimeError(
                _failed(kube, ns, s, roles[-1], f"not {done} in {s.timeout_s:.0f} s ({now})")
            )
        time.sleep(1.0)


def _weights(work: Path, role: str, report: dict[str, Any]) -> None:
    import base64

    raw = report.pop("weights_npz_b64", None)
    if raw is None:
        raise RuntimeError(f"the {role} pod's report carries no weights")
    out = work / role
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{role}.npz").write_bytes(base64.b64decode(raw))


def run_pods(
    kube: kubeapi.PipelineKube,
    namespace: str,
    s: pods.PodSettings,
    work: Path,
    cfg: Config,
    seed: int,
    data: Split,
    keep: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Trains the split model with the two parties as pods; (edge report, server report), each
    with the node it ran on; each party's weights written to work/<role>/<role>.npz."""
    work.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority(work / "pki")
    pairs = {EDGE: ca.issue(EDGE, EDGE), SERVER: ca.issue(SERVER, SERVER, server=True)}
    buf = io.BytesIO()
    save(buf, data)
    try:
        for role, pair in pairs.items():
            kube.create(
                namespace,
                pods.tls_secret(
                    s, role, ca.cert_pem, pair.cert.read_bytes(), pair.key.read_bytes()
                ),
            )
            kube.create(namespace, pods.claim(s, role))
        kube.create(namespace, pods.data_config_map(s, buf.getvalue()))
        kube.create(namespace, pods.pod(s, SERVER, cfg, seed))
        server_ip = _wait(kube, namespace, s, (SERVER,), "Running")[SERVER].ip
        _say(f"server pod at {server_ip}; starting the edge pod")
        kube.create(namespace, pods.pod(s, EDGE, cfg, seed, server_ip))
        states = _wait(kube, namespace, s, (EDGE, SERVER), "Succeeded")
        reports = []
        for role in (EDGE, SERVER):
            report = pods.report_of_log(role, kube.read_pod_log(namespace, s.name(role), 20))
            _weights(work, role, report)
            report["node"], report["pod_ip"] = states[role].node, states[role].ip
            reports.append(report)
        if reports[0]["node"] == reports[1]["node"]:
            raise RuntimeError(f"both parties ran on {reports[0]['node']}")
        return reports[0], reports[1]
    finally:
        if not keep:
            for kind, name in pods.objects(s):
                kube.delete(namespace, kind, name)
