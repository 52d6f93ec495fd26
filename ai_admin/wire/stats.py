"""The queue statistics (``QueueEngine.get_queue_stats``) and the counters in them."""

from __future__ import annotations

from pydantic import Field

from ai_admin.wire.envelope import Wire

__all__ = ["Counters", "QueueStats", "QueueSummary", "SetAsideTask"]


class QueueSummary(Wire):
    total_tasks: int = Field(description="Stored tasks, finished ones included.")
    max_concurrent: int
    running: int
    queue_size: int = Field(description="Tasks waiting to run (retries waiting included).")


class Distributions(Wire):
    """Stored tasks by status, by type, and (failed or timed out) by error code."""

    status: dict[str, int]
    type: dict[str, int]
    error: dict[str, int]


class Performance(Wire):
    average_duration_seconds: float
    success_rate: float = Field(ge=0, le=100, description="Percent of finished runs.")
    completed: int
    failed: int
    timed_out: int
    cancelled: int


class Retries(Wire):
    total_retries: int
    tasks_with_retries: int
    tasks_at_max_retries: int


class RecentActivity(Wire):
    last_24_hours: int = Field(description="Tasks created in the last 24 hours.")
    last_hour: int


class Counters(Wire):
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


class QueueState(Wire):
    paused: bool
    accepting: bool = Field(description="False while the agent shuts down.")


class SetAsideTask(Wire):
    task_id: str
    reason: str
    set_aside_at: float


class SetAside(Wire):
    """Stored tasks that could not be loaded at start-up (the first few are listed)."""

    count: int
    tasks: list[SetAsideTask]


class QueueStats(Wire):
    summary: QueueSummary
    distributions: Distributions
    performance: Performance
    retries: Retries
    recent_activity: RecentActivity
    counters: Counters
    queue: QueueState
    set_aside: SetAside
