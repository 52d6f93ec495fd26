"""Task control through the engine: every action from every status, and what it really does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from queue_helpers import (
    EngineFactory,
    FailingStore,
    Work,
    assert_consistent,
    make_task,
    refused,
    within,
)

from ai_admin.errors import (
    ErrorCode,
    ExecutionError,
    StoreError,
    TaskNotFound,
    TransitionNotAllowed,
)
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.models import DockerTask, TaskStatus
from ai_admin.queue.sqlite_store import SqliteStore

S = TaskStatus
E = ErrorCode


async def _in_status(engine: QueueEngine, work: Work, status: TaskStatus) -> str:
    """Submit a task and bring it to ``status``; the queue is paused afterwards, so a task an
    action puts back in the queue stays pending where the test can see it."""
    task = make_task(f"subject-{status.value}")
    if status is S.PENDING:
        engine.pause_queue()
        task_id = await engine.add_task(task)
    elif status is S.PAUSED:
        engine.pause_queue()
        task_id = await engine.add_task(task)
        await engine.pause_task(task_id)
    elif status is S.RUNNING:
        task_id = await engine.add_task(task)
        await work.started(task_id)
    elif status is S.COMPLETED:
        work.release(task.id)
        task_id = await engine.add_task(task)
    elif status is S.FAILED:
        work.fail(task.id, ExecutionError("no such image", code=E.DOCKER_IMAGE_NOT_FOUND))
        task_id = await engine.add_task(task)
    elif status is S.CANCELLED:
        engine.pause_queue()
        task_id = await engine.add_task(task)
        await engine.cancel_task(task_id)
    elif status is S.TIMEOUT:
        task.timeout_s = 0.01
        task_id = await engine.add_task(task)
    elif status is S.MERGED:
        engine.pause_queue()
        await engine.add_task(make_task("twin"))
        task_id = (await engine.submit(make_task("twin"))).task_id
    else:  # pragma: no cover
        raise AssertionError(status)
    if status.is_finished and status is not S.MERGED:
        await within(engine.wait_for(task_id))
    engine.pause_queue()
    current = await engine.require_task(task_id)
    assert current.status is status
    return task_id


def _act(engine: QueueEngine, action: str, task_id: str) -> Awaitable[DockerTask]:
    actions: dict[str, Callable[[str], Awaitable[DockerTask]]] = {
        "pause": engine.pause_task,
        "resume": engine.resume_task,
        "cancel": engine.cancel_task,
        "retry": engine.retry_task,
    }
    return actions[action](task_id)


# status -> action -> the resulting status, or the code the action is refused with
TRANSITIONS: dict[TaskStatus, dict[str, TaskStatus | ErrorCode]] = {
    S.PENDING: {
        "pause": S.PAUSED,
        "resume": E.QUEUE_TASK_NOT_PAUSED,
        "cancel": S.CANCELLED,
        "retry": E.QUEUE_TASK_NOT_RETRYABLE,
    },
    S.PAUSED: {
        "pause": E.QUEUE_TASK_ALREADY_PAUSED,
        "resume": S.PENDING,
        "cancel": S.CANCELLED,
        "retry": E.QUEUE_TASK_NOT_RETRYABLE,
    },
    S.RUNNING: {
        "pause": S.PAUSED,
        "resume": E.QUEUE_TASK_ALREADY_RUNNING,
        "cancel": S.CANCELLED,
        "retry": E.QUEUE_TASK_ALREADY_RUNNING,
    },
    S.COMPLETED: {
        "pause": E.QUEUE_TASK_FINISHED,
        "resume": E.QUEUE_TASK_FINISHED,
        "cancel": E.QUEUE_TASK_FINISHED,
        "retry": E.QUEUE_TASK_NOT_RETRYABLE,
    },
    S.FAILED: {
        "pause": E.QUEUE_TASK_FINISHED,
        "resume": E.QUEUE_TASK_FINISHED,
        "cancel": E.QUEUE_TASK_FINISHED,
        "retry": S.PENDING,
    },
    S.CANCELLED: {
        "pause": E.QUEUE_TASK_FINISHED,
        "resume": E.QUEUE_TASK_FINISHED,
        "cancel": E.QUEUE_TASK_FINISHED,
        "retry": S.PENDING,
    },
    S.TIMEOUT: {
        "pause": E.QUEUE_TASK_FINISHED,
        "resume": E.QUEUE_TASK_FINISHED,
        "cancel": E.QUEUE_TASK_FINISHED,
        "retry": S.PENDING,
    },
    S.MERGED: {
        "pause": E.QUEUE_TASK_FINISHED,
        "resume": E.QUEUE_TASK_FINISHED,
        "cancel": E.QUEUE_TASK_FINISHED,
        "retry": E.QUEUE_TASK_NOT_RETRYABLE,
    },
}
CASES = [(s, a, out) for s, row in TRANSITIONS.items() for a, out in row.items()]


@pytest.mark.parametrize(
    ("status", "action", "outcome"), CASES, ids=[f"{a}-{s.value}" for s, a, _ in CASES]
)
async def test_action_from_status(
    make_engine: EngineFactory, status: TaskStatus, action: str, outcome: TaskStatus | ErrorCode
) -> None:
    work = Work()
    engine = await make_engine(work)
    task_id = await _in_status(engine, work, status)

    if isinstance(outcome, ErrorCode):
        error = await refused(_act(engine, action, task_id), outcome)
        assert error.details["status"] == status.value
        assert error.details["action"] == action
        # Refused means untouched.
        assert (await engine.require_task(task_id)).status is status
    else:
        returned = await within(_act(engine, action, task_id))
        assert returned.id == task_id
        assert returned.status is outcome
        assert (await engine.require_task(task_id)).status is outcome


async def test_retry_past_max_retries_is_refused_unless_forced(make_engine: EngineFactory) -> None:
    work = Work(block=False)
    engine = await make_engine(work)
    task = make_task("flaky", max_retries=1)
    image_missing = ExecutionError("missing", code=E.DOCKER_IMAGE_NOT_FOUND)
    work.fail(task.id, image_missing, ExecutionError("again", code=E.DOCKER_IMAGE_NOT_FOUND))
    task_id = await engine.add_task(task)
    first = await within(engine.wait_for(task_id))
    assert first.status is S.FAILED
    assert first.can_retry

    retried = await engine.retry_task(task_id)
    assert retried.retry_count == 1
    second = await within(engine.wait_for(task_id))
    assert second.status is S.FAILED
    assert not second.can_retry
    summary = await engine.get_task_summary(task_id)
    assert summary["retry"] == {
        "retry_count": 1,
        "max_retries": 1,
        "can_retry": False,
        "next_attempt_at": None,
    }

    error = await refused(engine.retry_task(task_id), E.QUEUE_RETRY_LIMIT_REACHED)
    assert error.details["retry_count"] == 1
    assert error.details["max_retries"] == 1

    forced = await engine.retry_task(task_id, force=True)
    assert forced.retry_count == 2
    done = await within(engine.wait_for(task_id))
    assert done.status is S.COMPLETED
    assert work.attempts[task_id] == [1, 2, 3]
    stats = await engine.get_queue_stats()
    assert stats["counters"]["retried"] == 2


async def test_pausing_a_running_task_stops_it_and_resume_runs_it_again_in_its_place(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=1)
    a, b, c = [await engine.add_task(make_task(n)) for n in "abc"]
    await work.started(a)

    paused = await within(engine.pause_task(a))
    assert paused.status is S.PAUSED
    assert work.cancelled == [a]  # the executor saw CancelledError before pause returned
    assert engine.queue_position(paused) is None
    await work.started(b)  # the freed slot goes to the next task

    resumed = await engine.resume_task(a)
    assert resumed.status is S.PENDING
    # It keeps its place: ahead of c, which was submitted after it.
    assert engine.queue_position(resumed) == 1
    assert engine.queue_position(await engine.require_task(c)) == 2

    work.release(b)
    await work.started(a, times=2)
    assert work.starts == [a, b, a]
    work.release()
    await within(engine.join())
    assert work.starts == [a, b, a, c]
    done = await engine.require_task(a)
    assert done.status is S.COMPLETED
    assert done.retry_count == 0  # a pause is not a retry
    assert work.attempts[a] == [1, 1]


async def test_pausing_a_pending_task_holds_it_until_resumed(make_engine: EngineFactory) -> None:
    work = Work(block=False)
    engine = await make_engine(work, max_concurrent=1)
    engine.pause_queue()
    a, b = [await engine.add_task(make_task(n)) for n in "ab"]
    await engine.pause_task(a)
    engine.resume_queue()
    await within(engine.join())
    assert work.starts == [b]
    held = await engine.require_task(a)
    assert held.status is S.PAUSED
    assert held.current_step == S.PAUSED.description

    await engine.resume_task(a)
    await within(engine.join())
    assert work.starts == [b, a]


async def test_cancelling_a_running_task_stops_the_executor_before_returning(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work)
    task_id = await engine.add_task(make_task("long"))
    await work.started(task_id)

    cancelled = await within(engine.cancel_task(task_id))

    assert work.cancelled == [task_id]
    assert work.active == 0
    assert cancelled.status is S.CANCELLED
    assert cancelled.completed_at is not None
    assert engine.running_tasks() == []
    stored = await engine.require_task(task_id)
    assert stored.status is S.CANCELLED
    stats = await engine.get_queue_stats()
    assert stats["performance"]["cancelled"] == 1
    assert stats["summary"]["running"] == 0
    await within(engine.join())


@pytest.mark.parametrize("action", ["cancel", "pause"])
async def test_stopping_a_task_just_after_it_was_launched_does_not_hang(
    make_engine: EngineFactory, action: str
) -> None:
    # Regression: a task cancelled before its run had begun never recorded an outcome, so
    # cancel_task (and later close) waited forever and the worker slot was lost.
    work = Work()
    engine = await make_engine(work, max_concurrent=1)
    engine.pause_queue()
    task_id = await engine.add_task(make_task("fresh"))
    other = await engine.add_task(make_task("other"))
    engine.resume_queue()
    for _ in range(1000):  # one loop turn at a time: catch the task right at its launch
        if engine.running_tasks():
            break
        await asyncio.sleep(0)
    assert [t.id for t in engine.running_tasks()] == [task_id]

    stopped = await within(_act(engine, action, task_id), 5)

    assert stopped.status is (S.CANCELLED if action == "cancel" else S.PAUSED)
    await work.started(other)  # the slot was freed
    work.release()
    await within(engine.join())
    assert (await engine.require_task(other)).status is S.COMPLETED


async def test_concurrent_retries_run_the_task_once(make_engine: EngineFactory) -> None:
    # Regression: two retries of the same failed task at once both succeeded and ran it twice.
    work = Work(block=False)
    engine = await make_engine(work)
    task = make_task("double-click")
    work.fail(task.id, ExecutionError("missing", code=E.DOCKER_IMAGE_NOT_FOUND))
    task_id = await engine.add_task(task)
    await within(engine.wait_for(task_id))

    both = asyncio.gather(
        engine.retry_task(task_id), engine.retry_task(task_id), return_exceptions=True
    )
    results = await within(both)

    accepted = [r for r in results if isinstance(r, DockerTask)]
    assert len(accepted) == 1
    rejected = [r for r in results if not isinstance(r, DockerTask)]
    assert [getattr(r, "code", r) for r in rejected] == [E.QUEUE_TASK_NOT_RETRYABLE]
    done = await within(engine.wait_for(task_id))
    await within(engine.join())
    assert done.status is S.COMPLETED
    assert done.retry_count == 1
    assert work.starts == [task_id, task_id]


async def test_pause_right_after_resume_keeps_the_task_held(make_engine: EngineFactory) -> None:
    # Regression: a pause arriving while the resume was being written left the paused task in
    # the run queue, and it ran anyway.
    work = Work(block=False)
    engine = await make_engine(work)
    engine.pause_queue()
    task_id = await engine.add_task(make_task("toggle"))
    await engine.pause_task(task_id)
    engine.resume_queue()

    results = await within(asyncio.gather(engine.resume_task(task_id), engine.pause_task(task_id)))

    assert [r.id for r in results] == [task_id, task_id]
    await within(engine.join())
    assert work.starts == []
    assert (await engine.require_task(task_id)).status is S.PAUSED


async def test_unknown_task_is_reported_as_not_found(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    for call in (engine.pause_task, engine.resume_task, engine.cancel_task, engine.retry_task):
        with pytest.raises(TaskNotFound) as info:
            await call("no-such-task")
        assert info.value.code is E.QUEUE_TASK_NOT_FOUND
    assert await engine.get_task("no-such-task") is None


# -- an action whose write fails leaves the task as it is stored ---------------------------------


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (S.PENDING, "pause"),
        (S.PENDING, "cancel"),
        (S.PAUSED, "resume"),
        (S.PAUSED, "cancel"),
        (S.FAILED, "retry"),
        (S.CANCELLED, "retry"),
    ],
)
async def test_an_action_whose_write_fails_leaves_the_stored_state(
    make_engine: EngineFactory, tmp_path: Path, status: TaskStatus, action: str
) -> None:
    store = FailingStore(
        SqliteStore(tmp_path / "q.db"), StoreError("disk full", code=E.SYSTEM_DISK_SPACE)
    )
    work = Work()
    engine = await make_engine(work, store=store)
    task_id = await _in_status(engine, work, status)
    before = await engine.get_queue_stats()
    store.fail_saves(1)

    with pytest.raises(StoreError) as info:
        await within(_act(engine, action, task_id))

    assert info.value is store.error
    assert (await engine.require_task(task_id)).status is status
    waiting = [t.id for t in engine.pending_tasks()]
    assert waiting == ([task_id] if status is S.PENDING else [])
    after = await engine.get_queue_stats()
    assert after["counters"] == before["counters"]
    assert after["distributions"] == before["distributions"]
    await assert_consistent(engine, store, [task_id])

    # Once the disk has room the same action works, and the task goes on from there.
    done = await within(_act(engine, action, task_id))
    assert done.status is TRANSITIONS[status][action]
    engine.resume_queue()
    work.release()
    await within(engine.join())
    await assert_consistent(engine, store, [task_id])


async def test_an_action_sent_with_one_whose_write_fails_decides_on_the_stored_state(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    # An action waits for the one before it to land or be undone: deciding on the cancel's
    # state before its write failed, the retry would have been answered 200 and then undone.
    store = FailingStore(
        SqliteStore(tmp_path / "q.db"), StoreError("disk full", code=E.SYSTEM_DISK_SPACE)
    )
    engine = await make_engine(Work(block=False), store=store)
    engine.pause_queue()
    task_id = await engine.add_task(make_task("contested"))
    store.fail_saves(1)

    cancel, retry = await within(
        asyncio.gather(
            engine.cancel_task(task_id),
            engine.retry_task(task_id, force=True),
            return_exceptions=True,
        )
    )

    assert cancel is store.error
    assert isinstance(retry, TransitionNotAllowed)
    assert retry.code is E.QUEUE_TASK_NOT_RETRYABLE  # it found the task waiting, as stored
    task = await engine.require_task(task_id)
    assert (task.status, task.retry_count) == (S.PENDING, 0)
    await assert_consistent(engine, store, [task_id])


@pytest.mark.parametrize("action", ["pause", "cancel"])
async def test_a_stop_whose_write_fails_is_reported_and_written_once_the_store_accepts_it(
    make_engine: EngineFactory, tmp_path: Path, action: str
) -> None:
    # The run is stopped before its outcome is written, so memory cannot go back: the action
    # says the state is not stored, and the flusher writes it once the store takes writes.
    store = FailingStore(
        SqliteStore(tmp_path / "q.db"), StoreError("disk full", code=E.SYSTEM_DISK_SPACE)
    )
    work = Work()
    engine = await make_engine(work, store=store)
    task_id = await engine.add_task(make_task("stopped"))
    await work.started(task_id)
    events = engine.subscribe(task_id)
    store.fail_saves(1)

    with pytest.raises(StoreError):
        await within(_act(engine, action, task_id))

    assert work.cancelled == [task_id]
    made = S.PAUSED if action == "pause" else S.CANCELLED
    while (await engine.require_task(task_id)).status is not made:
        await within(events.next())  # published once it is written
    await assert_consistent(engine, store, [task_id])


async def test_a_launch_whose_write_fails_runs_and_is_recorded(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    store = FailingStore(
        SqliteStore(tmp_path / "q.db"), StoreError("disk full", code=E.SYSTEM_DISK_SPACE)
    )
    work = Work(block=False)
    engine = await make_engine(work, store=store)
    engine.pause_queue()
    task_id = await engine.add_task(make_task("launched"))
    store.fail_saves(1)  # the "running" write
    engine.resume_queue()

    assert (await within(engine.wait_for(task_id))).status is S.COMPLETED
    assert work.starts == [task_id]
    await assert_consistent(engine, store, [task_id])
