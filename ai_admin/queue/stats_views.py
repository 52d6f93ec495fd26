"""The queue statistics as clients read them (``QueueStatistics`` and its parts), built from the
counters (``ai_admin.queue.stats.QueueStats``) by ``queue_statistics``.

Like the task views (``ai_admin.queue.views``), the models are the one definition of the
shape: ``ai_admin.wire.stats`` re-exports them, and the builder uses ``View.trusted`` on
numbers the counters already hold.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from ai_admin.queue.stats import QueueStats
from ai_admin.queue.store import SetAside as StoredSetAside
from ai_admin.queue.views import View

__all__ = [
    "Counters",
    "Distributions",
    "Performance",
    "QueueState",
    "QueueStatistics",
    "QueueSummary",
    "RecentActivity",
    "Retries",
    "SetAside",
    "SetAsideTask",
    "counters_view",
    "queue_statistics",
]


class QueueSummary(View):
    total_tasks: int = Field(description="Stored tasks, finished ones included.")
    max_concurrent: int
    running: int
    queue_size: int = Field(description="Tasks waiting to run (retries waiting included).")


class Distributions(View):
    """Stored tasks by status, by type, and (failed or timed out) by error code."""

    status: dict[str, int]
    type: dict[str, int]
    error: dict[str, int]


class Performance(View):
    average_duration_seconds: float
    success_rate: float = Field(ge=0, le=100, description="Percent of finished runs.")
    completed: int
    failed: int
    timed_out: int
    cancelled: int


class Retries(View):
    total_retries: int
    tasks_with_retries: int
    tasks_at_max_retries: int


class RecentActivity(View):
    last_24_hours: int = Field(description="Tasks created in the last 24 hours.")
    last_hour: int


class Counters(View):
    """Totals since the store was created."""

    enqueued: int
    dequeued: int
    completed: int
    failed: int
    timed_out: int
    cancelled: int
    retried: int
    merged: int
    average_wait_seconds: float
    average_processing_seconds: float


class QueueState(View):
    paused: bool
    accepting: bool = Field(description="False while the agent shuts down.")


class SetAsideTask(View):
    task_id: str
    reason: str
    set_aside_at: float


class SetAside(View):
    """Stored tasks that could not be loaded at start-up (the first few are listed)."""

    count: int
    tasks: list[SetAsideTask]


class QueueStatistics(View):
    """The queue's numbers: what runs and waits, the stored tasks by class, how runs ended,
    retries, recent activity, the totals since the store was created, the queue's state and
    the stored tasks that did not load."""

    summary: QueueSummary
    distributions: Distributions
    performance: Performance
    retries: Retries
    recent_activity: RecentActivity
    counters: Counters
    queue: QueueState
    set_aside: SetAside


def _ratio(num: float, den: float) -> float:
    return round(num / den, 3) if den else 0.0


def counters_view(stats: QueueStats) -> Counters:
    """The totals, with the average wait (per run started) and processing time (per run
    that finished)."""
    c = stats.counters
    return Counters.trusted(
        {
            "enqueued": int(c["enqueued"]),
            "dequeued": int(c["dequeued"]),
            "completed": int(c["completed"]),
            "failed": int(c["failed"]),
            "timed_out": int(c["timed_out"]),
            "cancelled": int(c["cancelled"]),
            "retried": int(c["retried"]),
            "merged": int(c["merged"]),
            "average_wait_seconds": _ratio(c["wait_s_total"], c["dequeued"]),
            "average_processing_seconds": _ratio(c["processing_s_total"], stats.finished_runs),
        }
    )


def queue_statistics(
    stats: QueueStats,
    *,
    max_concurrent: int,
    running: int,
    queue_size: int,
    paused: bool,
    accepting: bool,
    set_aside: Sequence[StoredSetAside],
    set_aside_shown: int,
) -> QueueStatistics:
    """What clients read of the counters (totals, distributions, rates) beside what runs and
    waits now, the queue's state and the first ``set_aside_shown`` tasks that did not load."""
    c = stats.counters
    finished_runs = stats.finished_runs
    last_24_hours, last_hour = stats.recent_activity()
    gauges = stats.gauges
    return QueueStatistics.trusted(
        {
            "summary": QueueSummary.trusted(
                {
                    "total_tasks": sum(gauges.values()),
                    "max_concurrent": max_concurrent,
                    "running": running,
                    "queue_size": queue_size,
                }
            ),
            "distributions": Distributions.trusted(
                {
                    "status": stats.distribution("status"),
                    "type": stats.distribution("task_type"),
                    "error": stats.distribution("error_code"),
                }
            ),
            "performance": Performance.trusted(
                {
                    "average_duration_seconds": _ratio(c["processing_s_total"], finished_runs),
                    "success_rate": _ratio(100 * c["completed"], finished_runs),
                    "completed": int(c["completed"]),
                    "failed": int(c["failed"]),
                    "timed_out": int(c["timed_out"]),
                    "cancelled": int(c["cancelled"]),
                }
            ),
            "retries": Retries.trusted(
                {
                    "total_retries": int(c["retried"]),
                    "tasks_with_retries": sum(n for k, n in gauges.items() if k.has_retries),
                    "tasks_at_max_retries": sum(
                        n for k, n in gauges.items() if k.at_max_retries and k.has_retries
                    ),
                }
            ),
            "recent_activity": RecentActivity.trusted(
                {"last_24_hours": last_24_hours, "last_hour": last_hour}
            ),
            "counters": counters_view(stats),
            "queue": QueueState.trusted({"paused": paused, "accepting": accepting}),
            "set_aside": SetAside.trusted(
                {
                    "count": len(set_aside),
                    "tasks": [
                        SetAsideTask.trusted(
                            {
                                "task_id": a.task_id,
                                "reason": a.reason,
                                "set_aside_at": a.set_aside_at,
                            }
                        )
                        for a in set_aside[:set_aside_shown]
                    ],
                }
            ),
        }
    )
