"""``GET /metrics``: the agent in Prometheus' terms, on a registry of its own.

Names follow Prometheus' conventions: every one starts with ``ai_admin_``, carries its base
unit (``_seconds``, ``_bytes``), and counters end in ``_total``. What is served:

- ``ai_admin_build_info{version,python_version}`` (always 1) and the process's own metrics
  (``ai_admin_process_cpu_seconds_total``, ``..._resident_memory_bytes``, ``..._open_fds``, ...);
- ``ai_admin_docker_engine_up``: 1 when the Docker engine answers (probed every few seconds);
- the queue now: ``ai_admin_queue_running_tasks``, ``ai_admin_queue_waiting_tasks``,
  ``ai_admin_queue_max_concurrent`` (the agent's, all queues together),
  ``ai_admin_queue_paused`` (the queue ``default``); each named queue by its name:
  ``ai_admin_named_queue_running_tasks{queue}``, ``..._waiting_tasks{queue}``,
  ``..._max_concurrent{queue}``, ``..._paused{queue}``; and the stored tasks
  ``ai_admin_stored_tasks{status,task_type}`` (``ai_admin_tasks_by_status{status}`` is their
  sum by status, kept for the dashboards made before);
- since the store was created (they survive restarts): ``ai_admin_tasks_enqueued_total``,
  ``..._dequeued_total`` (runs started), ``..._completed_total``, ``..._failed_total``,
  ``..._timed_out_total``, ``..._cancelled_total``, ``..._retried_total``, ``..._merged_total``;
- since the agent started, by task type: ``ai_admin_tasks_submitted_total{task_type}``,
  ``ai_admin_tasks_finished_total{task_type,status}``, and the histograms
  ``ai_admin_task_wait_seconds{task_type}`` (queued → started) and
  ``ai_admin_task_run_seconds{task_type,outcome}`` (started → outcome: ``completed``,
  ``failed``, ``timeout``, ``retried``, ``cancelled``, ``paused``, ``interrupted``);
- the schedules: ``ai_admin_schedules{state}`` (``active``, ``paused``, ``done``), and since
  the agent started ``ai_admin_schedule_firings_total{outcome}`` (``submitted``, ``merged``,
  ``refused``, ``folded``), ``ai_admin_schedule_missed_total``, the histogram
  ``ai_admin_schedule_firing_lateness_seconds`` (due → begun) and
  ``ai_admin_schedule_firings_waiting`` (due, waiting for their turn on the loop).

The queue's numbers are read from the engine at scrape time (``QueueStats``, which keeps its
histograms as plain bucket counts): nothing is copied into Prometheus objects as tasks run, so
an app built late, or two apps over one agent, see the same numbers. Each app has its own
``CollectorRegistry`` (never the process-wide one), so several agents in one process, tests
among them, do not clash. A client that sends ``Accept: application/openmetrics-text`` gets
OpenMetrics; any other, the text format 0.0.4.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from ai_admin import __version__
from ai_admin.agent import Agent
from ai_admin.queue.lanes import QueueView
from ai_admin.queue.models import TaskType
from ai_admin.queue.stats import Durations, QueueStats
from ai_admin.schedule.firing_stats import FIRING_OUTCOMES
from ai_admin.schedule.service import ScheduleService

__all__ = ["METRICS", "AgentMetrics", "serve_metrics"]

_PREFIX = "ai_admin"
# Totals since the store was created, as QueueStats keeps them: name → help.
_STORE_TOTALS = {
    "enqueued": "Tasks accepted into the queue (merged submissions not included)",
    "dequeued": "Runs started (a retry is a run)",
    "completed": "Tasks completed",
    "failed": "Tasks failed",
    "timed_out": "Tasks that ran longer than their timeout",
    "cancelled": "Tasks cancelled",
    "retried": "Retries, automatic and manual",
    "merged": "Submissions merged into an identical live task",
}


def _queue_stats(agent: Agent) -> QueueStats:
    """The engine's statistics object (its snapshot in ``get_queue_stats`` holds neither the
    histograms nor the totals by type)."""
    return agent.queue.statistics


class _QueueCollector(Collector):
    """The queue's numbers, read when scraped. ``now`` holds what the last scrape read with
    ``await`` (the queue's snapshot, the engine's reachability) before collecting."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.snapshot: dict[str, Any] | None = None
        self.docker_up = False

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            f"{_PREFIX}_docker_engine_up",
            "1 if the Docker engine answered its last probe, else 0",
            value=1.0 if self.docker_up else 0.0,
        )
        if self.snapshot is not None:
            yield from _queue_now(self.snapshot)
        yield from _named_queues(self.agent.queue.queue_views())
        stats = _queue_stats(self.agent)
        yield from _store_totals(stats)
        yield from _totals_by_type(stats)
        yield from _histograms(stats)
        yield from _schedules(self.agent.queue.scheduler.schedules)


