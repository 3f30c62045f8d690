"""A split model's stages as `darwin-dra stage` processes on this machine (the process edge,
for the tests and `darwin-dra bench pipeline`): one chip host per node, a partition per engine
stage served as its SpikePort, one process per stage, TLS certificates from the cluster's CA
code. In a cluster the controller does this with pods; here processes stand for the nodes.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from darwin_dra.chiphost.app import default_socket
from darwin_dra.chiphost.client import ChipHostClient
from darwin_dra.cluster.chiphost import start_chip_host
from darwin_dra.cluster.pki import CertificateAuthority
from darwin_dra.cluster.ports import free_port
from darwin_dra.models.compile import CompiledModel
from darwin_dra.pipeline.split import INPUT, SplitPlan
from darwin_dra.pipeline.stagepart import route_map
from darwin_dra.runtime.routes import RouteSpec
from darwin_dra.runtime.tls import TlsFiles


@dataclass(frozen=True)
class Slot:
    """Where an engine stage runs: a node's chip and the domains of its partition."""

    node: str
    chip: int
    domains: tuple[int, ...]


def on_chip_edges(plan: SplitPlan, slots: Mapping[str, Slot]) -> list[tuple[str, str]]:
    """The edges between engine stages whose partitions are on one chip of one node: the
    chip's router carries them (pure)."""
    return [
        (e.src, e.dst)
        for e in plan.edges
        if e.src in slots
        and e.dst in slots
        and (slots[e.src].node, slots[e.src].chip) == (slots[e.dst].node, slots[e.dst].chip)
    ]


@dataclass(frozen=True)
class Routing:
    """What chip_hosts programs on the chips' routers: a route per on-chip edge, each with the
    neuron map the plan gives it, the partitions owned by ``owner``."""

    model: CompiledModel
    plan: SplitPlan
    edges: Collection[tuple[str, str]]
    lookahead_steps: int
    owner: str = "local/pipeline"
    prefix: str = ""  # the slots' names are prefix + stage name


@contextlib.contextmanager
def chip_hosts(
    work: Path,
    slots: Mapping[str, Slot],
    chips_per_node: int = 2,
    routing: Routing | None = None,
    metrics_ports: Mapping[str, int] | None = None,
) -> Iterator[dict[str, str]]:
    """One chip host per node named in ``slots``; yields each stage's SpikePort endpoint.
    With ``routing``, programs its routes as the plugin would before the stages start;
    ``metrics_ports``: node -> the port its chip host serves /metrics on."""
    nodes = sorted({s.node for s in slots.values()})
    procs: list[subprocess.Popen[bytes]] = []
    clients: list[ChipHostClient] = []
    try:
        endpoints: dict[str, str] = {}
        for node in nodes:
            inv = work / f"{node}-inventory.yaml"
            chips = "".join(
                f"          - {{model: darwin3, serial: {node}-{c}}}\n"
                for c in range(chips_per_node)
            )
            inv.write_text(
                "apiVersion: darwin.snn.io/v1alpha1\nkind: Inventory\nnodes:\n"
                f"  - name: {node}\n    fabrics:\n      - id: {node}-f\n        chips:\n" + chips
            )
            state = work / f"{node}-state"
            port = (metrics_ports or {}).get(node)
            log = work / f"{node}-chip-host.log"
            procs.append(start_chip_host(node, inv, state, log, metrics_port=port))
            client = ChipHostClient(default_socket(state))
            clients.append(client)
            wanted: dict[Path, int] = {}
            parts: dict[str, int] = {}
            for name, slot in slots.items():
                if slot.node != node:
                    continue
                part = client.create_partition(
                    slot.chip,
                    domains=list(slot.domains),
                    owner=routing.owner if routing is not None else "",
                )
                parts[name] = part
                sock = state / "partitions" / name / "spike.sock"
                wanted[sock] = part
                endpoints[name] = f"unix://{sock}"
            for src, dst in routing.edges if routing is not None else ():
                assert routing is not None
                a, b = routing.prefix + src, routing.prefix + dst
                if a in parts and b in parts:
                    neurons, inputs = route_map(routing.model, routing.plan, src, dst)
                    client.program_route(
                        RouteSpec(
                            name=f"{src}->{dst}",
                            src=parts[a],
                            dst=parts[b],
                            src_neurons=neurons.astype(np.int64),
                            dst_inputs=inputs.astype(np.int64),
                            lookahead=routing.lookahead_steps,
                            src_name=src,
                            dst_name=dst,
                        )
                    )
            failed = client.serve_ports(wanted)
            if failed:
                raise RuntimeError(f"chip host {node} could not serve {failed}")
        yield endpoints
    finally:
        for c in clients:
            c.close()
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def stage_certificates(work: Path, names: Sequence[str]) -> tuple[dict[str, TlsFiles], Path]:
    """One CA for the pipeline and a certificate per stage (CN and DNS name = the stage)."""
    ca = CertificateAuthority(work / "pki")
    out = {}
    for n in names:
        pair = ca.issue(n, n, server=True)
        out[n] = TlsFiles(ca.cert_path, pair.cert, pair.key)
    return out, ca.cert_path


