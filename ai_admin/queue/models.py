"""The task: what a client submits and what the queue tracks (what the doors show of it is
built in ``views``)."""

from __future__ import annotations

import dataclasses
import os
import random
import time
import uuid
from collections.abc import Iterator
from enum import IntEnum, StrEnum
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from ai_admin.queue.secrets import split_secrets


class TaskType(StrEnum):
    BUILD = "docker_build"
    PUSH = "docker_push"
    PULL = "docker_pull"


# A submit command's name (TaskType's values) and a priority's name as clients write them
# (TaskPriority's, lower-case), as literals for the models that validate messages; a test keeps
# them equal to the enums.
SubmitAction = Literal["docker_build", "docker_push", "docker_pull"]
SUBMIT_ACTIONS: tuple[str, ...] = get_args(SubmitAction)
Priority = Literal["critical", "high", "normal", "low"]


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    VALIDATING = "validating"
    PREPARING = "preparing"
    UPLOADING = "uploading"
    DOWNLOADING = "downloading"
    BUILDING = "building"
    PULLING = "pulling"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    MERGED = "merged"

    @property
    def description(self) -> str:
        return STATUS_DESCRIPTIONS[self]

    @property
    def is_active(self) -> bool:
        """A worker is executing the task (running or one of its steps)."""
        return self in ACTIVE_STATUSES

    @property
    def is_finished(self) -> bool:
        return self in FINISHED_STATUSES


STATUS_DESCRIPTIONS: dict[TaskStatus, str] = {
    TaskStatus.PENDING: "Waiting in the queue",
    TaskStatus.RUNNING: "Running",
    TaskStatus.PAUSED: "Paused by a user",
    TaskStatus.VALIDATING: "Validating task parameters",
    TaskStatus.PREPARING: "Preparing task execution",
    TaskStatus.UPLOADING: "Uploading data to the registry",
    TaskStatus.DOWNLOADING: "Downloading data from the registry",
    TaskStatus.BUILDING: "Building the Docker image",
    TaskStatus.PULLING: "Pulling the Docker image",
    TaskStatus.COMPLETED: "Completed successfully",
    TaskStatus.FAILED: "Failed with an error",
    TaskStatus.CANCELLED: "Cancelled",
    TaskStatus.TIMEOUT: "Timed out",
    TaskStatus.MERGED: "Merged into an identical earlier task",
}

ACTIVE_STATUSES = frozenset(
    {
        TaskStatus.RUNNING,
        TaskStatus.VALIDATING,
        TaskStatus.PREPARING,
        TaskStatus.UPLOADING,
        TaskStatus.DOWNLOADING,
        TaskStatus.BUILDING,
        TaskStatus.PULLING,
    }
)
FINISHED_STATUSES = frozenset(
    {
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
        TaskStatus.TIMEOUT,
        TaskStatus.MERGED,
    }
)
RETRYABLE_STATUSES = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMEOUT})


class TaskPriority(IntEnum):
    """Lower value runs first; FIFO within one priority."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3

    @classmethod
    def parse(cls, value: TaskPriority | str | int) -> TaskPriority:
        if isinstance(value, str):
            return cls[value.upper()]
        return cls(value)


_id_rng = random.Random(os.urandom(32))


def new_task_id() -> str:
    """A random UUID4. Drawn from a generator seeded once from the OS: ids only need to be
    unique, and ``uuid4()`` reads the kernel's entropy for every id, the slowest part of a
    submit on some machines."""
    return str(uuid.UUID(int=_id_rng.getrandbits(128), version=4))


def _now_s() -> float:
    return time.time()


class ErrorInfo(BaseModel):
    description: str
    suggestions: list[str]
    transient: bool = False


def _about(text: str) -> Any:
    """A field's description, for the schemas pydantic derives from a dataclass."""
    return dataclasses.field(default=None, metadata={"description": text})