def _queue_now(snapshot: dict[str, Any]) -> Iterator[Metric]:
    summary = snapshot["summary"]
    for name, key, help_text in (
        ("queue_running_tasks", "running", "Tasks running now"),
        ("queue_waiting_tasks", "queue_size", "Tasks waiting to run (retries waiting included)"),
        ("queue_max_concurrent", "max_concurrent", "How many tasks may run at once"),
    ):
        yield GaugeMetricFamily(f"{_PREFIX}_{name}", help_text, value=summary[key])
    yield GaugeMetricFamily(
        f"{_PREFIX}_queue_paused",
        "1 while the whole queue is paused, else 0",
        value=1.0 if snapshot["queue"]["paused"] else 0.0,
    )
    by_status = GaugeMetricFamily(
        f"{_PREFIX}_tasks_by_status",
        "Stored tasks by status (the sum by status of ai_admin_stored_tasks)",
        labels=["status"],
    )
    for status, n in sorted(snapshot["distributions"]["status"].items()):
        by_status.add_metric([status], n)
    yield by_status


def _named_queues(views: list[QueueView]) -> Iterator[Metric]:
    """Each named queue (``default`` included) by its name."""
    families: list[tuple[str, str, list[float]]] = [
        ("running_tasks", "Its tasks running now", [q.running for q in views]),
        ("waiting_tasks", "Its unfinished tasks not running", [q.waiting for q in views]),
        (
            "max_concurrent",
            "How many of its tasks may run at once",
            [q.limits.max_concurrent for q in views],
        ),
        ("paused", "1 while the queue is paused, else 0", [float(q.paused) for q in views]),
    ]
    for name, help_text, values in families:
        family = GaugeMetricFamily(f"{_PREFIX}_named_queue_{name}", help_text, labels=["queue"])
        for view, value in zip(views, values, strict=True):
            family.add_metric([view.name], value)
        yield family


def _store_totals(stats: QueueStats) -> Iterator[Metric]:
    stored = GaugeMetricFamily(
        f"{_PREFIX}_stored_tasks",
        "Stored tasks, finished ones included, by status and task type",
        labels=["status", "task_type"],
    )
    by_class: dict[tuple[str, str], int] = {}
    for cls, n in stats.gauges.items():
        key = (cls.status, cls.task_type)
        by_class[key] = by_class.get(key, 0) + n
    for (status, task_type), n in sorted(by_class.items()):
        stored.add_metric([status, task_type], n)
    yield stored
    counters = stats.counters
    for name, help_text in _STORE_TOTALS.items():
        yield CounterMetricFamily(
            f"{_PREFIX}_tasks_{name}",
            f"{help_text}, since the task store was created",
            value=counters[name],
        )


def _totals_by_type(stats: QueueStats) -> Iterator[Metric]:
    submitted = CounterMetricFamily(
        f"{_PREFIX}_tasks_submitted",
        "Tasks submitted (merged ones included) since the agent started, by task type",
        labels=["task_type"],
    )
    for task_type in TaskType:
        submitted.add_metric([task_type.value], max(0, stats.stored[task_type.value]))
    yield submitted
    finished = CounterMetricFamily(
        f"{_PREFIX}_tasks_finished",
        "Tasks that reached a final status since the agent started, by task type and status",
        labels=["task_type", "status"],
    )
    for (kind, status), n in sorted(stats.finished.items()):
        finished.add_metric([kind, status], n)
    yield finished


