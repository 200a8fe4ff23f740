"""Per-process job counters and duration histograms, in Prometheus form."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class JobMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.submitted = Counter(
            "tzurot_jobs_submitted", "Generation jobs accepted", ["outcome"], registry=self.registry
        )
        self.finished = Counter(
            "tzurot_jobs_finished", "Generation jobs finished", ["status"], registry=self.registry
        )
        self.failures = Counter(
            "tzurot_generation_failures", "Generations that ended in an error, by category",
            ["category"], registry=self.registry,
        )  # fmt: skip
        self.retried = Counter(
            "tzurot_jobs_retried", "Attempts retried, by error category", ["category"],
            registry=self.registry,
        )  # fmt: skip
        self.job_duration = Histogram(
            "tzurot_job_duration_seconds", "Enqueue to result", ["status"],
            buckets=_DURATION_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.llm_duration = Histogram(
            "tzurot_llm_call_seconds", "One provider call", ["outcome"],
            buckets=_DURATION_BUCKETS, registry=self.registry,
        )  # fmt: skip
