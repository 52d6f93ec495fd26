"""Start, join, graceful shutdown, restart on the same database, and the whole-queue pause
kept across restarts."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from queue_helpers import (
    EngineFactory,
    FailingStore,
    Work,
    executors_for,
    make_settings,
    make_task,
    within,
)

from ai_admin.errors import ErrorCode, ExecutionError, QueueShuttingDown, StoreError
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import TaskStatus
from ai_admin.queue.sqlite_store import SqliteStore


async def _start_closing(engine: QueueEngine, grace_s: float) -> asyncio.Task[None]:
    closing = asyncio.create_task(engine.close(grace_s=grace_s))
    await asyncio.sleep(0)  # one loop turn: close() has begun and stopped taking work
    assert (await engine.get_queue_stats())["queue"]["accepting"] is False
    return closing


async def test_join_returns_only_once_outcomes_are_recorded(make_engine: EngineFactory) -> None:
    # Regression: join() returned while the last outcome was still being written, so a task
    # read right after it could still show "running".
    engine = await make_engine(Work(block=False))
    for i in range(20):
        task_id = await engine.add_task(make_task(f"quick{i}"))
        await within(engine.join())
        assert (await engine.require_task(task_id)).status is TaskStatus.COMPLETED
        stats = await engine.get_queue_stats()
        assert stats["performance"]["completed"] == i + 1


async def test_join_waits_for_retries_in_backoff(make_engine: EngineFactory) -> None:
    work = Work(block=False)
    engine = await make_engine(work, retry_base_s=0.05, retry_cap_s=0.05)
    task = make_task("retrying")
    work.fail(task.id, ExecutionError("down", code=ErrorCode.DOCKER_DAEMON_UNAVAILABLE))
    await engine.add_task(task)
    await within(engine.join())
    assert (await engine.require_task(task.id)).status is TaskStatus.COMPLETED
    assert work.attempts[task.id] == [1, 2]


async def test_shutdown_stops_a_task_that_outlives_the_grace_and_a_restart_runs_it(
    make_engine: EngineFactory,
) -> None:
    work = Work()  # would run forever
    engine = await make_engine(work, max_concurrent=1)
    running = await engine.add_task(make_task("forever"))
    waiting = await engine.add_task(make_task("next"))
    await work.started(running)

    await within(engine.close(grace_s=0.05))

    assert work.cancelled == [running]  # stopped cleanly, not abandoned
    with pytest.raises(QueueShuttingDown) as info:
        await engine.submit(make_task("late"))
    assert info.value.code is ErrorCode.QUEUE_SHUTTING_DOWN

    rerun = Work(block=False)
    reopened = await make_engine(rerun, max_concurrent=1, start=False)
    reopened.pause_queue()
    await reopened.start()
    requeued = await reopened.require_task(running)
    assert requeued.status is TaskStatus.PENDING
    assert requeued.progress == 0
    assert [t.id for t in reopened.pending_tasks()] == [running, waiting]

    reopened.resume_queue()
    await within(reopened.join())
    assert rerun.starts == [running, waiting]
    for task_id in (running, waiting):
        assert (await reopened.require_task(task_id)).status is TaskStatus.COMPLETED


async def test_shutdown_waits_for_running_tasks_within_the_grace(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work)
    task_id = await engine.add_task(make_task("almost-done"))
    await work.started(task_id)

    closing = await _start_closing(engine, grace_s=30)
    work.release()
    await within(closing)

    assert work.cancelled == []
    reopened = await make_engine(Work())
    assert (await reopened.require_task(task_id)).status is TaskStatus.COMPLETED


async def test_the_grace_period_lets_a_task_finish_within_it_and_stops_one_that_outlives_it(
    make_engine: EngineFactory,
) -> None:
    # Guard: close() gives running tasks grace_s before stopping them. Without it (or with a
    # shorter one) the task that finishes within the grace is stopped and runs again after the
    # restart; with a longer one close() keeps the outliving task past the grace it was given.
    grace_s, finishes_after_s = 1.0, 0.1
    work = Work()
    engine = await make_engine(work, max_concurrent=2)
    quick = await engine.add_task(make_task("finishes-within-the-grace"))
    slow = await engine.add_task(make_task("outlives-the-grace"))
    await work.wait_until(lambda: len(work.starts) == 2)

    loop = asyncio.get_running_loop()
    began = loop.time()
    loop.call_later(finishes_after_s, work.release, quick)
    await within(engine.close(grace_s=grace_s), timeout_s=grace_s + 5)
    took_s = loop.time() - began

    assert work.completed == [quick]
    assert work.cancelled == [slow]
    # Half a grace of slack for a busy machine; a doubled grace is still well outside it.
    assert grace_s - 0.01 <= took_s < 1.5 * grace_s, f"close() stopped it after {took_s:.3f} s"

    rerun = Work(block=False)
    reopened = await make_engine(rerun)
    assert (await reopened.require_task(quick)).status is TaskStatus.COMPLETED
    assert (await within(reopened.wait_for(slow))).status is TaskStatus.COMPLETED
    assert rerun.starts == [slow]  # re-queued: it runs again, the finished one does not


async def test_close_keeps_an_outcome_that_is_being_written(make_engine: EngineFactory) -> None:
    # Regression: close() did not wait for a finished task whose outcome was still being
    # written; the write was lost and the task ran again after the restart.
    work = Work(block=False)
    for i in range(10):
        engine = await make_engine(work)
        task_id = await engine.add_task(make_task(f"edge{i}"))
        await work.started(task_id)
        await asyncio.sleep(0)  # one loop turn: the run is now recording its outcome
        await within(engine.close(grace_s=0))
        reopened = await make_engine(Work(), start=False)
        reopened.pause_queue()
        await reopened.start()
        assert (await reopened.require_task(task_id)).status is TaskStatus.COMPLETED
        await reopened.resume_queue()  # kept across restarts: the next round must run
        await reopened.close()
    assert len(work.starts) == 10


async def test_a_transient_failure_during_shutdown_is_retried_after_the_restart(
    make_engine: EngineFactory,
) -> None:
    # Regression: a transient failure in the grace period failed the task for good.
    began, fail_now = asyncio.Event(), asyncio.Event()

    async def executor(ctx: TaskContext) -> dict[str, Any]:
        began.set()
        await fail_now.wait()
        raise ExecutionError("registry unreachable", code=ErrorCode.DOCKER_NETWORK_ERROR)

    engine = await make_engine(executor)
    task_id = await engine.add_task(make_task("unlucky"))
    await within(began.wait())
    closing = await _start_closing(engine, grace_s=30)
    fail_now.set()
    await within(closing)

    work = Work(block=False)
    reopened = await make_engine(work, start=False)
    reopened.pause_queue()
    await reopened.start()
    stored = await reopened.require_task(task_id)
    assert stored.status is TaskStatus.PENDING
    assert stored.retry_count == 1
    assert stored.error_code == ErrorCode.DOCKER_NETWORK_ERROR.value
    reopened.resume_queue()
    done = await within(reopened.wait_for(task_id))
    assert done.status is TaskStatus.COMPLETED
    assert work.attempts[task_id] == [2]


async def test_pending_and_paused_tasks_keep_their_order_across_a_restart(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine(Work())
    engine.pause_queue()
    a, b, d, c = [await engine.add_task(make_task(n)) for n in "abdc"]
    await engine.pause_task(d)
    await engine.close()

    work = Work(block=False)
    reopened = await make_engine(work, max_concurrent=1, start=False)
    reopened.pause_queue()
    await reopened.start()
    assert [t.id for t in reopened.pending_tasks()] == [a, b, c]
    held = await reopened.require_task(d)
    assert held.status is TaskStatus.PAUSED
    assert reopened.queue_position(held) is None

    await reopened.resume_task(d)  # back in its original place, between b and c
    assert [t.id for t in reopened.pending_tasks()] == [a, b, d, c]
    reopened.resume_queue()
    await within(reopened.join())
    assert work.starts == [a, b, d, c]


async def test_the_engine_is_an_async_context_manager(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work, start=False, shutdown_grace_s=0.05)
    async with engine as queue:
        assert queue is engine
        task_id = await queue.add_task(make_task("scoped"))
        await work.started(task_id)
    assert work.cancelled == [task_id]
    with pytest.raises(QueueShuttingDown):
        await engine.add_task(make_task("after"))


async def test_wait_for_gives_up_after_its_timeout(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work)
    task_id = await engine.add_task(make_task("stuck"))
    with pytest.raises(TimeoutError):
        await engine.wait_for(task_id, timeout_s=0.01)
    work.release()
    assert (await within(engine.wait_for(task_id))).status is TaskStatus.COMPLETED


# -- the whole-queue pause is kept across restarts ---------------------------------------------


async def test_the_queue_pause_is_kept_across_a_restart(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    # Regression: a paused queue came back unpaused after a restart and ran everything at once.
    engine = await make_engine(Work())
    await engine.pause_queue()
    ids = [await engine.add_task(make_task(n)) for n in "ab"]
    await engine.close()

    work = Work(block=False)
    reopened = await make_engine(work)
    assert reopened.paused
    assert (await reopened.get_queue_stats())["queue"]["paused"] is True
    await within(reopened.join())  # a paused queue is idle: nothing was started
    assert work.starts == []
    assert [t.id for t in reopened.pending_tasks()] == ids

    await reopened.resume_queue()
    await within(reopened.join())
    assert work.starts == ids
    await reopened.close()
    assert not (await make_engine(Work(block=False))).paused


async def test_the_pause_is_durable_once_awaited_without_a_clean_close(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    # As after kill -9: the first engine is never closed before the second one reads the file.
    first = await make_engine(Work(), db=tmp_path / "shared.db")
    await first.pause_queue()
    task_id = await first.add_task(make_task("held"))

    work = Work(block=False)
    second = await make_engine(work, db=tmp_path / "shared.db")
    assert second.paused
    assert [t.id for t in second.pending_tasks()] == [task_id]
    await within(second.join())
    assert work.starts == []


async def test_a_pause_or_resume_asked_before_start_wins_over_the_stored_one(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine(Work())
    await engine.pause_queue()
    await engine.close()

    reopened = await make_engine(Work(), start=False)
    written = reopened.resume_queue()  # before start: written once the store is open
    await reopened.start()
    await within(written)
    assert not reopened.paused
    await reopened.close()
    assert not (await make_engine(Work())).paused


async def test_a_pause_that_cannot_be_stored_is_taken_back(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    error = StoreError("disk full", code=ErrorCode.SYSTEM_DISK_SPACE)
    store = FailingStore(SqliteStore(tmp_path / "q.db"), error)
    work = Work(block=False)
    engine = await make_engine(work, store=store)
    store.fail_flags(1)

    with pytest.raises(StoreError):
        await engine.pause_queue()

    assert not engine.paused  # what the store holds, and what the answer said
    task_id = await engine.add_task(make_task("runs"))
    assert (await within(engine.wait_for(task_id))).status is TaskStatus.COMPLETED


async def test_awaiting_a_pause_before_start_opens_the_store_and_stores_it(
    make_engine: EngineFactory,
) -> None:
    # A door's first command may be queue_pause: it must not wait for a start nobody makes.
    engine = await make_engine(Work(), start=False)
    await within(engine.pause_queue())
    await engine.close()
    assert (await make_engine(Work())).paused


def test_a_pause_asked_before_any_loop_runs_is_stored_when_the_queue_starts(
    tmp_path: Path,
) -> None:
    # The Python API: a program may pause the queue before it runs its event loop.
    def engine() -> QueueEngine:
        settings = make_settings(tmp_path)
        return QueueEngine(SqliteStore(tmp_path / "q.db"), executors_for(Work()), settings)

    first = engine()
    first.pause_queue()  # no loop yet: nothing to await, written once the store opens

    async def start_then_close(queue: QueueEngine) -> bool:
        await queue.start()
        await queue.close()
        return queue.paused

    assert asyncio.run(start_then_close(first)) is True
    assert asyncio.run(start_then_close(engine())) is True  # it was stored


async def test_a_close_during_start_leaves_nothing_running(make_engine: EngineFactory) -> None:
    # Regression: a close while start() was opening the store returned at once, and start()
    # went on to open the store and start the scheduler and the store's threads for good.
    engine = await make_engine(start=False)
    starting = asyncio.create_task(engine.start())
    await asyncio.sleep(0)  # start() holds its lock and is opening the store
    await within(engine.close())
    await starting
    assert not any(t.get_name().startswith("ai-admin-") for t in asyncio.all_tasks())
    assert not any(t.name.startswith("ai-admin-sqlite") for t in threading.enumerate())
    with pytest.raises(QueueShuttingDown):
        await engine.submit(make_task())
