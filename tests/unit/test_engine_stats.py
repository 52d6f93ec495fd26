"""Statistics as clients read them, after mixed outcomes, across a restart, and after clear()."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from queue_helpers import (
    EngineFactory,
    FailingStore,
    Work,
    assert_consistent,
    make_task,
    within,
)

from ai_admin.errors import ErrorCode, ExecutionError, StoreError
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.models import DockerTask, TaskStatus, TaskType
from ai_admin.queue.sqlite_store import SqliteStore

E = ErrorCode


async def _mixed_outcomes(engine: QueueEngine, work: Work) -> dict[str, str]:
    """Two completed, one failed for good, one failed after a retry, one timed out, one
    cancelled while waiting, one merged. Returns the ids by outcome."""
    ids: dict[str, str] = {}
    ok1 = make_task("ok1", TaskType.PULL)
    ok2 = make_task("ok2", TaskType.BUILD)
    missing = make_task("missing", TaskType.PUSH)
    unreachable = make_task("unreachable", TaskType.PUSH, max_retries=1)
    slow = make_task("slow", TaskType.PULL, timeout_s=0.02)
    for task in (ok1, ok2):
        work.release(task.id)
    work.fail(missing.id, ExecutionError("no image", code=E.DOCKER_IMAGE_NOT_FOUND))
    net = ExecutionError("unreachable", code=E.DOCKER_NETWORK_ERROR)
    work.fail(unreachable.id, net, ExecutionError("unreachable", code=E.DOCKER_NETWORK_ERROR))

    engine.pause_queue()
    for name, task in [
        ("ok1", ok1),
        ("ok2", ok2),
        ("missing", missing),
        ("unreachable", unreachable),
        ("slow", slow),
    ]:
        ids[name] = await engine.add_task(task)
    ids["cancelled"] = await engine.add_task(make_task("cancelled"))
    await engine.cancel_task(ids["cancelled"])
    merged = await engine.submit(DockerTask(task_type=TaskType.PULL, params={"image_name": "ok1"}))
    assert merged.merged_into == ids["ok1"]
    ids["merged"] = merged.task_id
    engine.resume_queue()
    await within(engine.join())
    return ids


EXPECTED_STATUS = {"completed": 2, "failed": 2, "timeout": 1, "cancelled": 1, "merged": 1}


def _durable_part(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stats.items() if k != "queue"}


async def test_statistics_after_mixed_outcomes(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=2)
    ids = await _mixed_outcomes(engine, work)
    for name, status in [
        ("ok1", TaskStatus.COMPLETED),
        ("missing", TaskStatus.FAILED),
        ("unreachable", TaskStatus.FAILED),
        ("slow", TaskStatus.TIMEOUT),
        ("cancelled", TaskStatus.CANCELLED),
        ("merged", TaskStatus.MERGED),
    ]:
        assert (await engine.require_task(ids[name])).status is status, name

    stats = await engine.get_queue_stats()

    assert stats["summary"] == {
        "total_tasks": 7,
        "max_concurrent": 2,
        "running": 0,
        "queue_size": 0,
    }
    assert stats["distributions"]["status"] == EXPECTED_STATUS
    assert stats["distributions"]["type"] == {"docker_pull": 4, "docker_build": 1, "docker_push": 2}
    assert stats["distributions"]["error"] == {
        "DOCKER_IMAGE_NOT_FOUND": 1,
        "DOCKER_NETWORK_ERROR": 1,
        "SYSTEM_TIMEOUT": 1,
    }
    performance = stats["performance"]
    assert performance["completed"] == 2
    assert performance["failed"] == 2
    assert performance["timed_out"] == 1
    assert performance["cancelled"] == 1
    assert performance["success_rate"] == 40.0  # 2 of 5 runs that ended
    assert performance["average_duration_seconds"] > 0
    assert stats["retries"] == {
        "total_retries": 1,
        "tasks_with_retries": 1,
        "tasks_at_max_retries": 1,
    }
    assert stats["recent_activity"] == {"last_24_hours": 7, "last_hour": 7}
    counters = stats["counters"]
    assert {k: counters[k] for k in counters if not k.startswith("average")} == {
        "enqueued": 6,
        "dequeued": 6,  # ok1, ok2, missing, unreachable twice, slow
        "completed": 2,
        "failed": 2,
        "timed_out": 1,
        "cancelled": 1,
        "retried": 1,
        "merged": 1,
    }
    assert counters["average_wait_seconds"] >= 0
    assert counters["average_processing_seconds"] > 0
    assert stats["queue"] == {"paused": False, "accepting": True}


async def test_statistics_survive_a_restart(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=2)
    await _mixed_outcomes(engine, work)
    before = await engine.get_queue_stats()
    await engine.close()

    reopened = await make_engine(Work(), max_concurrent=2)
    after = await reopened.get_queue_stats()

    assert _durable_part(after) == _durable_part(before)


async def test_statistics_count_live_tasks(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=1)
    running = await engine.add_task(make_task("running"))
    await work.started(running)
    await engine.add_task(make_task("waiting"))
    paused = await engine.add_task(make_task("paused"))
    await engine.pause_task(paused)

    stats = await engine.get_queue_stats()

    assert stats["summary"]["running"] == 1
    assert stats["summary"]["queue_size"] == 1
    assert stats["summary"]["total_tasks"] == 3
    assert stats["distributions"]["status"] == {"running": 1, "pending": 1, "paused": 1}


async def test_clear_deletes_finished_tasks_and_updates_statistics(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=2)
    ids = await _mixed_outcomes(engine, work)
    live = await engine.add_task(make_task("still-live"))
    await work.started(live)

    assert await engine.clear() == 3  # two completed and one merged
    stats = await engine.get_queue_stats()
    assert stats["distributions"]["status"] == {
        "failed": 2,
        "timeout": 1,
        "cancelled": 1,
        "running": 1,
    }
    assert stats["summary"]["total_tasks"] == 5
    assert await engine.get_task(ids["ok1"]) is None
    assert await engine.get_task(ids["merged"]) is None
    assert (await engine.require_task(ids["missing"])).status is TaskStatus.FAILED

    assert await engine.clear(include_failed=True) == 4
    stats = await engine.get_queue_stats()
    assert stats["distributions"]["status"] == {"running": 1}
    assert stats["distributions"]["error"] == {}
    assert stats["summary"]["total_tasks"] == 1
    assert await engine.get_task(ids["slow"]) is None
    # The counters are history: clearing tasks does not rewrite them.
    assert stats["performance"]["completed"] == 2

    assert await engine.clear(include_failed=True) == 0
    work.release(live)
    assert (await within(engine.wait_for(live))).status is TaskStatus.COMPLETED
    assert (await engine.get_queue_stats())["distributions"]["status"] == {"completed": 1}


async def test_statistics_equal_the_store_when_tasks_change_during_a_clear(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    # Regression: clear() replaced the counts with ones read beside the writes in flight, so
    # every task that changed meanwhile was lost from them for good.
    store = SqliteStore(tmp_path / "counted.db")
    engine = await make_engine(Work(block=False), store=store, max_concurrent=4)
    for i in range(300):
        await engine.add_task(make_task(f"old-{i}"))
    await within(engine.join())

    async def submit(client: int) -> None:
        for i in range(30):
            await engine.add_task(make_task(f"new-{client}-{i}"))

    await within(asyncio.gather(engine.clear(), *(submit(c) for c in range(10))))
    await within(engine.join())
    await assert_consistent(engine, store, [])


# -- writes that fail: nothing is counted that is not stored ------------------------------------


def _disk_full() -> StoreError:
    return StoreError("database or disk is full", code=E.SYSTEM_DISK_SPACE)


async def test_a_submit_whose_write_fails_leaves_nothing_behind(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    store = FailingStore(SqliteStore(tmp_path / "q.db"), _disk_full())
    engine = await make_engine(Work(block=False), store=store)
    engine.pause_queue()
    kept = await engine.add_task(make_task("kept"))
    lost = make_task("lost")
    store.fail_saves(1)

    with pytest.raises(StoreError) as info:
        await engine.submit(lost)

    assert info.value is store.error  # the store's own error, unchanged
    assert await engine.get_task(lost.id) is None
    assert [t.id for t in engine.pending_tasks()] == [kept]
    stats = await engine.get_queue_stats()
    assert stats["counters"]["enqueued"] == 1
    assert stats["summary"]["total_tasks"] == 1
    assert stats["summary"]["queue_size"] == 1
    assert stats["recent_activity"] == {"last_24_hours": 1, "last_hour": 1}
    await assert_consistent(engine, store, [kept])

    # The same work submitted again once the disk has room is new work, not a twin of nothing.
    again = await engine.submit(make_task("lost"))
    assert again.status is TaskStatus.PENDING
    await engine.close()
    reopened = await make_engine(Work(block=False), db=tmp_path / "q.db")
    after = await reopened.get_queue_stats()
    assert after["counters"]["enqueued"] == 2  # the stored counters never counted the lost one
    assert after["recent_activity"] == {"last_24_hours": 2, "last_hour": 2}


async def test_a_merge_whose_write_fails_leaves_nothing_behind(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    store = FailingStore(SqliteStore(tmp_path / "q.db"), _disk_full())
    engine = await make_engine(Work(block=False), store=store)
    engine.pause_queue()
    first = await engine.add_task(make_task("twin"))
    twin = make_task("twin")
    store.fail_saves(1)

    with pytest.raises(StoreError):
        await engine.submit(twin)

    assert await engine.get_task(twin.id) is None
    stats = await engine.get_queue_stats()
    assert stats["counters"]["merged"] == 0
    assert stats["distributions"]["status"] == {"pending": 1}
    assert stats["recent_activity"]["last_hour"] == 1
    await assert_consistent(engine, store, [first])
    merged = await engine.submit(make_task("twin"))
    assert merged.merged_into == first
    await engine.close()
    reopened = await make_engine(Work(block=False), db=tmp_path / "q.db")
    assert (await reopened.get_queue_stats())["counters"]["merged"] == 1
