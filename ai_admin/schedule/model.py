"""A schedule as the agent keeps it (``Schedule``, one record in the store) and as clients see
it (``ScheduleView``, built by ``schedule_view`` from the record and the outcome of its last
task, read from the queue when asked).

A schedule keeps its command message exactly as the client gave it (it holds no credentials:
those are refused when it is made) and the task each firing submits (``TaskTemplate``), built
once, when the command was validated. Times are Unix seconds.
"""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ai_admin.queue.models import DockerTask, TaskPriority, TaskStatus, TaskType
from ai_admin.queue.views import View
from ai_admin.schedule.spec import TriggerSpec

__all__ = [
    "FiringError",
    "LastOutcome",
    "Schedule",
    "ScheduleView",
    "TaskTemplate",
    "schedule_view",
]

RECORD_KIND = "schedule"  # the store's record kind


def new_schedule_id() -> str:
    return f"sch-{uuid.uuid4().hex[:16]}"


class TaskTemplate(BaseModel):
    """The task a firing submits, as the command asked for it (params without credentials)."""

    model_config = ConfigDict(extra="forbid")

    task_type: TaskType
    params: dict[str, Any]
    queue: str = "default"
    priority: TaskPriority = TaskPriority.NORMAL
    timeout_s: float | None = None
    max_retries: int | None = None

    @classmethod
    def of(cls, task: DockerTask) -> TaskTemplate:
        return cls(
            task_type=task.task_type,
            params=copy.deepcopy(task.params),
            queue=task.queue,
            priority=task.priority,
            timeout_s=task.timeout_s,
            max_retries=task.max_retries,
        )

    def task(self, schedule_id: str) -> DockerTask:
        """A new task for one firing, carrying the schedule's id."""
        return DockerTask(
            task_type=self.task_type,
            params=copy.deepcopy(self.params),
            queue=self.queue,
            priority=self.priority,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            schedule_id=schedule_id,
        )


class FiringError(View):
    """Why the last firing submitted nothing (the queue refused it: full, shutting down)."""

    code: str
    message: str
    at: float


class Schedule(BaseModel):
    """One schedule and its firing state, as stored (``model_dump(mode="json")``)."""

    model_config = ConfigDict(extra="forbid")

    schedule_id: str = Field(default_factory=new_schedule_id)
    name: str
    cron: str | None = None
    interval_s: float | None = None
    at: str | None = None
    timezone: str = "UTC"
    command: dict[str, Any]
    template: TaskTemplate
    paused: bool = False
    created_at: float = Field(default_factory=time.time)
    next_run_at: float | None = None
    last_run_at: float | None = None
    last_task_id: str | None = None
    runs: int = 0  # firings that submitted a task (merged ones included)
    missed: int = 0  # firings skipped: missed while the agent was down, beyond the grace time
    last_error: FiringError | None = None

    @property
    def spec(self) -> TriggerSpec:
        return TriggerSpec(self.cron, self.interval_s, self.at, self.timezone)

    @property
    def done(self) -> bool:
        """A one-time (``at``) schedule that has fired or was missed: it fires no more."""
        return self.at is not None and (self.runs > 0 or self.missed > 0)

    def record(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class LastOutcome(View):
    """The task the last firing submitted, as the queue holds it now."""

    task_id: str
    status: TaskStatus | None = Field(
        description="The task's status now; null once it is no longer stored (retention)."
    )
    merged_into: str | None = Field(
        description="merged: the identical task, still waiting or running, that it joined."
    )
    error_code: str | None = Field(description="failed or timeout: the error's code.")


class ScheduleView(View):
    """A schedule as clients see it: when it fires, and what its last firing did."""

    schedule_id: str
    name: str
    cron: str | None = Field(description="Five-field cron expression, or null.")
    interval_s: float | None = Field(description="Seconds between firings, or null.")
    at: str | None = Field(description="The one ISO 8601 time it fires at, or null.")
    timezone: str = Field(description="The IANA time zone cron and at are read in.")
    command: dict[str, Any] = Field(description="The command message each firing submits.")
    paused: bool
    done: bool = Field(description="A one-time (at) schedule that fired or was missed.")
    created_at: float
    next_run_at: float | None = Field(description="null: paused, or a one-time schedule done.")
    last_run_at: float | None
    last_task_id: str | None
    last_outcome: LastOutcome | None = Field(description="The last firing's task, as it is now.")
    runs: int = Field(description="Firings that submitted a task (merged ones included).")
    missed: int = Field(
        description="Firings skipped: missed while the agent was down, beyond the grace time."
    )
    last_error: FiringError | None = Field(
        description="Why the last firing submitted nothing, if it did not (cleared by the next)."
    )


def schedule_view(schedule: Schedule, last_task: DockerTask | None) -> ScheduleView:
    """The view of ``schedule``; ``last_task``: its last firing's task as the queue holds it
    (None when there is none, or it is no longer stored)."""
    outcome = None
    if schedule.last_task_id is not None:
        outcome = LastOutcome(
            task_id=schedule.last_task_id,
            status=last_task.status if last_task is not None else None,
            merged_into=last_task.merged_into if last_task is not None else None,
            error_code=last_task.error_code if last_task is not None else None,
        )
    return ScheduleView(
        schedule_id=schedule.schedule_id,
        name=schedule.name,
        cron=schedule.cron,
        interval_s=schedule.interval_s,
        at=schedule.at,
        timezone=schedule.timezone,
        command=copy.deepcopy(schedule.command),
        paused=schedule.paused,
        done=schedule.done,
        created_at=schedule.created_at,
        next_run_at=schedule.next_run_at,
        last_run_at=schedule.last_run_at,
        last_task_id=schedule.last_task_id,
        last_outcome=outcome,
        runs=schedule.runs,
        missed=schedule.missed,
        last_error=schedule.last_error,
    )
