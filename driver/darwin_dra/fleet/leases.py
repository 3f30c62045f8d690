"""The simulated fleet's kubelets, as far as the control plane sees them: Node objects kept
Ready by renewing their Leases, as scheduler_perf does.

The renewals run in a process of their own. In the bench's process they shared the GIL with
the threads that create, ungate and watch thousands of pods, came late, and the node lifecycle
controller marked 32 to 162 of 500 nodes NotReady during runs (docs/fleet.md). Each round the
keeper also samples which nodes are not Ready or tainted, for fleet/readiness.py's verdict on
the measured window.
"""

from __future__ import annotations

import functools
import multiprocessing
import queue
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import structlog

from darwin_dra import kubeapi
from darwin_dra.cluster import launcher
from darwin_dra.cluster.nodes import NodeAgent, not_ready_reasons
from darwin_dra.fleet.readiness import Sample

log = structlog.get_logger(__name__)

LEASE_PERIOD_S = 10.0  # the kubelet's renew interval: a quarter of the 40 s lease
STATUS_EVERY = 3  # re-post node status every 3rd round (30 s), as the cluster's node agent does
RENEWERS = 16  # threads renewing in the keeper's process (each mostly waits on the API server)


def parallel(fn: Callable[[Any], object], items: Iterable[Any], workers: int = 8) -> None:
    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(fn, i) for i in items]:
            future.result()


def not_ready_of(kube: kubeapi.FleetKube, nodes: Iterable[str]) -> frozenset[str]:
    """The nodes of ``nodes`` not Ready or carrying a NoSchedule/NoExecute taint, now."""
    mine = set(nodes)
    return frozenset(
        str(n["metadata"]["name"])
        for n in kube.list_nodes()
        if n["metadata"]["name"] in mine and not_ready_reasons(n)
    )


def _renew(agent: NodeAgent, name: str, post_status: bool = False) -> None:
    try:
        agent.renew_lease(name)
        if post_status:
            # A node the lifecycle controller marked NotReady is Ready again only once its
            # "kubelet" posts a Ready condition.
            agent.post_status(name)
    except kubeapi.KubeApiError as exc:
        log.warning("lease renewal failed", node=name, error=str(exc))


def _keep(
    kubeconfig: str, nodes: Sequence[str], version: str, stop: Event, out: Any
) -> None:  # pragma: no cover - runs in the keeper's process; tests/fleet runs it for real
    kube = kubeapi.connect_fleet(Path(kubeconfig), timeout_s=30)
    agent = NodeAgent(kube, version)

    def sample(round_s: float) -> None:
        try:
            out.put((time.monotonic(), sorted(not_ready_of(kube, nodes)), round_s))
        except kubeapi.KubeApiError as exc:
            log.warning("readiness sample failed", error=str(exc))

    sample(0.0)
    rounds = 0
    due = time.monotonic()
    # Rounds start at a fixed rate, not a fixed pause after the last one: a slow round (a
    # loaded API server) must not push the next renewal toward the lease's expiry.
    while not stop.wait(max(0.0, (due := due + LEASE_PERIOD_S) - time.monotonic())):
        rounds += 1
        began = time.monotonic()
        status = rounds % STATUS_EVERY == 0
        parallel(functools.partial(_renew, agent, post_status=status), nodes, RENEWERS)
        sample(time.monotonic() - began)
        due = max(due, time.monotonic() - LEASE_PERIOD_S)  # never a burst of late rounds


class LeaseKeeper:
    """Registers simulated nodes, then renews their Leases in its own process until stopped."""

    def __init__(
        self, kube: kubeapi.FleetKube, kubeconfig: Path, nodes: Sequence[str], version: str
    ) -> None:
        self._kube = kube
        self._nodes = list(nodes)
        self._version = version
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self._stop = ctx.Event()
        self._out: Any = ctx.Queue()
        self._process = ctx.Process(
            target=_keep,
            args=(str(kubeconfig), self._nodes, version, self._stop, self._out),
            name="darwin-dra-leases",
            daemon=True,
        )
        self._samples: list[Sample] = []

    def register(self) -> None:
        agent = NodeAgent(self._kube, self._version)
        parallel(
            lambda item: agent.register(item[1], launcher.node_labels(item[1], item[0])),
            list(enumerate(self._nodes)),
        )
        self._process.start()

    def samples(self) -> list[Sample]:
        """Every sample the keeper has taken so far."""
        while True:
            try:
                at, names, round_s = self._out.get_nowait()
            except queue.Empty:
                return list(self._samples)
            self._samples.append(Sample(float(at), frozenset(names), float(round_s)))

    def sample_now(self) -> Sample:
        """A sample taken by the caller, for the end of a window."""
        s = Sample(time.monotonic(), not_ready_of(self._kube, self._nodes))
        self._samples.append(s)
        return s

    def not_ready(self) -> int:
        """How many of the fleet's nodes are not Ready or tainted now."""
        return len(self.sample_now().not_ready)

    def stop(self) -> None:
        self._stop.set()
        if self._process.pid is None:
            return
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=10)