def _histograms(stats: QueueStats) -> Iterator[Metric]:
    waits = HistogramMetricFamily(
        f"{_PREFIX}_task_wait_seconds",
        "Time from queued to started, per run, since the agent started",
        labels=["task_type"],
    )
    for task_type in TaskType:
        _add(waits, [task_type.value], stats.waits.get(task_type.value, Durations()))
    yield waits
    runs = HistogramMetricFamily(
        f"{_PREFIX}_task_run_seconds",
        "Time from started to the run's outcome, since the agent started",
        labels=["task_type", "outcome"],
    )
    for (kind, outcome), durations in sorted(stats.runs.items()):
        _add(runs, [kind, outcome], durations)
    yield runs


def _schedules(schedules: ScheduleService) -> Iterator[Metric]:
    by_state = GaugeMetricFamily(
        f"{_PREFIX}_schedules", "Schedules by state (active: will fire)", labels=["state"]
    )
    for state, n in schedules.counts().items():
        by_state.add_metric([state], n)
    yield by_state
    fired = schedules.stats
    firings = CounterMetricFamily(
        f"{_PREFIX}_schedule_firings",
        "Firings since the agent started, by outcome (merged: into the last one's live task; "
        "refused: the queue took nothing; folded: due again before the last one began)",
        labels=["outcome"],
    )
    for outcome in FIRING_OUTCOMES:
        firings.add_metric([outcome], fired.outcomes[outcome])
    yield firings
    yield CounterMetricFamily(
        f"{_PREFIX}_schedule_missed",
        "Firings skipped since the agent started, later than the misfire grace time",
        value=fired.missed,
    )
    lateness = HistogramMetricFamily(
        f"{_PREFIX}_schedule_firing_lateness_seconds",
        "From when a firing was due to when it began",
    )
    _add(lateness, [], fired.lateness)
    yield lateness
    yield GaugeMetricFamily(
        f"{_PREFIX}_schedule_firings_waiting",
        "Firings due and waiting for their turn on the agent's event loop",
        value=schedules.firings_waiting,
    )


def _add(family: HistogramMetricFamily, labels: list[str], durations: Durations) -> None:
    buckets = [(_bound(le), float(n)) for le, n in durations.cumulative()]
    family.add_metric(labels, buckets, sum_value=durations.sum_s)


def _bound(le: float) -> str:
    return "+Inf" if le == float("inf") else repr(le)


class _BuildInfo(Collector):
    def collect(self) -> Iterator[Metric]:
        yield InfoMetricFamily(
            f"{_PREFIX}_build",
            "The agent's version and the Python it runs on (always 1)",
            value={"version": __version__, "python_version": platform.python_version()},
        )


class AgentMetrics:
    """One app's registry: build info, process, Docker engine and queue metrics."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(namespace=_PREFIX, registry=self.registry)
        self.registry.register(_BuildInfo())
        self._queue = _QueueCollector(agent)
        self.registry.register(self._queue)

    async def exposition(self, accept: str) -> tuple[bytes, str]:
        """The metrics as ``accept`` asks (OpenMetrics or text 0.0.4), and its content type."""
        snapshot = await self.agent.queue.get_queue_stats()
        docker = await self.agent.docker_status()
        encode, content_type = choose_encoder(accept)
        # No await from here to the encoding: a concurrent scrape cannot swap the snapshot.
        self._queue.snapshot = snapshot
        self._queue.docker_up = bool(docker.get("reachable"))
        return encode(self.registry), content_type


METRICS = web.AppKey("metrics", AgentMetrics)


async def serve_metrics(request: web.Request) -> web.Response:
    """The ``/metrics`` answer for this app's agent."""
    body, content_type = await request.app[METRICS].exposition(request.headers.get("Accept", ""))
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response
