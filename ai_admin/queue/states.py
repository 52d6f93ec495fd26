"""The task state machine for user actions: what each action may do from each status.

Every refused action gets a code saying why, never a silent no-op. The engine's own moves
(start, step, finish) are not user actions and are not checked here.
"""

from __future__ import annotations

from enum import StrEnum

from ai_admin.errors import ErrorCode, TransitionNotAllowed
from ai_admin.queue.models import RETRYABLE_STATUSES, DockerTask, TaskStatus


class Action(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    RETRY = "retry"


_PAUSABLE = frozenset({TaskStatus.PENDING}) | {s for s in TaskStatus if s.is_active}
_ALLOWED: dict[Action, frozenset[TaskStatus]] = {
    Action.PAUSE: frozenset(_PAUSABLE),
    Action.RESUME: frozenset({TaskStatus.PAUSED}),
    Action.CANCEL: frozenset(_PAUSABLE | {TaskStatus.PAUSED}),
    Action.RETRY: RETRYABLE_STATUSES,
}


def _refusal(action: Action, status: TaskStatus) -> ErrorCode:
    if status.is_active and action in (Action.RESUME, Action.RETRY):
        return ErrorCode.QUEUE_TASK_ALREADY_RUNNING
    if action is Action.PAUSE and status is TaskStatus.PAUSED:
        return ErrorCode.QUEUE_TASK_ALREADY_PAUSED
    if action is Action.RESUME:
        if status.is_finished:
            return ErrorCode.QUEUE_TASK_FINISHED
        return ErrorCode.QUEUE_TASK_NOT_PAUSED
    if action is Action.RETRY:
        return ErrorCode.QUEUE_TASK_NOT_RETRYABLE
    return ErrorCode.QUEUE_TASK_FINISHED


def check_action(task: DockerTask, action: Action, *, force: bool = False) -> None:
    """Raise ``TransitionNotAllowed`` unless ``action`` may be applied to ``task`` now."""
    details = {"task_id": task.id, "status": task.status.value, "action": action.value}
    if task.status not in _ALLOWED[action]:
        code = _refusal(action, task.status)
        raise TransitionNotAllowed(
            f"Cannot {action.value} task {task.id}: it is {task.status.value}.",
            code=code,
            details=details,
        )
    if action is Action.RETRY and not force and task.retry_count >= (task.max_retries or 0):
        raise TransitionNotAllowed(
            f"Task {task.id} has used {task.retry_count} of {task.max_retries} retries.",
            code=ErrorCode.QUEUE_RETRY_LIMIT_REACHED,
            details={**details, "retry_count": task.retry_count, "max_retries": task.max_retries},
        )
