"""How a run's end becomes the task's state, as plain functions (no engine, no store)."""

from __future__ import annotations

import pytest
from queue_helpers import make_task

from ai_admin.errors import ErrorCode, ExecutionError, TaskTimeout
from ai_admin.queue.models import DockerTask, TaskStatus
from ai_admin.queue.outcomes import Outcome, apply_outcome
from ai_admin.queue.runs import Stop
from ai_admin.queue.stats import QueueStats

NOW = 1_000.0


def run_ends(task: DockerTask, outcome: Outcome, stats: QueueStats) -> bool:
    task.status = TaskStatus.RUNNING
    return apply_outcome(
        task, outcome, now=NOW, elapsed_s=2.5, stats=stats, backoff_s=lambda n: 10.0 * n
    )


def network_error() -> ExecutionError:
    return ExecutionError("reset", code=ErrorCode.DOCKER_NETWORK_ERROR, transient=True)


def test_a_result_completes_the_task() -> None:
    stats, task = QueueStats(), make_task("a")
    assert run_ends(task, Outcome(result={"digest": "sha256:1"}), stats) is False
    assert (task.status, task.progress, task.result) == (
        TaskStatus.COMPLETED,
        100.0,
        {"digest": "sha256:1"},
    )
    assert (task.completed_at, task.duration_s) == (NOW, 2.5)
    assert stats.counters["completed"] == 1
    assert stats.counters["processing_s_total"] == 2.5


def test_a_transient_error_with_retries_left_runs_again_one_backoff_later() -> None:
    stats, task = QueueStats(), make_task("a", max_retries=2)
    assert run_ends(task, Outcome(error=network_error()), stats) is True
    assert task.status is TaskStatus.PENDING
    assert (task.retry_count, task.next_attempt_at) == (1, NOW + 10.0)
    assert task.error_code == "DOCKER_NETWORK_ERROR"
    assert task.completed_at is None
    assert (stats.counters["retried"], stats.counters["failed"]) == (1, 0)
    assert run_ends(task, Outcome(error=network_error()), stats) is True
    assert task.next_attempt_at == NOW + 20.0
    assert run_ends(task, Outcome(error=network_error()), stats) is False  # no retries left
    assert task.status is TaskStatus.FAILED
    assert task.current_step == "Failed with an error: DOCKER_NETWORK_ERROR"


def test_a_permanent_error_fails_at_once_and_a_timeout_times_out() -> None:
    stats = QueueStats()
    denied = make_task("a", max_retries=3)
    error = ExecutionError("no", code=ErrorCode.DOCKER_AUTHENTICATION_FAILED, transient=False)
    assert run_ends(denied, Outcome(error=error), stats) is False
    assert (denied.status, denied.retry_count) == (TaskStatus.FAILED, 0)
    slow = make_task("b", max_retries=0)
    assert run_ends(slow, Outcome(error=TaskTimeout("too slow")), stats) is False
    assert slow.status is TaskStatus.TIMEOUT
    assert (stats.counters["failed"], stats.counters["timed_out"]) == (1, 1)


def test_a_timeout_inside_the_work_fails_the_task_rather_than_timing_it_out() -> None:
    stats, task = QueueStats(), make_task("a", max_retries=0)
    engine_slow = ExecutionError("Read timed out.", code=ErrorCode.SYSTEM_TIMEOUT, transient=True)
    assert run_ends(task, Outcome(error=engine_slow), stats) is False
    assert (task.status, task.error_code) == (TaskStatus.FAILED, "SYSTEM_TIMEOUT")
    assert (stats.counters["failed"], stats.counters["timed_out"]) == (1, 0)


@pytest.mark.parametrize(
    ("stop", "status", "finished"),
    [
        (Stop.CANCEL, TaskStatus.CANCELLED, True),
        (Stop.PAUSE, TaskStatus.PAUSED, False),
        (Stop.SHUTDOWN, TaskStatus.PENDING, False),
    ],
)
def test_a_stop_wins_and_counts_no_processing_time(
    stop: Stop, status: TaskStatus, finished: bool
) -> None:
    stats, task = QueueStats(), make_task("a")
    task.progress = 40.0
    assert run_ends(task, Outcome(stop=stop), stats) is False
    assert task.status is status
    assert (task.completed_at is not None) is finished
    assert stats.counters["processing_s_total"] == 0
    assert stats.counters["cancelled"] == (1 if stop is Stop.CANCEL else 0)
    if stop is Stop.SHUTDOWN:
        assert task.progress == 0.0  # runs again from the start after the restart
