"""The state machine for user actions, for every status including a running task's steps."""

from __future__ import annotations

from typing import get_args

import pytest

from ai_admin.errors import ErrorCode, TransitionNotAllowed
from ai_admin.queue.models import (
    ACTIVE_STATUSES,
    SUBMIT_ACTIONS,
    DockerTask,
    Priority,
    TaskPriority,
    TaskStatus,
    TaskType,
)
from ai_admin.queue.states import Action, check_action

S = TaskStatus
E = ErrorCode
OK = None

# Every status the running task passes through behaves like "running".
_RUNNING_ROW = {
    Action.PAUSE: OK,
    Action.RESUME: E.QUEUE_TASK_ALREADY_RUNNING,
    Action.CANCEL: OK,
    Action.RETRY: E.QUEUE_TASK_ALREADY_RUNNING,
}
_FINISHED_ROW = {
    Action.PAUSE: E.QUEUE_TASK_FINISHED,
    Action.RESUME: E.QUEUE_TASK_FINISHED,
    Action.CANCEL: E.QUEUE_TASK_FINISHED,
}
TABLE: dict[TaskStatus, dict[Action, ErrorCode | None]] = {
    S.PENDING: {
        Action.PAUSE: OK,
        Action.RESUME: E.QUEUE_TASK_NOT_PAUSED,
        Action.CANCEL: OK,
        Action.RETRY: E.QUEUE_TASK_NOT_RETRYABLE,
    },
    S.PAUSED: {
        Action.PAUSE: E.QUEUE_TASK_ALREADY_PAUSED,
        Action.RESUME: OK,
        Action.CANCEL: OK,
        Action.RETRY: E.QUEUE_TASK_NOT_RETRYABLE,
    },
    **{status: _RUNNING_ROW for status in ACTIVE_STATUSES},
    S.COMPLETED: {**_FINISHED_ROW, Action.RETRY: E.QUEUE_TASK_NOT_RETRYABLE},
    S.MERGED: {**_FINISHED_ROW, Action.RETRY: E.QUEUE_TASK_NOT_RETRYABLE},
    S.FAILED: {**_FINISHED_ROW, Action.RETRY: OK},
    S.CANCELLED: {**_FINISHED_ROW, Action.RETRY: OK},
    S.TIMEOUT: {**_FINISHED_ROW, Action.RETRY: OK},
}
CASES = [(s, a, TABLE[s][a]) for s in TaskStatus for a in Action]


def test_the_table_covers_every_status_and_action() -> None:
    assert set(TABLE) == set(TaskStatus)
    assert all(set(row) == set(Action) for row in TABLE.values())


@pytest.mark.parametrize(
    ("status", "action", "refusal"), CASES, ids=[f"{a.value}-{s.value}" for s, a, _ in CASES]
)
def test_check_action(status: TaskStatus, action: Action, refusal: ErrorCode | None) -> None:
    task = DockerTask(task_type=TaskType.PULL, status=status, max_retries=3)
    if refusal is None:
        check_action(task, action)
        return
    with pytest.raises(TransitionNotAllowed) as info:
        check_action(task, action)
    assert info.value.code is refusal
    assert info.value.details == {"task_id": task.id, "status": status.value, "action": action}
    assert status.value in info.value.message


@pytest.mark.parametrize("status", [S.FAILED, S.CANCELLED, S.TIMEOUT])
def test_retry_is_limited_by_max_retries_unless_forced(status: TaskStatus) -> None:
    task = DockerTask(task_type=TaskType.PULL, status=status, max_retries=2, retry_count=2)
    with pytest.raises(TransitionNotAllowed) as info:
        check_action(task, Action.RETRY)
    assert info.value.code is E.QUEUE_RETRY_LIMIT_REACHED
    assert info.value.details["retry_count"] == 2
    assert info.value.details["max_retries"] == 2
    check_action(task, Action.RETRY, force=True)
    task.retry_count = 1
    check_action(task, Action.RETRY)


def test_force_does_not_make_a_finished_task_retryable() -> None:
    task = DockerTask(task_type=TaskType.PULL, status=S.COMPLETED)
    with pytest.raises(TransitionNotAllowed) as info:
        check_action(task, Action.RETRY, force=True)
    assert info.value.code is E.QUEUE_TASK_NOT_RETRYABLE


def test_refusals_carry_the_http_conflict_status() -> None:
    task = DockerTask(task_type=TaskType.PULL, status=S.RUNNING)
    with pytest.raises(TransitionNotAllowed) as info:
        check_action(task, Action.RETRY)
    assert info.value.http_status == 409
    assert info.value.suggestions  # advice comes from the catalogue


def test_the_literals_clients_write_are_the_enums_values() -> None:
    assert tuple(t.value for t in TaskType) == SUBMIT_ACTIONS
    assert get_args(Priority) == tuple(p.name.lower() for p in TaskPriority)
