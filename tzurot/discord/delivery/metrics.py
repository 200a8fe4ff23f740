"""Delivery's Prometheus metrics, on the process's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.delivered = Counter(
            "tzurot_replies_delivered", "Replies posted to Discord", ["kind"], registry=registry
        )
        self.failures = Counter(
            "tzurot_delivery_failures", "Discord refusals while posting replies",
            ["category", "permanent"], registry=registry,
        )  # fmt: skip
        self.lag = Histogram(
            "tzurot_delivery_lag_seconds", "From a generation's end to its reply being posted",
            buckets=_LAG_BUCKETS, registry=registry,
        )  # fmt: skip
