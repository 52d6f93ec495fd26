"""The journal's invariant: a change is announced only once it is durable, in the order it was
made, and a task leaves memory only with its last write.

Driven directly, on a real SQLite store whose commits the test holds open (``HeldStore``): the
engine's own store commits within the same loop turn, too soon to look in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from pathlib import Path

import pytest
from queue_helpers import HeldStore, make_task, within

from ai_admin.queue.events import EventKind, Subscription, TaskEvent
from ai_admin.queue.journal import Journal
from ai_admin.queue.live import LiveTask
from ai_admin.queue.models import DockerTask, TaskStatus
from ai_admin.queue.sqlite_store import SqliteStore
from ai_admin.queue.stats import TaskClass


class Harness:
    """A journal over ``live``, recording which tasks it retired."""

    def __init__(self, store: HeldStore) -> None:
        self.store = store
        self.live: dict[str, LiveTask] = {}
        self.retired: list[str] = []
        self.journal = Journal(store, self.live, self._retire)

    def _retire(self, task: DockerTask) -> None:
        self.retired.append(task.id)
        self.live.pop(task.id, None)

    def add(self, task: DockerTask) -> DockerTask:
        self.live[task.id] = LiveTask(task)
        return task


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    store = HeldStore(SqliteStore(tmp_path / "q.db"))
    await store.open()
    yield Harness(store)
    store.release()
    await store.close()


def ready(sub: Subscription) -> list[TaskEvent]:
    return [e for e in sub.ready(100) if e is not None]


async def test_a_change_is_published_only_once_its_write_has_landed(harness: Harness) -> None:
    task = harness.add(make_task("a"))
    sub = harness.journal.subscribe()
    harness.store.hold()
    committed = harness.journal.commit_soon((task,))
    await harness.store.until_held_in(task.id, TaskStatus.PENDING)
    await asyncio.sleep(0.01)
    assert ready(sub) == []  # on its way, not durable: nobody has heard of it
    assert not committed.done()
    harness.store.release()
    await within(committed)
    [event] = ready(sub)
    assert (event.event, event.task_id, event.status) == (EventKind.STATUS, task.id, "pending")
    stored = await harness.store.get(task.id)
    assert stored is not None
    assert stored.status is TaskStatus.PENDING


async def test_changes_are_announced_in_the_order_they_were_made(harness: Harness) -> None:
    task = harness.add(make_task("a"))
    sub = harness.journal.subscribe(task.id)
    harness.store.hold()
    commits = []
    for status in (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.PAUSED):
        task.status = status
        commits.append(harness.journal.commit_soon((task,)))
    harness.store.release()
    await within(asyncio.gather(*commits))
    assert [e.status for e in ready(sub)] == ["pending", "running", "paused"]


async def test_a_failed_write_is_undone_and_never_announced(harness: Harness) -> None:
    task = harness.add(make_task("a"))
    sub = harness.journal.subscribe()
    undone: list[str] = []
    await harness.store.close()  # every write now fails
    with pytest.raises(Exception, match="not open"):
        await within(harness.journal.commit(task, undo=lambda: undone.append(task.id)))
    assert undone == [task.id]
    assert ready(sub) == []


async def test_an_engine_move_whose_write_failed_is_written_again_by_the_flusher(
    tmp_path: Path,
) -> None:
    store = FlakyStore(SqliteStore(tmp_path / "q.db"))
    await store.open()
    harness = Harness(store)  # type: ignore[arg-type]
    task = harness.add(make_task("a"))
    sub = harness.journal.subscribe()
    store.failing = True
    with pytest.raises(OSError, match="disk I/O"):
        await within(harness.journal.commit(task))  # no undo: kept in memory
    assert harness.journal.unwritten(task.id)
    assert ready(sub) == []
    store.failing = False
    await within(harness.journal.flush())
    await within(harness.journal.landing(task.id))
    assert not harness.journal.unwritten(task.id)
    assert [e.status for e in ready(sub)] == ["pending"]
    assert await store.get(task.id) is not None
    await store.close()


async def test_only_the_last_write_retires_a_finished_task(harness: Harness) -> None:
    task = harness.add(make_task("a"))
    harness.store.hold()
    task.status = TaskStatus.FAILED
    writes = [harness.journal.commit_soon((task,))]
    task.status = TaskStatus.PENDING  # retried, then cancelled, before the first write landed
    writes.append(harness.journal.commit_soon((task,)))
    task.status = TaskStatus.CANCELLED
    writes.append(harness.journal.commit_soon((task,)))
    assert harness.retired == []
    harness.store.release()
    await within(asyncio.gather(*writes))
    assert harness.retired == [task.id]  # once, with the write that holds its final state
    stored = await harness.store.get(task.id)
    assert stored is not None
    assert stored.status is TaskStatus.CANCELLED


async def test_landing_waits_for_the_tasks_last_write(harness: Harness) -> None:
    task = harness.add(make_task("a"))
    harness.store.hold()
    harness.journal.commit_soon((task,))
    landing = asyncio.ensure_future(harness.journal.landing(task.id))
    await asyncio.sleep(0.01)
    assert not landing.done()
    harness.store.release()
    await within(landing)
    assert harness.live[task.id].last_write is None


async def test_progress_waits_for_the_running_state_to_be_announced(harness: Harness) -> None:
    task = harness.add(make_task("a"))
    sub = harness.journal.subscribe()
    harness.store.hold()
    task.status = TaskStatus.RUNNING
    running = harness.journal.commit_soon((task,))
    harness.journal.hold(harness.live[task.id], running)
    task.progress = 10.0
    harness.journal.changed(task, EventKind.PROGRESS, None)
    harness.journal.changed(task, EventKind.LOG, "a line")
    await asyncio.sleep(0.01)
    assert ready(sub) == []
    harness.store.release()
    await within(running)
    events = ready(sub)
    assert [(e.event, e.line) for e in events] == [
        (EventKind.STATUS, None),
        (EventKind.PROGRESS, None),
        (EventKind.LOG, "a line"),
    ]
    harness.journal.changed(task, EventKind.PROGRESS, None)  # from now on, at once
    assert [e.event for e in ready(sub)] == [EventKind.PROGRESS]


async def test_progress_is_written_with_the_next_flush(harness: Harness) -> None:
    task = harness.add(make_task("a"))
    await within(harness.journal.commit(task))
    task.progress = 42.0
    harness.journal.changed(task, EventKind.PROGRESS, None)
    stored = await harness.store.get(task.id)
    assert stored is not None
    assert stored.progress == 0.0
    await within(harness.journal.flush())
    stored = await harness.store.get(task.id)
    assert stored is not None
    assert stored.progress == 42.0


async def test_the_gauges_follow_each_written_class(harness: Harness) -> None:
    task = harness.add(make_task("a"))
    await within(harness.journal.commit(task))
    assert dict(harness.journal.stats.gauges) == {TaskClass.of(task): 1}
    task.status = TaskStatus.RUNNING
    await within(harness.journal.commit(task))
    assert dict(harness.journal.stats.gauges) == {TaskClass.of(task): 1}
    assert harness.live[task.id].counted == TaskClass.of(task)


class FlakyStore(HeldStore):
    """A store whose saves fail while ``failing`` is set."""

    failing = False

    def save(
        self, tasks: Sequence[DockerTask], counters: Mapping[str, float] | None = None
    ) -> Awaitable[None]:
        if self.failing:
            raise OSError("disk I/O error")
        return super().save(tasks, counters)
