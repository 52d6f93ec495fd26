"""Each command's result (the ``data`` of its success envelope), as the command registry
names it. Keys that only some answers carry (``truncated`` and the paging around it,
``detailed`` parts) have defaults, are left out of ``required`` and are never sent as null."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, create_model
from pydantic.json_schema import SkipJsonSchema

from ai_admin.config import Settings
from ai_admin.queue.lanes import QueueView
from ai_admin.queue.models import TaskStatus
from ai_admin.schedule.trends import Trends
from ai_admin.wire.envelope import Failure, Wire, sometimes
from ai_admin.wire.stats import Counters, QueueStatistics, QueueSummary
from ai_admin.wire.task import TaskSummary, TaskView

__all__ = [
    "RUNTIME_SETTINGS",
    "Cleared",
    "CommandList",
    "Configured",
    "Export",
    "Managed",
    "QueueMetrics",
    "QueuePaused",
    "QueueStatus",
    "Submitted",
    "TaskFailed",
    "TaskList",
    "TaskStatusResult",
    "WaitedTask",
]

_NOT_CUT = "Present (true) only when the answer was cut to fit max_answer_bytes."


class Paged(Wire):
    """The keys that tell a client how to get the rest of a cut listing."""

    truncated: bool | SkipJsonSchema[None] = sometimes(_NOT_CUT)
    next_offset: int | SkipJsonSchema[None] = sometimes("The offset to ask for next.")
    note: str | SkipJsonSchema[None] = sometimes("How to get the rest.")


class LiveTasks(Wire):
    running: list[TaskView]
    pending: list[TaskView] = Field(description="In run order.")
    paused: list[TaskView]


class QueueStatus(QueueStatistics):
    """``queue_status``: the statistics; with detailed, the live tasks too."""

    named_queue: QueueView = Field(description="The queue asked for (default unless named).")
    tasks: LiveTasks | SkipJsonSchema[None] = sometimes("With detailed: the named queue's.")
    truncated: bool | SkipJsonSchema[None] = sometimes(_NOT_CUT)
    note: str | SkipJsonSchema[None] = sometimes()


class TaskStatusResult(TaskSummary):
    """``queue_task_status``: the summary; with detailed, the whole record under ``task``."""

    task: TaskView | SkipJsonSchema[None] = sometimes("With detailed.")


class TaskList(Paged):
    tasks: list[TaskView] = Field(description="Newest first.")
    total: int = Field(description="How many tasks match, over all pages.")
    limit: int
    offset: int


class Managed(Wire):
    task_id: str
    action: Literal["pause", "resume", "retry", "cancel"]
    task: TaskView = Field(description="The task after the change.")


class QueuePaused(Wire):
    queue: str
    paused: bool


class Cleared(Wire):
    deleted: int


class QueueMetrics(Counters, QueueSummary):
    paused: bool
    history: Trends | SkipJsonSchema[None] = sometimes(
        "With historical: the trends per hour and per day."
    )


class Export(Paged):
    metrics: QueueStatistics | SkipJsonSchema[None] = sometimes()
    config: dict[str, Any] | SkipJsonSchema[None] = sometimes(
        "The agent's settings, without its token."
    )
    jobs: list[TaskView] | SkipJsonSchema[None] = sometimes("Newest first.")
    total_jobs: int | SkipJsonSchema[None] = sometimes()


RUNTIME_SETTINGS = (
    "max_concurrent",
    "max_queue_size",
    "default_timeout_s",
    "max_retries",
    "retry_base_s",
    "retry_factor",
    "retry_cap_s",
    "retry_jitter",
)
# The settings queue_configure shows, typed as Settings types them: defined once, there.
RuntimeSettings = create_model(  # type: ignore[call-overload]
    "RuntimeSettings",
    __base__=Wire,
    **{name: (Settings.model_fields[name].annotation, ...) for name in RUNTIME_SETTINGS},
)


class Configured(Wire):
    changed: list[str] = Field(description="The settings this call changed, by name.")
    settings: RuntimeSettings = Field(
        description="The agent's; with queue, the queue's limits in place of its own."
    )
    queue: QueueView | SkipJsonSchema[None] = sometimes("With queue: the queue after the change.")


class CommandDescription(Wire):
    name: str
    description: str
    read_only: bool
    destructive: bool
    idempotent: bool
    params_schema: dict[str, Any] = Field(description="The JSON schema of params.")
    example: dict[str, Any] = Field(description="A ready-to-send message.")


class CommandList(Wire):
    commands: list[CommandDescription]


class Submitted(Wire):
    """A task was queued (or merged into an identical one already waiting or running)."""

    task_id: str
    status: Literal[TaskStatus.PENDING, TaskStatus.MERGED, TaskStatus.FAILED] = Field(
        description="failed: a task it depends on had already failed, so it never runs."
    )
    queue_position: int | None
    merged_into: str | None = Field(description="The identical task this one was merged into.")


class WaitedTask(TaskSummary):
    """MCP, a submit with wait: the task's summary once it finished or the wait ran out."""

    logs: list[str] = Field(description="The last lines of the task's log.")
    finished: bool = Field(description="False: the wait limit passed first; the task runs on.")


class TaskFailed(Failure):
    """MCP, a submit with wait whose task failed: the error, and the task under ``task``."""

    action: str
    task: WaitedTask
