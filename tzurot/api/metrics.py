"""Prometheus text exposition: the job counters and histograms plus the queue's gauges."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from tzurot.jobs import QueueCounts


def render_prometheus(registry: CollectorRegistry, counts: QueueCounts, uptime: float) -> bytes:
    lines = [
        "# HELP tzurot_queue_jobs Jobs in the queue by state (shared across processes).",
        "# TYPE tzurot_queue_jobs gauge",
    ]
    for state, value in counts.model_dump().items():
        lines.append(f'tzurot_queue_jobs{{state="{state}"}} {value}')
    lines += [
        "# HELP tzurot_uptime_seconds Seconds since this process started.",
        "# TYPE tzurot_uptime_seconds gauge",
        f"tzurot_uptime_seconds {uptime}",
    ]
    return generate_latest(registry) + ("\n".join(lines) + "\n").encode()
