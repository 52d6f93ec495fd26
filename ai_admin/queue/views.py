"""What the queue shows of a task, defined once: the task (``TaskView``) and its status
(``TaskSummary``), as pydantic models built here; the queue statistics, built the same way from
the counters, are in ``stats_views``.

The queue builds each view from what it already holds (a ``DockerTask``) and every door sends
its JSON (``View.as_json``); ``ai_admin.wire`` re-exports the models, so the OpenAPI document,
the MCP output schemas and the command catalogue describe exactly what is built. Times are
Unix seconds, durations seconds.

The builders use ``View.trusted`` (``model_construct`` without its search for aliases): every
value comes from a validated task or from the counters, so validating it again would only
repeat the work on the hot paths (a listing of a thousand tasks, a status read by every
poll). The unit tests validate full views against their own models instead. Every model
forbids keys it does not name (a key the agent emits and no model names is a bug). A key
only some answers carry (``logs``, ``queue_position`` in ``DockerTask.public_dict``) has a
default, is left out of ``required`` and is never sent as null: the builder does not set
it, and ``View.as_json`` leaves out what is not set.
"""

from __future__ import annotations

from types import EllipsisType
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from ai_admin.queue.models import (
    DockerTask,
    Priority,
    ProgressDetail,
    TaskPriority,
    TaskStatus,
    TaskType,
)
from ai_admin.queue.secrets import split_secrets

__all__ = [
    "ErrorInfoView",
    "Priority",
    "RetryView",
    "StatusView",
    "TaskErrorView",
    "TaskSummary",
    "TaskView",
    "Timing",
    "View",
    "task_summary",
    "task_view",
]

_PRIORITY: dict[TaskPriority, Priority] = {
    TaskPriority.CRITICAL: "critical",
    TaskPriority.HIGH: "high",
    TaskPriority.NORMAL: "normal",
    TaskPriority.LOW: "low",
}
_new, _set = object.__new__, object.__setattr__  # as model_construct sets a model up
_PROGRESS_DETAIL = "The numbers behind progress (bytes, rate, time left, layers, steps)."


class View(BaseModel):
    """A shape the agent emits: a key it does not name is a bug, not a client's extension."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def trusted(cls, values: dict[str, Any]) -> Self:
        """The view of values the queue has already validated: ``model_construct`` without
        its per-field search for aliases (views have none), about five times faster on a
        task's thirty fields. A field not given takes its default and stays unset."""
        view = _new(cls)
        given = set(values)
        fields = cls.__pydantic_fields__
        if len(given) < len(fields):  # in the fields' order: the JSON's keys follow it
            defaults = cls._defaults()
            values = {name: values.get(name, defaults.get(name)) for name in fields}
        _set(view, "__dict__", values)
        _set(view, "__pydantic_fields_set__", given)
        _set(view, "__pydantic_extra__", None)
        _set(view, "__pydantic_private__", None)
        return view

    @classmethod
    def _defaults(cls) -> dict[str, Any]:
        return {
            name: field.get_default()
            for name, field in cls.__pydantic_fields__.items()
            if not field.is_required()
        }

    def as_json(self) -> dict[str, Any]:
        """The view as the doors send it: JSON values, and a key only some answers carry
        left out unless the builder set it."""
        return self.model_dump(mode="json", exclude_unset=True)


def sometimes(description: str | None = None) -> Any:
    """The field of a key only some answers carry: typed ``T | SkipJsonSchema[None]``, it is
    not required, never sent as null, and its schema shows no (null) default."""
    return Field(None, description=description, json_schema_extra=_no_default)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


# -- a task ------------------------------------------------------------------------------------


class ErrorInfoView(View):
    description: str
    suggestions: list[str]
    transient: bool


class TaskView(View):
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
    progress_detail: ProgressDetail | None = Field(description=_PROGRESS_DETAIL)
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


class StatusView(View):
    value: TaskStatus
    description: str


class Timing(View):
    created_at: float
    started_at: float | None
    completed_at: float | None
    duration: float | None


class TaskErrorView(View):
    message: str | None
    code: str
    details: dict[str, Any] | None
    description: str | None
    suggestions: list[str]
    transient: bool


