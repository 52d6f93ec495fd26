"""The engine's side of batches: submitting one, the actions on it, its status, and moving each
queue's line on when a batch finishes (see ``batches`` for the rules).

Batch changes are made one at a time (a lock), each written to the store before it is answered
(the record of kind ``batch``); a task's own changes go through the journal as always. The
tasks of a batch that may not start yet are held out of their queue's run order, as a task
waiting for its dependencies is.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from ai_admin.config import DEFAULT_QUEUE
from ai_admin.errors import AiAdminError, QueueFull, TransitionNotAllowed
from ai_admin.queue.batches import (
    Batch,
    BatchState,
    batch_not_found,
    end_state,
    next_to_promote,
    not_allowed,
    overall_progress,
    place_at,
    waiting_line,
)
from ai_admin.queue.dependencies import invalid
from ai_admin.queue.events import Change, ObjectEvent, Subject
from ai_admin.queue.models import DockerTask, TaskStatus, new_task_id
from ai_admin.queue.reading import QueueReading

if TYPE_CHECKING:
    from ai_admin.queue.engine import Submission

RECORD = "batch"


@dataclass(frozen=True, slots=True)
class BatchSubmission:
    batch_id: str
    task_ids: list[str]
    state: BatchState


class BatchView(BaseModel):
    """A batch as clients see it."""

    batch_id: str
    name: str | None
    queue: str
    serial: bool
    state: BatchState
    position: int | None = Field(
        description="1 for the batch its queue runs next; null unless it waits in line."
    )
    progress: float = Field(
        description="0-100 over all its tasks, weighted by bytes where known; never goes back."
    )
    counts: dict[str, int] = Field(description="Its tasks by status.")
    task_ids: list[str] = Field(description="In the order they were given.")
    created_at: float
    started_at: float | None
    finished_at: float | None


class BatchControl(QueueReading):
    async def submit(self, task: DockerTask) -> Submission:
        """Provided by the engine."""
        raise NotImplementedError

    # -- submit ----------------------------------------------------------------------------------

    async def submit_batch(
        self,
        tasks: Sequence[DockerTask],
        *,
        name: str | None = None,
        queue: str = DEFAULT_QUEUE,
        serial: bool = True,
    ) -> BatchSubmission:
        """Submit ``tasks`` as one batch in ``queue``. A task may depend on earlier tasks of
        the batch (by their ids) and on tasks that exist. Nothing is submitted if one of them
        is refused."""
        await self.start()
        lane = self._lanes.lane(queue)
        batch_id = new_task_id()
        ids = [t.id for t in tasks]
        for index, task in enumerate(tasks):
            task.queue, task.batch_id = queue, batch_id
            for dependency in task.depends_on:
                if dependency in ids[index:]:
                    raise invalid(
                        task, dependency, "a batch's task may only depend on earlier ones"
                    )
                if dependency not in ids and await self._dependency(task, dependency) is None:
                    raise invalid(task, dependency, "no task has this id")
        waiting = self._live.per_queue[queue] - lane.busy
        limit = int(lane.limit("max_queue_size", self.settings))
        if waiting + len(tasks) > limit:
            raise QueueFull(
                f"The queue {queue!r} holds {waiting} waiting tasks; {len(tasks)} more would "
                f"pass its max_queue_size of {limit}.",
                details={"queue": queue, "waiting": waiting, "max_queue_size": limit},
            )
        async with self._batch_lock:
            places = [b.place for b in self._batches.values() if b.queue == queue]
            batch = Batch(
                batch_id=batch_id,
                name=name,
                queue=queue,
                serial=serial,
                state=BatchState.QUEUED if serial else BatchState.RUNNING,
                task_ids=ids,
                place=max(places, default=0.0) + 1.0,
            )
            if not serial:
                batch.started_at = batch.created_at
            await self._save_batch(batch, Change.CREATED)  # first: its tasks name it
            self._batches[batch_id] = batch
            submitted: list[str] = []
            try:
                for task in tasks:
                    submitted.append((await self.submit(task)).task_id)
            except BaseException:
                await self._undo_batch(batch, submitted)
                raise
            await self._promote(queue)
            await self._settle(batch)
        return BatchSubmission(batch_id, ids, batch.state)

    async def _undo_batch(self, batch: Batch, submitted: list[str]) -> None:
        """A task of a new batch was refused: what was submitted of it is cancelled."""
        self._batches.pop(batch.batch_id, None)
        await self._store.save_record(RECORD, batch.batch_id, None)
        for task_id in submitted:
            with contextlib.suppress(AiAdminError):  # finished, or merged
                await self.cancel_task(task_id)

    # -- reading ---------------------------------------------------------------------------------

    def batch(self, batch_id: str) -> Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise batch_not_found(batch_id)
        return batch

    async def batch_status(self, batch_id: str) -> BatchView:
        await self.start()
        return await self._view(self.batch(batch_id))

    async def batch_views(self, queue: str | None = None) -> list[BatchView]:
        """Every batch (of ``queue``), newest first."""
        await self.start()
        batches = [b for b in self._batches.values() if queue is None or b.queue == queue]
        batches.sort(key=lambda b: b.created_at, reverse=True)
        return [await self._view(b) for b in batches]

    async def wait_for_batch(self, batch_id: str, timeout_s: float | None = None) -> BatchView:
        """Wait until the batch has finished (completed, failed or cancelled); its status."""
        await self.start()
        batch = self.batch(batch_id)
        if not batch.state.is_finished:
            ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiters = self._batch_waiters.setdefault(batch_id, [])
            waiters.append(ended)
            try:
                async with asyncio.timeout(timeout_s):
                    await ended
            finally:
                if ended in waiters:
                    waiters.remove(ended)
        return await self._view(batch)

    async def _view(self, batch: Batch) -> BatchView:
        if batch.state.is_finished:  # its counts only: read from the status column
            statuses = await self._statuses(batch)
            batch.progress = 100.0
        else:  # its progress too, weighted by the tasks' bytes
            tasks = await self._batch_tasks(batch)
            statuses = [t.status for t in tasks]
            batch.progress = max(batch.progress, overall_progress(tasks))
        line = waiting_line(self._batches.values(), batch.queue) if batch.waits else None
        return BatchView(
            batch_id=batch.batch_id,
            name=batch.name,
            queue=batch.queue,
            serial=batch.serial,
            state=batch.state,
            position=None if line is None else line.index(batch) + 1,
            progress=batch.progress,
            counts=dict(Counter(status.value for status in statuses)),
            task_ids=list(batch.task_ids),
            created_at=batch.created_at,
            started_at=batch.started_at,
            finished_at=batch.finished_at,
        )

    async def _statuses(self, batch: Batch) -> list[TaskStatus]:
        """Its tasks' statuses: the live ones' from memory, the others' in one read."""
        live = {t: record.task.status for t in batch.task_ids if (record := self._live.get(t))}
        stored = await self._store.statuses([t for t in batch.task_ids if t not in live])
        return [s for t in batch.task_ids if (s := live.get(t) or stored.get(t)) is not None]

    async def _batch_tasks(self, batch: Batch) -> list[DockerTask]:
        tasks = []
        for task_id in batch.task_ids:
            record = self._live.get(task_id)
            task = record.task if record is not None else await self._store.get(task_id)
            if task is not None:
                tasks.append(task)
        return tasks

    # -- actions ---------------------------------------------------------------------------------

    async def stop_batch(self, batch_id: str) -> BatchView:
        """Its running tasks finish; none of its others starts until it is started again."""
        await self.start()
        async with self._batch_lock:
            batch = self.batch(batch_id)
            if batch.state not in (BatchState.QUEUED, BatchState.RUNNING):
                raise not_allowed(batch, "stop", "only a queued or running batch can be stopped")
            batch.state = BatchState.STOPPED
            for task_id in batch.task_ids:
                record = self._live.get(task_id)
                if record is not None and record.task.status is TaskStatus.PENDING:
                    self._dequeue(record.task)
            await self._save_batch(batch, Change.STOPPED)
            return await self._view(batch)

    async def start_batch(self, batch_id: str) -> BatchView:
        """A stopped batch goes on (a serial one when its turn comes: at once if it heads its
        queue's line)."""
        await self.start()
        async with self._batch_lock:
            batch = self.batch(batch_id)
            if batch.state is not BatchState.STOPPED:
                raise not_allowed(batch, "start", "only a stopped batch can be started")
            if batch.serial:
                batch.state = BatchState.QUEUED
                await self._save_batch(batch, Change.RESUMED)
                await self._promote(batch.queue)
            else:
                await self._run_batch(batch)
            return await self._view(batch)

    async def move_batch(self, batch_id: str, position: int) -> BatchView:
        """Put a waiting serial batch at ``position`` (1: next) of its queue's line."""
        await self.start()
        async with self._batch_lock:
            batch = self.batch(batch_id)
            if not batch.waits:
                raise not_allowed(batch, "move", "only a serial batch waiting in line can move")
            line = waiting_line(self._batches.values(), batch.queue)
            batch.place = place_at(line, batch, position)
            await self._save_batch(batch, Change.MOVED)
            await self._promote(batch.queue)
            return await self._view(batch)

    async def cancel_batch(self, batch_id: str) -> BatchView:
        """Cancel every unfinished task of the batch; it ends cancelled."""
        await self.start()
        async with self._batch_lock:
            batch = self.batch(batch_id)
            if batch.state.is_finished:
                raise not_allowed(batch, "cancel", "it has already finished")
            batch.cancelled = True
            await self._save_batch(batch, None)
        await self._cancel_tasks(batch)
        async with self._batch_lock:
            await self._settle(batch)
            return await self._view(batch)

    async def remove_batch(self, batch_id: str) -> None:
        """Forget a batch that is not running (its unfinished tasks are cancelled; its tasks'
        history stays)."""
        await self.start()
        async with self._batch_lock:
            batch = self.batch(batch_id)
            if batch.state is BatchState.RUNNING:
                raise not_allowed(batch, "remove", "stop or cancel it first")
            del self._batches[batch_id]
            await self._store.save_record(RECORD, batch_id, None)
            self._batch_changed(batch, Change.DELETED)
            for waiter in self._batch_waiters.pop(batch_id, []):
                if not waiter.done():
                    waiter.set_exception(batch_not_found(batch_id))
        await self._cancel_tasks(batch)
        async with self._batch_lock:
            await self._promote(batch.queue)

    async def _cancel_tasks(self, batch: Batch) -> None:
        for task_id in batch.task_ids:
            if task_id in self._live:
                with contextlib.suppress(TransitionNotAllowed):  # it finished meanwhile
                    await self.cancel_task(task_id)

    # -- moving on -------------------------------------------------------------------------------

    async def _load_batches(self) -> None:
        """At start-up, before the tasks are recovered: which of them may start."""
        for batch_id, doc in (await self._store.load_records(RECORD)).items():
            self._batches[batch_id] = Batch.model_validate(doc)

    async def _after_recovery(self) -> None:
        """Batches whose last task ended while the agent was down end now; lines move on."""
        async with self._batch_lock:
            for batch in list(self._batches.values()):
                await self._settle(batch)
            for queue in {b.queue for b in self._batches.values()}:
                await self._promote(queue)

    def _batch_task_ended(self, batch_id: str) -> None:
        batch = self._batches.get(batch_id)
        if batch is None or any(t in self._live for t in batch.task_ids):
            return
        job = asyncio.ensure_future(self._settle_and_promote(batch))
        self._batch_jobs.add(job)
        job.add_done_callback(self._batch_jobs.discard)

    async def _settle_and_promote(self, batch: Batch) -> None:
        async with self._batch_lock:
            if await self._settle(batch):
                await self._promote(batch.queue)

    async def _settle(self, batch: Batch) -> bool:
        """End the batch once every task of it has finished (a finished batch whose task was
        retried takes the new outcome); True if it ended now."""
        if any(t in self._live for t in batch.task_ids):
            return False
        if batch.state is BatchState.QUEUED and not batch.cancelled:
            return False  # its turn has not come: its tasks wait, they have not ended
        ended_before = batch.state.is_finished
        state = end_state(batch, await self._statuses(batch))
        if ended_before and state is batch.state:
            return False
        batch.state = state
        batch.finished_at = time.time()
        batch.progress = 100.0
        await self._save_batch(batch, Change.FINISHED)
        for waiter in self._batch_waiters.pop(batch.batch_id, []):
            if not waiter.done():
                waiter.set_result(None)
        return not ended_before

    async def _promote(self, queue: str) -> None:
        """Start the next serial batch of ``queue`` if its line lets one start."""
        while (batch := next_to_promote(list(self._batches.values()), queue)) is not None:
            await self._run_batch(batch)
            if not await self._settle(batch):  # a batch whose tasks all ended at submit
                return

    async def _run_batch(self, batch: Batch) -> None:
        batch.state = BatchState.RUNNING
        batch.started_at = batch.started_at or time.time()
        await self._save_batch(batch, Change.STARTED)
        for task_id in batch.task_ids:
            record = self._live.get(task_id)
            if record is not None:
                self._enqueue(record.task, keep_seq=True)

    async def _save_batch(self, batch: Batch, change: Change | None) -> None:
        """Make the batch's new state durable, then announce ``change`` (if any)."""
        await self._store.save_record(RECORD, batch.batch_id, batch.model_dump(mode="json"))
        if change is not None:
            self._batch_changed(batch, change)

    def _batch_changed(self, batch: Batch, change: Change) -> None:
        self._journal.events.publish(
            ObjectEvent.of(
                Subject.BATCH,
                batch.batch_id,
                change,
                state=batch.state.value,
                queue=batch.queue,
                name=batch.name,
            )
        )
