"""How a run's end becomes the task's new state: completed, failed, retried, or stopped.

Plain functions on the task and the statistics, with no I/O: the engine applies one, then
commits the task through the journal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ai_admin.errors import AiAdminError, ErrorCode, ExecutionError, TaskTimeout
from ai_admin.queue.models import DockerTask, ErrorInfo, TaskStatus
from ai_admin.queue.runs import Stop
from ai_admin.queue.stats import QueueStats


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended: a result, an error, or a stop."""

    result: dict[str, Any] | None = None
    error: AiAdminError | None = None
    stop: Stop | None = None


def apply_outcome(
    task: DockerTask,
    outcome: Outcome,
    *,
    now: float,
    elapsed_s: float,
    stats: QueueStats,
    backoff_s: Callable[[int], float],
) -> bool:
    """Record how the run ended on ``task``; True if it is to run again after a backoff
    (``task.next_attempt_at``), False if it leaves the schedule (finished, held or stopped)."""
    retry = False
    if outcome.stop is not None:
        _stopped(task, outcome.stop, stats)
    elif outcome.error is not None:
        stats.count("processing_s_total", elapsed_s)
        retry = _failed(task, outcome.error, now, stats, backoff_s)
    else:
        stats.count("processing_s_total", elapsed_s)
        stats.count("completed")
        task.status = TaskStatus.COMPLETED
        task.current_step = TaskStatus.COMPLETED.description
        task.progress = 100.0
        task.result = outcome.result
    if task.status.is_finished:
        task.completed_at = now
        task.duration_s = round(elapsed_s, 3)
    return retry


def fail(task: DockerTask, error: AiAdminError, stats: QueueStats) -> None:
    """End the task with ``error`` (failed, or timed out), counted.

    Timed out means the task ran past its own ``timeout_s``; a timeout inside the work (the
    Docker SDK waiting on the engine) is a failure with its code, not the task's timeout."""
    set_error(task, error)
    is_timeout = isinstance(error, TaskTimeout)
    stats.count("timed_out" if is_timeout else "failed")
    task.status = TaskStatus.TIMEOUT if is_timeout else TaskStatus.FAILED
    task.current_step = f"{task.status.description}: {error.code.value}"


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


def _stopped(task: DockerTask, stop: Stop, stats: QueueStats) -> None:
    if stop is Stop.CANCEL:
        stats.count("cancelled")
        task.status = TaskStatus.CANCELLED
        task.current_step = "Cancelled while running"
    elif stop is Stop.PAUSE:
        task.status = TaskStatus.PAUSED
        task.paused_from = TaskStatus.RUNNING
        task.current_step = "Paused while running; resume runs it again"
    else:
        task.status = TaskStatus.PENDING
        task.current_step = "Re-queued: the agent shut down while this task ran"
        task.progress = 0.0


def _failed(
    task: DockerTask,
    error: AiAdminError,
    now: float,
    stats: QueueStats,
    backoff_s: Callable[[int], float],
) -> bool:
    retries_left = task.retry_count < (task.max_retries or 0)
    # Also while closing: the retry is stored as pending and runs after the restart.
    if not (error.transient and retries_left):
        fail(task, error, stats)
        return False
    set_error(task, error)
    task.retry_count += 1
    stats.count("retried")
    delay = backoff_s(task.retry_count)
    task.status = TaskStatus.PENDING
    task.next_attempt_at = now + delay
    task.current_step = (
        f"Retry {task.retry_count} of {task.max_retries} in {delay:.1f} s after {error.code.value}"
    )
    return True