class RetryView(View):
    retry_count: int
    max_retries: int | None
    can_retry: bool
    next_attempt_at: float | None


class TaskSummary(View):
    """A task's status: what it is doing, how far, since when, and on failure why."""

    task_id: str
    task_type: TaskType
    status: StatusView
    progress: float = Field(ge=0, le=100)
    progress_detail: ProgressDetail | None = Field(description=_PROGRESS_DETAIL)
    current_step: str
    priority: Priority
    queue_position: int | None
    timing: Timing
    error: TaskErrorView | None
    retry: RetryView
    result: dict[str, Any] | None
    merged_into: str | None
    logs: list[str] | SkipJsonSchema[None] = sometimes("The task's log lines, when asked for.")


def _error_info(task: DockerTask) -> ErrorInfoView | None:
    info = task.error_info
    if info is None:
        return None
    return ErrorInfoView.trusted(
        {
            "description": info.description,
            "suggestions": list(info.suggestions),
            "transient": info.transient,
        }
    )


def task_view(
    task: DockerTask,
    *,
    queue_position: int | EllipsisType | None = ...,
    include_logs: bool = True,
) -> TaskView:
    """The task as clients see it: its record with the status described, ``can_retry``, the
    priority by name, params with credentials redacted, and none of the queue's internals.
    ``logs`` is set only with ``include_logs``, ``queue_position`` only when given (the queue
    knows it, not the task)."""
    fields: dict[str, Any] = {
        "id": task.id,
        "task_type": task.task_type,
        "params": split_secrets(task.params)[0],
        "queue": task.queue,
        "priority": _PRIORITY[task.priority],
        "timeout_s": task.timeout_s,
        "max_retries": task.max_retries,
        "status": task.status,
        "progress": task.progress,
        "progress_detail": task.progress_detail,
        "current_step": task.current_step,
        "created_at": task.created_at,
        "started_at": task.started_at,
        "completed_at": task.completed_at,
        "duration_s": task.duration_s,
        "retry_count": task.retry_count,
        "next_attempt_at": task.next_attempt_at,
        "error": task.error,
        "error_code": task.error_code,
        "error_details": task.error_details,
        "error_info": _error_info(task),
        "result": task.result,
        "merged_into": task.merged_into,
        "depends_on": list(task.depends_on),
        "schedule_id": task.schedule_id,
        "batch_id": task.batch_id,
        "status_description": task.status.description,
        "duration": task.duration_s,
        "can_retry": task.can_retry,
    }
    if include_logs:
        fields["logs"] = list(task.logs)
    if queue_position is not ...:
        fields["queue_position"] = queue_position
    return TaskView.trusted(fields)


def _task_error(task: DockerTask) -> TaskErrorView | None:
    if task.error_code is None:
        return None
    info = task.error_info
    return TaskErrorView.trusted(
        {
            "message": task.error,
            "code": task.error_code,
            "details": task.error_details,
            "description": info.description if info else None,
            "suggestions": list(info.suggestions) if info else [],
            "transient": info.transient if info else False,
        }
    )


def task_summary(task: DockerTask, queue_position: int | None) -> TaskSummary:
    """The detailed status: what the task does, how far, its timing, its error with advice,
    its retry state, its place in the queue and its log."""
    status = task.status
    return TaskSummary.trusted(
        {
            "task_id": task.id,
            "task_type": task.task_type,
            "status": StatusView.trusted({"value": status, "description": status.description}),
            "progress": task.progress,
            "progress_detail": task.progress_detail,
            "current_step": task.current_step,
            "priority": _PRIORITY[task.priority],
            "queue_position": queue_position,
            "timing": Timing.trusted(
                {
                    "created_at": task.created_at,
                    "started_at": task.started_at,
                    "completed_at": task.completed_at,
                    "duration": task.duration_s,
                }
            ),
            "error": _task_error(task),
            "retry": RetryView.trusted(
                {
                    "retry_count": task.retry_count,
                    "max_retries": task.max_retries,
                    "can_retry": task.can_retry,
                    "next_attempt_at": task.next_attempt_at,
                }
            ),
            "result": task.result,
            "merged_into": task.merged_into,
            "logs": list(task.logs),
        }
    )
