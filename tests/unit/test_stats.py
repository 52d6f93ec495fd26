"""Recent activity is summed once a minute at most and still counts every new task; each run's
wait and run time are observed by task type and outcome, the totals by type follow the
tasks, and the run's log lines carry its task_id."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from loguru import logger
from queue_helpers import EngineFactory, Work, make_task, within

from ai_admin.errors import ErrorCode, ExecutionError
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import DockerTask, TaskType
from ai_admin.queue.stats import DURATION_BOUNDS_S, Durations, QueueStats
from ai_admin.queue.stats_views import queue_statistics

if TYPE_CHECKING:
    from loguru import Message

E = ErrorCode


def _recent(stats: QueueStats) -> dict[str, int]:
    """The recent activity clients read (the statistics view built from ``stats``)."""
    view = queue_statistics(
        stats,
        max_concurrent=1,
        running=0,
        queue_size=0,
        paused=False,
        accepting=True,
        set_aside=(),
        set_aside_shown=0,
    )
    activity: dict[str, int] = view.as_json()["recent_activity"]
    return activity


def test_recent_activity_counts_old_and_new_tasks_by_window() -> None:
    stats = QueueStats()
    now = time.time()
    stats.created(now - 2 * 3600)  # inside the day, outside the hour
    stats.created(now - 2 * 86_400)  # outside both
    assert _recent(stats) == {"last_24_hours": 1, "last_hour": 0}
    for _ in range(3):  # after the sums are cached: each new task still counts at once
        stats.created(time.time())
    assert _recent(stats) == {"last_24_hours": 4, "last_hour": 3}
    stats.created(now - 1800, n=2)  # an older minute: the cache is rebuilt, not patched
    assert _recent(stats) == {"last_24_hours": 6, "last_hour": 5}


# -- histograms, totals by type and the run's log lines ----------------------------------------


def test_durations_fall_in_the_first_bucket_that_holds_them() -> None:
    durations = Durations()
    for seconds in (0.0, 0.01, 0.011, 4.0, 3600.0, 3601.0):
        durations.observe(seconds)
    cumulative = dict(durations.cumulative())
    assert cumulative[0.01] == 2  # a bound holds the values equal to it (Prometheus' "le")
    assert cumulative[0.05] == 3
    assert cumulative[5.0] == 4
    assert cumulative[3600.0] == 5
    assert cumulative[float("inf")] == durations.count == 6
    assert durations.sum_s == pytest.approx(7205.021)
    assert [b for b, _ in durations.cumulative()] == [*DURATION_BOUNDS_S, float("inf")]


def _sink(records: list[dict[str, Any]]) -> Callable[[Message], None]:
    def keep(message: Message) -> None:
        record = message.record
        records.append({"message": record["message"], **record["extra"]})

    return keep


async def _known_runs(engine: QueueEngine, work: Work) -> dict[str, str]:
    """A build completed, a push failed after one retry, a pull timed out, a pull cancelled
    while waiting, a pull merged into the build's twin... by name, their ids."""
    ok = make_task("ok", TaskType.BUILD)
    flaky = make_task("flaky", TaskType.PUSH, max_retries=1)
    slow = make_task("slow", TaskType.PULL, timeout_s=0.02)
    work.release(ok.id)
    net = ExecutionError("unreachable", code=E.DOCKER_NETWORK_ERROR, transient=True)
    work.fail(flaky.id, net, net)
    engine.pause_queue()
    ids = {
        name: await engine.add_task(t) for name, t in [("ok", ok), ("flaky", flaky), ("slow", slow)]
    }
    ids["cancelled"] = await engine.add_task(make_task("cancelled"))
    await engine.cancel_task(ids["cancelled"])
    twin = await engine.submit(DockerTask(task_type=TaskType.PULL, params={"image_name": "slow"}))
    ids["merged"] = twin.task_id
    engine.resume_queue()
    await within(engine.join())
    return ids


async def test_runs_are_observed_by_type_and_outcome_and_logged_with_their_task_id(
    make_engine: EngineFactory,
) -> None:
    records: list[dict[str, Any]] = []
    sink = logger.add(_sink(records), level="INFO")
    try:
        work = Work()
        engine = await make_engine(work, max_concurrent=2)
        ids = await _known_runs(engine, work)
    finally:
        logger.remove(sink)
    stats = engine._stats

    assert {k: d.count for k, d in stats.waits.items()} == {
        "docker_build": 1,
        "docker_push": 2,  # its first run and its retry
        "docker_pull": 1,
    }
    assert {k: d.count for k, d in stats.runs.items()} == {
        ("docker_build", "completed"): 1,
        ("docker_push", "retried"): 1,
        ("docker_push", "failed"): 1,
        ("docker_pull", "timeout"): 1,
    }
    assert stats.runs["docker_pull", "timeout"].sum_s >= 0.02
    assert dict(stats.stored) == {"docker_build": 1, "docker_push": 1, "docker_pull": 3}
    assert dict(stats.finished) == {
        ("docker_build", "completed"): 1,
        ("docker_push", "failed"): 1,
        ("docker_pull", "timeout"): 1,
        ("docker_pull", "cancelled"): 1,
        ("docker_pull", "merged"): 1,
    }

    flaky = [r for r in records if r.get("task_id") == ids["flaky"]]
    assert [(r.get("outcome"), r.get("error_code")) for r in flaky] == [
        (None, None),  # started
        ("retried", "DOCKER_NETWORK_ERROR"),
        (None, None),
        ("failed", "DOCKER_NETWORK_ERROR"),
    ]
    assert all(r["task_type"] == "docker_push" for r in flaky)
    assert all(ids["flaky"] in r["message"] for r in flaky)
    ended = [r for r in records if r.get("task_id") == ids["ok"] and "outcome" in r]
    assert [(r["outcome"], r["error_code"]) for r in ended] == [("completed", None)]


async def test_the_lines_a_run_logs_carry_its_task_id(make_engine: EngineFactory) -> None:
    async def talks(ctx: TaskContext) -> dict[str, Any]:
        logger.warning("the executor speaks")
        return {}

    records: list[dict[str, Any]] = []
    sink = logger.add(_sink(records), level="INFO")
    try:
        engine = await make_engine(talks)
        task_id = await engine.add_task(make_task("talks"))
        await within(engine.join())
        logger.info("after the run")
    finally:
        logger.remove(sink)
    said = next(r for r in records if r["message"] == "the executor speaks")
    assert said["task_id"] == task_id
    assert said["task_type"] == "docker_pull"
    after = next(r for r in records if r["message"] == "after the run")
    assert "task_id" not in after  # the binding ends with the run
