"""One run of one task: what the engine keeps while the executor works, and how an outcome
becomes error fields on the task."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ai_admin.errors import AiAdminError, ErrorCode, ExecutionError, TaskTimeout
from ai_admin.queue.context import RunContext
from ai_admin.queue.models import DockerTask, ErrorInfo


class Stop(StrEnum):
    """Why a run was told to stop."""

    CANCEL = "cancel"
    PAUSE = "pause"
    SHUTDOWN = "shutdown"


@dataclass(slots=True, eq=False)
class Run:
    """A task while its executor works: how to stop it, and what a stopping action learns."""

    task: DockerTask
    ctx: RunContext
    started_s: float
    job: asyncio.Task[None] | None = None
    stop: Stop | None = None
    # Set once ``_run`` executes: a job cancelled before that would never record an outcome.
    begun: bool = False
    # Set once the outcome is decided: an action then waits for it instead of stopping the run.
    finishing: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    # The "running" write, queued at launch; the outcome is written after it.
    started: asyncio.Future[None] | None = None
    # For the pause or cancel that stopped the run: the state recorded, or the write's error.
    final: DockerTask | None = None
    error: BaseException | None = None

    def request_stop(self, reason: Stop) -> bool:
        """Tell the run to stop, unless it is stopping or recording its outcome already."""
        if self.stop is not None or self.finishing or self.job is None:
            return False
        self.stop = reason
        self.ctx.stop()
        if self.begun:  # else ``_run`` sees ``stop`` when it begins and skips the executor
            self.job.cancel()
        return True


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended: a result, an error, or a stop."""

    result: dict[str, Any] | None = None
    error: AiAdminError | None = None
    stop: Stop | None = None


def set_error(task: DockerTask, error: AiAdminError) -> None:
    """The error fields a client reads: message, code, details and advice."""
    task.error = error.message
    task.error_code = error.code.value
    task.error_details = error.details or None
    task.error_info = ErrorInfo(
        description=error.description, suggestions=error.suggestions, transient=error.transient
    )


def timeout_error(task: DockerTask) -> TaskTimeout:
    return TaskTimeout(
        f"Task {task.id} ran longer than its timeout of {task.timeout_s:g} s.",
        details={"timeout_s": task.timeout_s},
    )


def unknown_error(exc: BaseException) -> ExecutionError:
    return ExecutionError(
        f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
        code=ErrorCode.UNKNOWN_ERROR,
        transient=False,
    )
