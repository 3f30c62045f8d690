"""A pipeline stage's edges on its chip's router (``--on-chip PEER``): the neighbour's partition
is on the same chip of the same chip host, and the chip host moves the spikes between the two
partitions (runtime/routes.py), so the stage opens no stream for that edge.

- As the source, the stage sends that peer nothing; the chip host takes the mapped neurons'
  spikes out of each Step, holds the stage back when it is ``lookahead`` steps past the peer,
  and is told when the stage runs no more steps (EndRoutes).
- As the destination, the stage's horizon for that peer is how far the source partition has
  run (SpikePort Routes, waiting for the window), and the chip host injects the route's spikes
  into each Step, each at its step.

Before the first window, the routes are checked: each on-chip edge needs a route programmed
with the plan's stage names and as many pairs as the edge carries ids.
"""

from __future__ import annotations

from collections.abc import MutableMapping, MutableSet

from darwin_dra.kubelet.proto_gen.runtime_v1alpha1 import spikeport_pb2 as pb
from darwin_dra.pipeline.split import SplitPlan, StagePart
from darwin_dra.runtime.client import SpikePortClient
from darwin_dra.runtime.pipeline_report import Metrics, PeerCounts, PipelineReport


class OnChipEdges:
    def __init__(self, stage: str, plan: SplitPlan, part: StagePart, peers: frozenset[str]):
        self.stage = stage
        self.part = part
        self.ups = [u for u in plan.upstream(stage) if u in peers]
        self.downs = [d for d in plan.downstream(stage) if d in peers]
        self.delivered: dict[str, int] = dict.fromkeys(self.ups, 0)
        self.dropped = 0
        self.sent: dict[str, int] = dict.fromkeys(self.downs, 0)

    def __bool__(self) -> bool:
        return bool(self.ups or self.downs)

    def tally(self, report: PipelineReport, metrics: Metrics) -> None:
        """The spikes the chip host moved for this stage into its report: per peer, 0 bytes
        (on the chip's router, on no socket), and what it dropped of them."""
        for peer, n in self.sent.items():
            report.sent[peer] = PeerCounts(n, 0)
            report.routed[peer] = n
        for peer, n in self.delivered.items():
            report.received[peer] = PeerCounts(n, 0)
            report.routed[peer] = n
            report.spikes_in += n
            metrics.routed.labels(peer, "in").inc(n)
        report.dropped += self.dropped

    def _route(self, routes: list[pb.PortRoute], src: str, dst: str) -> pb.PortRoute | None:
        for r in routes:
            if r.src_name == src and r.dst_name == dst and r.outbound == (src == self.stage):
                return r
        return None

    async def check(self, port: SpikePortClient) -> None:
        """Every on-chip edge has its route on the chip host; ValueError naming the edge."""
        routes = await port.routes()
        edges = [(u, self.stage, self.part.receives[u].size) for u in self.ups]
        edges += [(self.stage, d, self.part.sends[d].size) for d in self.downs]
        for src, dst, size in edges:
            r = self._route(routes, src, dst)
            if r is None:
                raise ValueError(
                    f"--on-chip: no route {src}->{dst} is programmed on this partition's chip "
                    f"host (ChipHost.ProgramRoute)"
                )
            if r.pairs != size:
                raise ValueError(
                    f"route {r.name} ({src}->{dst}) maps {r.pairs} neurons; the plan's edge "
                    f"carries {size}"
                )

    async def refresh(
        self,
        port: SpikePortClient,
        through: int,
        horizon: MutableMapping[str, int],
        ended: MutableSet[str],
    ) -> None:
        """Wait until every on-chip upstream has run through ``through`` (or ended); their
        horizons and ends into ``horizon`` and ``ended``."""
        for r in await port.routes(wait_steps=through):
            if r.outbound or r.src_name not in self.delivered or r.dst_name != self.stage:
                continue
            horizon[r.src_name] = int(r.src_steps)
            if r.ended:
                ended.add(r.src_name)

    async def settle(self, port: SpikePortClient) -> None:
        """The routes' final counts, for the report."""
        for r in await port.routes():
            if not r.outbound and r.src_name in self.delivered and r.dst_name == self.stage:
                self.delivered[r.src_name] = int(r.delivered)
                self.dropped += int(r.dropped)