@dataclasses.dataclass(frozen=True, slots=True)
class ProgressDetail:
    """Where a running task is, as numbers a progress bar can draw (``DockerTask.progress_detail``).

    The executor reports the counts (bytes, layers, build steps); the run context derives
    ``rate_bps``, smoothed over time, and ``eta_s`` from them. A value nobody knows is None:
    no rate before bytes move, no ``eta_s`` without a total and a rate. ``phase`` names what the
    bytes count ("downloading", "extracting", "uploading", "sending context", "building").

    A slotted dataclass rather than a model: every progress event holds one, and the event
    bus keeps thousands of events for clients that reconnect (about 120 bytes each instead of
    a model's 1.1 kB).
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    phase: str | None = _about("What the numbers count, e.g. downloading.")
    bytes_done: int | None = _about("Bytes moved so far in this phase.")
    bytes_total: int | None = _about("Bytes the phase moves; null if unknown.")
    rate_bps: float | None = _about(
        "Bytes per second, smoothed over a few seconds; null before any move."
    )
    eta_s: float | None = _about("Seconds left at that rate; null without a total or a rate.")
    layers_done: int | None = _about("Image layers through this phase.")
    layers_total: int | None = _about("Image layers seen so far.")
    step: int | None = _about("The build step running (1-based).")
    steps_total: int | None = _about("The build's steps in all.")

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _DETAIL_FIELDS}


_DETAIL_FIELDS = tuple(f.name for f in dataclasses.fields(ProgressDetail))


class DockerTask(BaseModel):
    """One unit of work and everything known about it.

    Times are Unix seconds (``*_at``), durations seconds (``*_s``).
    """

    model_config = ConfigDict(validate_assignment=False, use_enum_values=False)

    id: str = Field(default_factory=new_task_id)
    task_type: TaskType
    params: dict[str, Any] = Field(default_factory=dict)
    queue: str = "default"
    priority: TaskPriority = TaskPriority.NORMAL
    timeout_s: float | None = None
    max_retries: int | None = None

    status: TaskStatus = TaskStatus.PENDING
    progress: float = 0.0
    # The numbers behind ``progress`` in the current (or last) attempt; None until an executor
    # reports some, and cleared when a new attempt starts.
    progress_detail: ProgressDetail | None = None
    current_step: str = STATUS_DESCRIPTIONS[TaskStatus.PENDING]
    created_at: float = Field(default_factory=_now_s)
    started_at: float | None = None
    completed_at: float | None = None
    duration_s: float | None = None
    retry_count: int = 0
    queued_at: float | None = None
    next_attempt_at: float | None = None

    error: str | None = None
    error_code: str | None = None
    error_details: dict[str, Any] | None = None
    error_info: ErrorInfo | None = None

    result: dict[str, Any] | None = None
    merged_into: str | None = None
    # Tasks that must complete before this one starts (it fails if one of them does not).
    depends_on: list[str] = Field(default_factory=list)
    schedule_id: str | None = None  # the schedule whose firing submitted it
    batch_id: str | None = None  # the batch it belongs to
    logs: list[str] = Field(default_factory=list)
    # Order within a priority; a resumed task keeps its place, a retried one goes to the back.
    seq: int = 0
    # Set while a running task is paused, so resume knows it must run again.
    paused_from: TaskStatus | None = None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Params as they are shown, credentials redacted: a task made with its credentials
        (before the queue splits them off) may end up in a log or a traceback."""
        for name, value in super().__repr_args__():
            yield name, split_secrets(value)[0] if name == "params" else value

    @field_serializer("params", when_used="json")
    def _public_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """JSON (the store, answers, exports) never holds a secret, even if the queue had not
        split them off yet: redacting redacted params changes nothing."""
        return split_secrets(params)[0]

    @property
    def duration(self) -> float | None:
        """Another name for ``duration_s`` (the Python API's ``task.duration``)."""
        return self.duration_s

    @property
    def can_retry(self) -> bool:
        return self.status in RETRYABLE_STATUSES and self.retry_count < (self.max_retries or 0)

    def public_dict(self, *, include_logs: bool = True) -> dict[str, Any]:
        """The task as clients see it, as JSON: ``views.task_view``'s, without the queue
        position (which the queue knows, not the task)."""
        from ai_admin.queue.views import task_view  # (views are built from this module)

        return task_view(self, include_logs=include_logs).as_json()
