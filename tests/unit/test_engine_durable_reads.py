"""Regression: a read could report a state whose write had not landed yet.

``wait_for`` returned a task that was "completed" in memory while the completion was still
being written; a query of the store right after it did not find the task completed, and a
crash at that moment would have lost what the client had been told.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from queue_helpers import Work, make_task, within

from ai_admin.queue.models import DockerTask, TaskStatus
from ai_admin.queue.sqlite_store import SqliteStore
from ai_admin.queue.store import TaskQuery


class GatedStore(SqliteStore):
    """SQLite whose writes are reported durable only while the gate is open."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = asyncio.Event()
        self.gate.set()
        self.completion_issued = asyncio.Event()

    def save(self, tasks: Sequence[DockerTask], counters: Any = None) -> asyncio.Future[None]:
        if any(t.status is TaskStatus.COMPLETED for t in tasks):
            self.completion_issued.set()
        written = super().save(tasks, counters)

        async def reported() -> None:
            await written
            await self.gate.wait()

        return asyncio.ensure_future(reported())


async def test_reads_report_a_completion_only_once_it_is_durable(
    make_engine: Any, tmp_path: Path
) -> None:
    store = GatedStore(tmp_path / "q.db")
    work = Work()
    engine = await make_engine(work, store=store)
    task_id = await engine.add_task(make_task("slow-write"))
    await work.started(task_id)
    running = await within(engine.get_task(task_id))  # returns once "running" is durable
    assert running.status is TaskStatus.RUNNING

    store.gate.clear()
    work.release()
    await within(store.completion_issued.wait())  # completed in memory, not yet durable
    get = asyncio.ensure_future(engine.get_task(task_id))
    wait = asyncio.ensure_future(engine.wait_for(task_id))
    await asyncio.sleep(0.2)  # time enough for either to answer, were it going to
    assert not get.done()
    assert not wait.done()

    store.gate.set()
    for answer in await within(asyncio.gather(get, wait)):
        assert answer.status is TaskStatus.COMPLETED
    _, completed = await engine.list_tasks(TaskQuery(status=[TaskStatus.COMPLETED]))
    assert completed == 1
