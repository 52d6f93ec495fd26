"""The queue's views (``ai_admin.queue.views`` and ``stats_views``) are built as their models
say: a task's view and summary and the queue statistics, with every optional part filled (an
error with its advice, progress numbers, a retry waiting, logs, tasks set aside), validate
against their own models and come back unchanged; a builder sets no field its model does not
name and the model names no field its builder leaves out; every field of a task reaches its
view but the queue's own.

The builders skip validation (``View.trusted``), so these tests are what catches a field added
to a model and not to its builder, or the other way round.
"""

from __future__ import annotations

import json
import time

import pytest
from pydantic import BaseModel

from ai_admin.queue.models import (
    DockerTask,
    ErrorInfo,
    ProgressDetail,
    TaskPriority,
    TaskStatus,
    TaskType,
)
from ai_admin.queue.stats import QueueStats, TaskClass
from ai_admin.queue.stats_views import QueueStatistics, queue_statistics
from ai_admin.queue.store import SetAside
from ai_admin.queue.views import TaskSummary, TaskView, View, task_summary, task_view

# What the queue keeps for itself and no client sees.
QUEUE_INTERNALS = {"seq", "paused_from", "queued_at"}


def full_task(**fields: object) -> DockerTask:
    """A failed build waiting for its retry, with every optional part of its views filled."""
    values: dict[str, object] = {
        "task_type": TaskType.BUILD,
        "params": {
            "tag": "app:1",
            "auth": {"username": "ci", "password": "hunter2-secret"},
            "build_args": {"NPM_TOKEN": "npm-secret", "MODE": "release"},
        },
        "queue": "builds",
        "priority": TaskPriority.HIGH,
        "timeout_s": 600.0,
        "max_retries": 3,
        "status": TaskStatus.FAILED,
        "progress": 42.5,
        "progress_detail": ProgressDetail(
            phase="uploading",
            bytes_done=10,
            bytes_total=100,
            rate_bps=1.5,
            eta_s=60.0,
            layers_done=1,
            layers_total=3,
            step=2,
            steps_total=5,
        ),
        "current_step": "Failed with an error",
        "started_at": 100.0,
        "completed_at": 160.0,
        "duration_s": 60.0,
        "retry_count": 1,
        "next_attempt_at": 200.0,
        "error": "build failed at step 2",
        "error_code": "DOCKER_BUILD_FAILED",
        "error_details": {"step": 2, "lines": ["RUN make"]},
        "error_info": ErrorInfo(description="A build step failed.", suggestions=["Read the log."]),
        "result": {"image_id": "sha256:abc"},
        "merged_into": "other-task",
        "depends_on": ["first", "second"],
        "schedule_id": "nightly",
        "batch_id": "batch-7",
        "logs": ["Step 1/2", "Step 2/2"],
        "queued_at": 90.0,
        "seq": 7,
        "paused_from": TaskStatus.RUNNING,
    }
    return DockerTask(**{**values, **fields})


def assert_fits(view: View) -> dict[str, object]:
    """``view`` validates against its own model and comes back the same; it and every view in
    it hold exactly the fields their models name. Returns its JSON."""
    as_json = view.as_json()
    again = type(view).model_validate(as_json)  # extra keys forbidden, required ones required
    assert again.as_json() == as_json
    assert json.dumps(again.as_json()) == json.dumps(as_json)  # the same keys in the same order
    _assert_exact_fields(view)
    return as_json


def _assert_exact_fields(view: BaseModel) -> None:
    assert list(vars(view)) == list(type(view).model_fields)
    for value in vars(view).values():
        for part in value if isinstance(value, list) else [value]:
            if isinstance(part, BaseModel):
                _assert_exact_fields(part)


def test_every_field_of_a_task_reaches_its_view_but_the_queues_own() -> None:
    assert set(DockerTask.model_fields) - QUEUE_INTERNALS <= set(TaskView.model_fields)
    view = task_view(full_task(), queue_position=None).as_json()
    assert not QUEUE_INTERNALS & set(view)


def test_a_task_with_every_part_filled_has_a_view_that_fits_its_model() -> None:
    view = assert_fits(task_view(full_task(), queue_position=3, include_logs=True))
    assert list(view) == list(TaskView.model_fields)  # logs and queue_position included
    assert view["params"] == {
        "tag": "app:1",
        "auth": {"username": "ci", "password": "***"},
        "build_args": {"NPM_TOKEN": "***", "MODE": "release"},
    }
    assert view["priority"] == "high"
    assert view["status"] == "failed"
    assert view["status_description"] == "Failed with an error"
    assert view["error_info"] == {
        "description": "A build step failed.",
        "suggestions": ["Read the log."],
        "transient": False,
    }
    assert view["progress_detail"] == {
        "phase": "uploading",
        "bytes_done": 10,
        "bytes_total": 100,
        "rate_bps": 1.5,
        "eta_s": 60.0,
        "layers_done": 1,
        "layers_total": 3,
        "step": 2,
        "steps_total": 5,
    }
    assert (view["can_retry"], view["duration"], view["next_attempt_at"]) == (True, 60.0, 200.0)
    assert (view["depends_on"], view["schedule_id"], view["batch_id"]) == (
        ["first", "second"],
        "nightly",
        "batch-7",
    )
    assert (view["logs"], view["queue_position"]) == (["Step 1/2", "Step 2/2"], 3)


