"""What subscribers and readers see while a task runs: ordered events, progress, steps, logs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from queue_helpers import EngineFactory, Work, make_task, within

from ai_admin.errors import ErrorCode, ExecutionError
from ai_admin.queue.events import Subscription
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import DockerTask, TaskStatus
from ai_admin.queue.sqlite_store import SqliteStore


async def _until_finished(sub: Subscription) -> list[dict[str, Any]]:
    events = []
    while (event := await within(sub.next())) is not None:
        events.append(event)
        if event.event == "status" and TaskStatus(event.status).is_finished:
            break
    return events


def _progress_never_decreases(events: Sequence[dict[str, Any]]) -> None:
    values = [e.progress for e in events]
    assert values == sorted(values), values


async def test_a_subscriber_sees_every_change_of_a_task_in_order(
    make_engine: EngineFactory,
) -> None:
    async def executor(ctx: TaskContext) -> dict[str, Any]:
        ctx.progress(5)  # before the "running" state is even written
        await ctx.step(TaskStatus.VALIDATING)
        ctx.progress(20, "Checking the reference")
        ctx.progress(10)  # lower: ignored
        await ctx.step(TaskStatus.PULLING, "Pulling team/app")
        ctx.log("layer 1 done")
        ctx.progress(60)
        ctx.progress(100)  # only completion reaches 100
        return {"ok": True}

    engine = await make_engine(executor)
    task = make_task("watched")
    other = make_task("other")
    sub = engine.subscribe(task.id)
    everything = engine.subscribe()
    await engine.add_task(task)
    await engine.add_task(other)

    events = await _until_finished(sub)

    assert [(e.event, e.status) for e in events] == [
        ("status", "pending"),
        ("status", "running"),
        ("progress", "running"),
        ("status", "validating"),
        ("progress", "validating"),
        ("status", "pulling"),
        ("log", "pulling"),
        ("progress", "pulling"),
        ("progress", "pulling"),
        ("status", "completed"),
    ]
    assert {e.task_id for e in events} == {task.id}
    _progress_never_decreases(events)
    assert [e.progress for e in events if e.event == "progress"] == [5, 20, 60, 99.9]
    assert [e.progress for e in events].count(100.0) == 1
    assert events[-1].progress == 100.0
    assert events[4].current_step == "Checking the reference"
    assert events[5].current_step == "Pulling team/app"
    assert events[6].line == "layer 1 done"

    await within(engine.join())
    seen = []
    while len(seen) < 2 * len(events):
        seen.append(await within(everything.next()))
    assert {e.task_id for e in seen} == {task.id, other.id}
    for task_id in (task.id, other.id):
        _progress_never_decreases([e for e in seen if e.task_id == task_id])


async def test_progress_from_a_worker_thread_reaches_subscribers_in_order(
    make_engine: EngineFactory,
) -> None:
    async def executor(ctx: TaskContext) -> dict[str, Any]:
        def blocking_work() -> None:
            for i in range(1, 51):
                ctx.progress(i * 1.5, f"chunk {i}")
                ctx.log(f"chunk {i}")

        await asyncio.to_thread(blocking_work)
        return {}

    engine = await make_engine(executor, task_log_lines=10)
    task = make_task("threaded")
    sub = engine.subscribe(task.id)
    await engine.add_task(task)
    events = await _until_finished(sub)

    _progress_never_decreases(events)
    progress = [e.progress for e in events if e.event == "progress"]
    assert progress == [round(i * 1.5, 1) for i in range(1, 51)]
    lines = [e.line for e in events if e.event == "log"]
    assert lines == [f"chunk {i}" for i in range(1, 51)]
    done = await engine.require_task(task.id)
    assert done.progress == 100.0
    assert done.logs == [f"chunk {i}" for i in range(41, 51)]


async def test_a_task_that_does_not_complete_never_shows_100(make_engine: EngineFactory) -> None:
    async def executor(ctx: TaskContext) -> dict[str, Any]:
        ctx.progress(100)
        raise ExecutionError("push refused", code=ErrorCode.DOCKER_PUSH_FAILED)

    engine = await make_engine(executor)
    task_id = await engine.add_task(make_task("refused"))
    failed = await within(engine.wait_for(task_id))
    assert failed.status is TaskStatus.FAILED
    assert failed.progress < 100


async def test_the_log_keeps_only_the_last_task_log_lines(make_engine: EngineFactory) -> None:
    async def executor(ctx: TaskContext) -> dict[str, Any]:
        for i in range(12):
            ctx.log(f"line {i}\n")
        return {}

    engine = await make_engine(executor, task_log_lines=5)
    task_id = await engine.add_task(make_task("chatty"))
    await within(engine.wait_for(task_id))

    expected = [f"line {i}" for i in range(7, 12)]
    task = await engine.require_task(task_id)
    assert task.logs == expected
    assert task.public_dict()["logs"] == expected
    assert (await engine.get_task_summary(task_id))["logs"] == expected


async def test_no_log_is_kept_when_task_log_lines_is_zero(make_engine: EngineFactory) -> None:
    async def executor(ctx: TaskContext) -> dict[str, Any]:
        ctx.log("ignored")
        return {}

    engine = await make_engine(executor, task_log_lines=0)
    task_id = await engine.add_task(make_task("quiet"))
    assert (await within(engine.wait_for(task_id))).logs == []


class RecordingStore(SqliteStore):
    """SQLite, plus a record of every task state handed to ``save``, once it is committed."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.saved: list[tuple[str, str, float]] = []
        self._changed = asyncio.Event()

    def save(self, tasks: Sequence[DockerTask], counters: Any = None) -> asyncio.Future[None]:
        states = [(t.id, t.status.value, t.progress) for t in tasks]
        write = super().save(tasks, counters)

        def committed(f: asyncio.Future[None]) -> None:
            if not f.cancelled() and f.exception() is None:
                self.saved.extend(states)
                changed, self._changed = self._changed, asyncio.Event()
                changed.set()

        write.add_done_callback(committed)
        return write

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(15):
            while not predicate():
                await self._changed.wait()


async def test_steps_are_durable_at_once_and_progress_writes_are_coalesced(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    store = RecordingStore(tmp_path / "q.db")
    work = Work()
    seen_in_store: list[str] = []

    async def executor(ctx: TaskContext) -> dict[str, Any]:
        await ctx.step(TaskStatus.DOWNLOADING, "Downloading layers")
        stored = await store.get(ctx.task_id)
        assert stored is not None
        seen_in_store.append(stored.status.value)
        for i in range(1, 1001):
            ctx.progress(i / 10)
        return await work(ctx)

    engine = await make_engine(executor, store=store, progress_write_interval_s=0.05)
    task_id = await engine.add_task(make_task("busy-pull"))
    await work.started(task_id)
    # The coalesced progress reaches the database within a flush interval or so.
    await store.wait_until(lambda: (task_id, "downloading", 99.9) in store.saved)
    assert seen_in_store == ["downloading"]
    stored = await store.get(task_id)
    assert stored is not None
    assert stored.progress == 99.9

    work.release()
    await within(engine.wait_for(task_id))
    writes = [s for s in store.saved if s[0] == task_id]
    # pending, running, downloading, a flush or two of progress, completed; never one per update
    assert len(writes) <= 8, writes
    assert writes[-1] == (task_id, "completed", 100.0)