@dataclass
class Launched:
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    listen: dict[str, str] = field(default_factory=dict)

    def wait(self, timeout_s: float) -> dict[str, dict[str, Any]]:
        """Every stage's --json report; raises with the failing stage's log."""
        deadline = time.monotonic() + timeout_s
        reports: dict[str, dict[str, Any]] = {}
        for name, p in self.procs.items():
            try:
                p.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stop()
                raise RuntimeError(f"stage {name} did not finish:\n{self.tail(name)}") from None
            if p.returncode != 0:
                self.stop()
                raise RuntimeError(f"stage {name} exited {p.returncode}:\n{self.tail(name)}")
            out = self.logs[name].with_suffix(".out").read_text().strip().splitlines()
            reports[name] = json.loads(out[-1])
        return reports

    def tail(self, name: str) -> str:
        err = self.logs[name].read_text(errors="replace")[-3000:]
        return err

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=10)


def launch(
    work: Path,
    model: Path,
    plan_path: Path,
    plan: SplitPlan,
    endpoints: Mapping[str, str],
    input_args: Sequence[str],
    *,
    steps: int,
    window: int,
    lookahead: int = 4,
    tls: Mapping[str, TlsFiles] | None = None,
    extra: Sequence[str] = (),
    output: Path | None = None,
    stage_outputs: Mapping[str, Path] | None = None,
    on_chip: Collection[tuple[str, str]] = (),
    input_in_place: bool = False,
) -> Launched:
    """Starts every stage of the plan, downstream first, each listening on a free port (if it
    has an upstream over a socket); ``output`` is the output stage's --output, ``stage_outputs``
    other stages' (a readout's); the ``on_chip`` edges go over their chip's route. With
    ``input_in_place`` each engine stage that reads the input draws it (``input_args``)
    itself and no input stage runs."""
    launched = Launched()
    names = [s.name for s in plan.stages]
    routed = set(on_chip)
    if input_in_place:
        names = [n for n in names if plan.stage(n).kind != "input"]
        routed |= {(INPUT, d) for d in plan.downstream(INPUT)}  # on no socket
    for n in names:
        if any((u, n) not in routed for u in plan.upstream(n)):
            launched.listen[n] = f"tcp://127.0.0.1:{free_port()}"
    for n in reversed(names):
        cmd = [sys.executable, "-m", "darwin_dra.cli.main", "stage", "--json"]
        cmd += ["--model", str(model), "--plan", str(plan_path), "--stage", n]
        cmd += ["--steps", str(steps), "--window", str(window), "--lookahead", str(lookahead)]
        cmd += list(extra)
        if n in endpoints:
            cmd += ["--endpoint", endpoints[n]]
        if n in launched.listen:
            cmd += ["--listen", launched.listen[n]]
        for d in plan.downstream(n):
            if (n, d) in routed:
                cmd += ["--on-chip", d]
            else:
                cmd += ["--downstream", f"{d}={launched.listen[d]}"]
        cmd += [
            arg
            for u in plan.upstream(n)
            if (u, n) in routed and u != INPUT
            for arg in ("--on-chip", u)
        ]
        if tls is not None:
            f = tls[n]
            cmd += ["--tls-ca", str(f.ca), "--tls-cert", str(f.cert), "--tls-key", str(f.key)]
        if plan.stage(n).kind == "input" or (input_in_place and INPUT in plan.upstream(n)):
            cmd += list(input_args)
        if plan.stage(n).kind == "output" and output is not None:
            cmd += ["--output", str(output)]
        if stage_outputs and n in stage_outputs:
            cmd += ["--output", str(stage_outputs[n])]
        log = work / f"stage-{n}.log"
        launched.logs[n] = log
        with log.open("wb") as err, log.with_suffix(".out").open("wb") as out:
            launched.procs[n] = subprocess.Popen(cmd, stdout=out, stderr=err)
    return launched
