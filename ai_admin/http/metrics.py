"""``GET /metrics``: the queue's counters and gauges in Prometheus text format."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_COUNTERS = {
    "enqueued": "Tasks accepted into the queue",
    "dequeued": "Task attempts started",
    "completed": "Tasks completed",
    "failed": "Tasks failed",
    "timed_out": "Tasks timed out",
    "cancelled": "Tasks cancelled",
    "retried": "Retries, automatic and manual",
    "merged": "Submissions merged into an identical task",
}


class _Snapshot(Collector):
    def __init__(self, stats: dict[str, Any]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        counters = self.stats["counters"]
        for name, help_text in _COUNTERS.items():
            yield CounterMetricFamily(f"ai_admin_tasks_{name}", help_text, value=counters[name])
        summary = self.stats["summary"]
        for name in ("running", "queue_size", "max_concurrent", "total_tasks"):
            yield GaugeMetricFamily(f"ai_admin_queue_{name}", name.replace("_", " "), summary[name])
        by_status = GaugeMetricFamily(
            "ai_admin_tasks_by_status", "Stored tasks by status", labels=["status"]
        )
        for status, n in sorted(self.stats["distributions"]["status"].items()):
            by_status.add_metric([status], n)
        yield by_status
        yield GaugeMetricFamily(
            "ai_admin_task_wait_seconds_avg", "Average wait", counters["average_wait_seconds"]
        )
        yield GaugeMetricFamily(
            "ai_admin_task_processing_seconds_avg",
            "Average processing time",
            counters["average_processing_seconds"],
        )


def render(stats: dict[str, Any]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(stats))
    return generate_latest(registry)
