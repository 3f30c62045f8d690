"""Prometheus metrics of the chip host (own registry, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)
