"""Prometheus metrics of one controller replica (own registry, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.reconcile_total = Counter(
            "darwin_dra_controller_reconciles_total",
            "Reconcile passes, by result (unchanged, changed, error)",
            ["result"],
            registry=r,
        )
        self.actions_total = Counter(
            "darwin_dra_controller_actions_total",
            "Objects written by reconcile, by verb and kind",
            ["verb", "kind"],
            registry=r,
        )
        self.errors_total = Counter(
            "darwin_dra_controller_errors_total",
            "API or setup errors, by where they happened (reconcile, claims, binding, leader)",
            ["where"],
            registry=r,
        )
        self.leader = Gauge(
            "darwin_dra_controller_leader", "1 while this replica holds the lease", registry=r
        )

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)
