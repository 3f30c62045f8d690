"""Prometheus metrics of the chip host (own registry, so tests can run several)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from darwin_dra.engine import Engine
from darwin_dra.engine.fabric import fabric_links

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)


class ChipHostMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.info = Gauge(
            "darwin_chiphost_boot",
            "1, labelled with this chip host's boot id (a new id is a chip reset)",
            ["boot_id", "node"],
            registry=r,
        )
        self.started = Gauge(
            "darwin_chiphost_start_time_seconds", "When this boot started (unix)", registry=r
        )
        self.chips = Gauge("darwin_chiphost_chips", "Chips this chip host owns", registry=r)
        self.partitions = Gauge(
            "darwin_chiphost_partitions", "Partitions that exist on the chips", registry=r
        )
        self.ports = Gauge("darwin_chiphost_spike_ports", "Spike ports being served", registry=r)
        self.faults = Gauge("darwin_chiphost_faults", "Faults applied to the chips", registry=r)
        self.host_keps = Gauge(
            "darwin_chiphost_host_keps",
            "This host's simulation speed on the calibration load: thousands of events per wall "
            "second (not capacity: published KEPS are per second of model time)",
            ["model"],
            registry=r,
        )
        self.routes = Gauge(
            "darwin_chiphost_routes", "Routes programmed between partitions of a chip", registry=r
        )
        self.routed = Counter(
            "darwin_chiphost_routed_spikes_total",
            "Spikes on the chips' routes between partitions: moved onto a route, delivered "
            "into the destination's input queue, dropped",
            ["kind"],
            registry=r,
        )
        self.requests = Counter(
            "darwin_chiphost_requests_total",
            "ChipHost calls, by method and gRPC status code",
            ["method", "code"],
            registry=r,
        )
        self.seconds = Histogram(
            "darwin_chiphost_request_duration_seconds",
            "Duration of one ChipHost call",
            ["method"],
            buckets=_BUCKETS,
            registry=r,
        )

    def watch_fabric(self, engine: Engine) -> None:
        """Exports the engine's fabric links (read at each scrape)."""
        self.registry.register(FabricLinks(engine))

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)


class FabricLinks(Collector):
    """The fabric links between the engine's chips of one fabric, as dk_fabric_link_stats
    gives them: spikes carried, dropped and the spike-steps spent waiting; capacity and the
    busiest step (engine/fabric.py)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        labels = ["src_chip", "dst_chip", "fabric"]
        spikes = CounterMetricFamily(
            "darwin_chiphost_fabric_link_spikes",
            "Spikes on the fabric link between two chips: carried, dropped (they would have "
            "waited too long), deferred (spike-steps spent waiting), dropped_fault (lost to a "
            "failed link with no other path)",
            labels=[*labels, "kind"],
        )
        capacity = GaugeMetricFamily(
            "darwin_chiphost_fabric_link_capacity",
            "Spikes the fabric link carries per timestep (0 before its first spike)",
            labels=labels,
        )
        peak = GaugeMetricFamily(
            "darwin_chiphost_fabric_link_peak", "Most spikes it carried in one step", labels=labels
        )
        failed = GaugeMetricFamily(
            "darwin_chiphost_fabric_link_failed",
            "1 while a fabric fault holds the link (its spikes take another path or are lost)",
            labels=labels,
        )
        fabric_of = {c.id: c.fabric for c in self.engine.chips()}
        for st in fabric_links(self.engine):
            at = [str(st.src_chip), str(st.dst_chip), fabric_of[st.src_chip]]
            for kind in ("carried", "dropped", "deferred", "dropped_fault"):
                spikes.add_metric([*at, kind], getattr(st, kind))
            capacity.add_metric(at, st.capacity)
            peak.add_metric(at, st.peak)
            failed.add_metric(at, st.failed)
        yield from (spikes, capacity, peak, failed)
