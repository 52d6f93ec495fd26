"""A task as clients see it: ``TaskView`` (the record) and ``TaskSummary`` (its status).

The queue builds both as plain data (``DockerTask.public_dict`` and ``DockerTask.summary``);
these models are their documented shape. Times are Unix seconds, durations seconds.
A key that is only sometimes present (``logs`` without ``include_logs``) has a default and
is left out of ``required``; it is never sent as null.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from ai_admin.queue.models import ProgressDetail, TaskStatus, TaskType
from ai_admin.wire.envelope import Wire, sometimes

__all__ = [
    "ErrorInfoView",
    "Priority",
    "RetryView",
    "StatusView",
    "TaskErrorView",
    "TaskSummary",
    "TaskView",
    "Timing",
]

Priority = Literal["critical", "high", "normal", "low"]


class ErrorInfoView(Wire):
    description: str
    suggestions: list[str]
    transient: bool


class TaskView(Wire):
    """The whole task record, without the queue's internals and without credentials."""

    id: str
    task_type: TaskType
    params: dict[str, Any] = Field(description="As submitted, credentials redacted.")
    queue: str
    priority: Priority
    timeout_s: float | None
    max_retries: int | None
    status: TaskStatus
    progress: float = Field(ge=0, le=100)
    progress_detail: ProgressDetail | None = Field(
        description="The numbers behind progress (bytes, rate, time left, layers, steps)."
    )
    current_step: str
    created_at: float
    started_at: float | None
    completed_at: float | None
    duration_s: float | None
    retry_count: int
    next_attempt_at: float | None
    error: str | None
    error_code: str | None
    error_details: dict[str, Any] | None
    error_info: ErrorInfoView | None
    result: dict[str, Any] | None
    merged_into: str | None
    depends_on: list[str] = Field(description="Tasks that must complete before this one starts.")
    schedule_id: str | None = Field(description="The schedule whose firing submitted it.")
    batch_id: str | None = Field(description="The batch it belongs to.")
    status_description: str
    duration: float | None = Field(description="The same as duration_s.")
    can_retry: bool
    logs: list[str] | SkipJsonSchema[None] = sometimes("The task's log lines, when asked for.")
    queue_position: int | None = Field(
        None, description="1 for the next task to start; null unless it is waiting."
    )


class StatusView(Wire):
    value: TaskStatus
    description: str


class Timing(Wire):
    created_at: float
    started_at: float | None
    completed_at: float | None
    duration: float | None


class TaskErrorView(Wire):
    message: str | None
    code: str
    details: dict[str, Any] | None
    description: str | None
    suggestions: list[str]
    transient: bool


class RetryView(Wire):
    retry_count: int
    max_retries: int | None
    can_retry: bool
    next_attempt_at: float | None


class TaskSummary(Wire):
    """A task's status: what it is doing, how far, since when, and on failure why."""

    task_id: str
    task_type: TaskType
    status: StatusView
    progress: float = Field(ge=0, le=100)
    progress_detail: ProgressDetail | None = Field(
        description="The numbers behind progress (bytes, rate, time left, layers, steps)."
    )
    current_step: str
    priority: Priority
    queue_position: int | None
    timing: Timing
    error: TaskErrorView | None
    retry: RetryView
    result: dict[str, Any] | None
    merged_into: str | None
    logs: list[str] | SkipJsonSchema[None] = sometimes("The task's log lines, when asked for.")