def test_a_task_views_sometimes_keys_are_left_out_unless_given() -> None:
    task = full_task()
    bare = assert_fits(task_view(task, include_logs=False))
    assert "logs" not in bare
    assert "queue_position" not in bare
    assert task_view(task, queue_position=None).as_json()["queue_position"] is None
    assert task.public_dict(include_logs=False) == bare
    assert task.public_dict() == {**bare, "logs": ["Step 1/2", "Step 2/2"]}


@pytest.mark.parametrize(
    "task",
    [
        full_task(),
        full_task(error_info=None),  # an error nobody explained
        DockerTask(task_type=TaskType.PULL),  # nothing optional
    ],
    ids=["everything", "error-without-advice", "bare"],
)
def test_a_tasks_summary_fits_its_model(task: DockerTask) -> None:
    summary = assert_fits(task_summary(task, queue_position=None))
    assert list(summary) == list(TaskSummary.model_fields)
    assert summary["logs"] == task.logs


def test_a_full_summary_carries_the_error_with_its_advice_and_the_retry_state() -> None:
    summary = assert_fits(task_summary(full_task(), queue_position=2))
    assert summary["status"] == {"value": "failed", "description": "Failed with an error"}
    assert summary["error"] == {
        "message": "build failed at step 2",
        "code": "DOCKER_BUILD_FAILED",
        "details": {"step": 2, "lines": ["RUN make"]},
        "description": "A build step failed.",
        "suggestions": ["Read the log."],
        "transient": False,
    }
    assert summary["retry"] == {
        "retry_count": 1,
        "max_retries": 3,
        "can_retry": True,
        "next_attempt_at": 200.0,
    }
    assert summary["timing"] == {
        "created_at": summary["timing"]["created_at"],
        "started_at": 100.0,
        "completed_at": 160.0,
        "duration": 60.0,
    }
    assert (summary["queue_position"], summary["priority"]) == (2, "high")
    plain = task_summary(full_task(error_info=None), queue_position=None).as_json()
    assert plain["error"]["description"] is None
    assert plain["error"]["suggestions"] == []


def busy_counters() -> QueueStats:
    """Counters with every part of the statistics non-zero."""
    stats = QueueStats()
    for task in (
        full_task(),  # failed with a code, retried once
        full_task(retry_count=3, max_retries=3, status=TaskStatus.TIMEOUT),
        DockerTask(task_type=TaskType.PULL, status=TaskStatus.COMPLETED),
        DockerTask(task_type=TaskType.PUSH),
    ):
        stats.move(None, TaskClass.of(task))
    for name, amount in {
        "enqueued": 4,
        "dequeued": 3,
        "completed": 1,
        "failed": 1,
        "timed_out": 1,
        "cancelled": 1,
        "retried": 2,
        "merged": 1,
        "wait_s_total": 1.5,
        "processing_s_total": 9.0,
    }.items():
        stats.count(name, amount)
    stats.created(time.time(), n=4)
    return stats


def test_the_statistics_with_every_part_filled_fit_their_model() -> None:
    set_aside = [SetAside("bad-1", "params: not JSON", 10.0), SetAside("bad-2", "type", 11.0)]
    view = queue_statistics(
        busy_counters(),
        max_concurrent=2,
        running=1,
        queue_size=1,
        paused=True,
        accepting=False,
        set_aside=set_aside,
        set_aside_shown=1,
    )
    assert isinstance(view, QueueStatistics)
    stats = assert_fits(view)
    assert stats["summary"] == {
        "total_tasks": 4,
        "max_concurrent": 2,
        "running": 1,
        "queue_size": 1,
    }
    assert stats["distributions"] == {
        "status": {"failed": 1, "timeout": 1, "completed": 1, "pending": 1},
        "type": {"docker_build": 2, "docker_pull": 1, "docker_push": 1},
        "error": {"DOCKER_BUILD_FAILED": 2},
    }
    assert stats["performance"] == {
        "average_duration_seconds": 3.0,
        "success_rate": 33.333,
        "completed": 1,
        "failed": 1,
        "timed_out": 1,
        "cancelled": 1,
    }
    assert stats["retries"] == {
        "total_retries": 2,
        "tasks_with_retries": 2,
        "tasks_at_max_retries": 1,
    }
    assert stats["recent_activity"] == {"last_24_hours": 4, "last_hour": 4}
    assert stats["counters"] == {
        "enqueued": 4,
        "dequeued": 3,
        "completed": 1,
        "failed": 1,
        "timed_out": 1,
        "cancelled": 1,
        "retried": 2,
        "merged": 1,
        "average_wait_seconds": 0.5,
        "average_processing_seconds": 3.0,
    }
    assert stats["queue"] == {"paused": True, "accepting": False}
    assert stats["set_aside"] == {
        "count": 2,
        "tasks": [{"task_id": "bad-1", "reason": "params: not JSON", "set_aside_at": 10.0}],
    }


def test_a_trusted_view_is_what_model_construct_makes() -> None:
    """``View.trusted`` stands in for ``model_construct``: the same fields, set and unset."""
    built = task_view(full_task(), include_logs=False)  # logs and queue_position unset
    values = {name: getattr(built, name) for name in built.model_fields_set}
    trusted, constructed = TaskView.trusted(dict(values)), TaskView.model_construct(**values)
    assert trusted == constructed
    assert trusted.model_fields_set == constructed.model_fields_set
    assert vars(trusted) == vars(constructed)
    assert trusted.as_json() == constructed.as_json()
