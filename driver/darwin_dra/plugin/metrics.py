"""Prometheus metrics of one plugin instance (own registry, so tests can run several)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 45)


class PluginMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.prepare_total = Counter(
            "darwin_dra_prepare_claims_total",
            "Claims prepared, by result (ok, error, cached: answered from the checkpoint)",
            ["result"],
            registry=r,
        )
        self.unprepare_total = Counter(
            "darwin_dra_unprepare_claims_total",
            "Claims unprepared, by result",
            ["result"],
            registry=r,
        )
        self.rpc_seconds = Histogram(
            "darwin_dra_rpc_duration_seconds",
            "Duration of one NodePrepareResources / NodeUnprepareResources call",
            ["rpc"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.devices = Gauge(
            "darwin_dra_devices",
            "Published devices by health state (ok, degraded, failed)",
            ["state"],
            registry=r,
        )
        self.prepared_devices = Gauge(
            "darwin_dra_prepared_devices", "Devices currently prepared for claims", registry=r
        )
        self.slices_published = Gauge(
            "darwin_dra_resource_slices", "ResourceSlices of this node's pool", registry=r
        )
        self.pool_generation = Gauge(
            "darwin_dra_pool_generation", "Pool generation last published", registry=r
        )
        self.publish_total = Counter(
            "darwin_dra_slice_publish_total",
            "Slice reconcile passes, by result (changed, unchanged, conflict, error)",
            ["result"],
            registry=r,
        )
        self.partition_keps = Gauge(
            "darwin_dra_partition_keps",
            "Event throughput granted to a prepared partition (thousands of events/s)",
            ["claim_uid", "device", "partition"],
            registry=r,
        )
        self.claim_status_errors = Counter(
            "darwin_dra_claim_status_errors_total",
            "Failed writes of a claim's status.devices",
            registry=r,
        )
        self.faults = Gauge("darwin_dra_faults", "Faults applied to the engine", registry=r)
        self.early_total = Counter(
            "darwin_dra_early_prepare_total",
            "Claims prepared before their pod bound, for their routers' binding conditions "
            "(result: programmed, failed, undone)",
            ["result"],
            registry=r,
        )

    def set_device_states(self, counts: Mapping[str, int]) -> None:
        for state in ("ok", "degraded", "failed"):
            self.devices.labels(state).set(counts.get(state, 0))

    def set_partitions(self, claim_uid: str, items: Iterable[tuple[str, int, int]]) -> None:
        """(device, partition id, keps) of one prepared claim."""
        for device, partition, keps in items:
            self.partition_keps.labels(claim_uid, device, str(partition)).set(keps)

    def drop_partitions(self, claim_uid: str, items: Iterable[tuple[str, int]]) -> None:
        for device, partition in items:
            try:
                self.partition_keps.remove(claim_uid, device, str(partition))
            except KeyError:
                continue

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        start_http_server(port, addr=addr, registry=self.registry)
