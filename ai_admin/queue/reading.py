"""Reading the queue: tasks as last committed, positions, listings, statistics, subscriptions,
and waiting for a task's end or for the queue to go idle."""

from __future__ import annotations

import asyncio
from typing import Any

from ai_admin.errors import TaskNotFound
from ai_admin.queue.control import TaskControl
from ai_admin.queue.events import EventBus, Subscription
from ai_admin.queue.models import DockerTask, TaskStatus
from ai_admin.queue.stats import QueueStats
from ai_admin.queue.stats_views import queue_statistics
from ai_admin.queue.store import TaskQuery
from ai_admin.queue.views import task_summary

_SET_ASIDE_SHOWN = 20  # in queue_status; the log and the set_aside table hold them all


class QueueReading(TaskControl):
    async def get_task(self, task_id: str) -> DockerTask | None:
        """The task as last committed: a live task is returned once its last write is durable."""
        await self.start()
        await self._journal.landing(task_id)
        return await self._lookup(task_id)

    async def require_task(self, task_id: str) -> DockerTask:
        task = await self.get_task(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    def queue_position(self, task: DockerTask) -> int | None:
        """1 for the task that runs next; None unless the task is waiting in the ready queue."""
        if task.status is not TaskStatus.PENDING:
            return None
        return self._lanes.position(task.priority, task.seq)

    def pending_tasks(self) -> list[DockerTask]:
        """Waiting tasks in the order they will run."""
        return [self._live[i].task for i in self._lanes]

    def running_tasks(self) -> list[DockerTask]:
        return [r.task for r in self._running.values()]

    def paused_tasks(self) -> list[DockerTask]:
        return [r.task for r in self._live.values() if r.task.status is TaskStatus.PAUSED]

    async def list_tasks(self, query: TaskQuery) -> tuple[list[DockerTask], int]:
        await self.start()
        tasks, total = await self._store.list_tasks(query)
        return [r.task if (r := self._live.get(t.id)) else t for t in tasks], total

    async def get_task_summary(self, task_id: str) -> dict[str, Any]:
        """The detailed view as JSON: status, timing, error with advice, retry state,
        position, log (``views.TaskSummary``)."""
        task = await self.require_task(task_id)
        return task_summary(task, self.queue_position(task)).as_json()

    async def get_queue_stats(self) -> dict[str, Any]:
        """The statistics as JSON (``views.QueueStatistics``): an operator learns that stored
        tasks did not load (``set_aside``) without reading the log."""
        await self.start()
        view = queue_statistics(
            self._stats,
            max_concurrent=self.settings.max_concurrent,
            running=len(self._running),
            queue_size=len(self._lanes) + len(self._delayed),
            paused=self._pause.paused,
            accepting=not self._closing,
            set_aside=self._set_aside,
            set_aside_shown=_SET_ASIDE_SHOWN,
        )
        return view.as_json()

    @property
    def statistics(self) -> QueueStats:
        """The live counters and run-time histograms, read in place (for a metrics scrape,
        which wants what ``get_queue_stats`` leaves out: histograms, totals by type)."""
        return self._stats

    @property
    def events(self) -> EventBus:
        """The bus every change is announced on: task events (``subscribe``), and the changes
        of other things (batches, schedules) that ``events.watch()`` hands out with them."""
        return self._journal.events

    def subscribe(self, task_id: str | None = None) -> Subscription:
        """Every state, progress and log change from now on, in order."""
        return self._journal.subscribe(task_id)

    def end_subscriptions(self) -> None:
        """End every subscription (a server closing its event streams)."""
        self._journal.end_subscriptions()

    async def wait_for(self, task_id: str, timeout_s: float | None = None) -> DockerTask:
        """Wait until the task has finished (following a merge to its twin) and return it."""
        task = await self.require_task(task_id)
        if task.status is TaskStatus.MERGED and task.merged_into:
            return await self.wait_for(task.merged_into, timeout_s)
        record = self._live.get(task_id)
        if task.status.is_finished or record is None:  # (None: stored, never loaded to run)
            return task
        waiter: asyncio.Future[DockerTask] = asyncio.get_running_loop().create_future()
        waiters = record.waiters
        waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                return await waiter
        finally:
            if waiter in waiters:
                waiters.remove(waiter)

    async def join(self) -> None:
        """Wait until nothing runs and nothing is waiting to run (a paused queue counts as idle)."""
        await self.start()
        self._update_idle()
        await self._idle.wait()
