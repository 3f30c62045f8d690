"""The node agent process: registers the simulated nodes and keeps them Ready.

Run by the launcher as `python -m darwin_dra.cluster.heartbeat`, a process of its own so the
nodes stay Ready after `darwin-dra cluster up` has returned.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import structlog

from darwin_dra import kubeapi
from darwin_dra.cluster import nodes as simulated

log = structlog.get_logger(__name__)

LEASE_PERIOD = 10.0  # the kubelet's default renew interval (a quarter of the lease duration)
STATUS_PERIOD = 30.0


def run(
    kubeconfig: Path,
    nodes: dict[str, dict[str, str]],
    version: str,
    ready_file: Path,
    stop: threading.Event,
) -> None:
    agent = simulated.NodeAgent(kubeapi.connect(kubeconfig), version)
    for name, labels in nodes.items():
        agent.register(name, labels)
    ready_file.write_text("ready\n")
    log.info("nodes registered", nodes=sorted(nodes))
    last_status = time.monotonic()
    while not stop.wait(LEASE_PERIOD):
        post_status = time.monotonic() - last_status >= STATUS_PERIOD
        for name, labels in nodes.items():
            try:
                if not agent.exists(name):
                    agent.register(name, labels)
                    continue
                agent.renew_lease(name)
                if post_status:
                    agent.post_status(name)
            except Exception as exc:  # keep beating: the API server may be restarting
                log.warning("heartbeat failed", node=name, error=str(exc))
        if post_status:
            last_status = time.monotonic()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="darwin-dra-heartbeat")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--nodes", type=Path, required=True, help="JSON: node name -> labels")
    parser.add_argument("--version", required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args(argv)
    nodes: dict[str, dict[str, str]] = json.loads(args.nodes.read_text())
    stop = threading.Event()

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    run(args.kubeconfig, nodes, args.version, args.ready_file, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
