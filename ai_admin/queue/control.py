"""Control actions on one task (pause, resume, cancel, retry), safe to send concurrently, and
on whole queues (pause, resume, create, configure, delete, clear, new run-time settings).

An action decides on a *settled* task: its last write has landed (or been undone) and no run
of it is stopping or recording an outcome. The decision and the change happen with no
``await`` in between, so actions sent together apply one after the other, each to the outcome
of the one before, and one that no longer fits is refused by the state machine with its 409
code. Each accepted action answers with the state it made, once that state is durable; if its
write fails, memory goes back to what the store holds and the store's error is raised. (A
pause or cancel of a running task has stopped it before its outcome is written: if that write
fails, the error is raised too, and the outcome is written as soon as the store takes it.)
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from ai_admin.config import DEFAULT_QUEUE, QueueSettings, Settings
from ai_admin.errors import (
    AiAdminError,
    ErrorCode,
    InvalidParams,
    QueueShuttingDown,
    TaskNotFound,
    TransitionNotAllowed,
)
from ai_admin.queue.events import Change, ObjectEvent, Subject
from ai_admin.queue.lanes import QueueView
from ai_admin.queue.live import LiveTask
from ai_admin.queue.memory import TaskMemory
from ai_admin.queue.models import DockerTask, TaskStatus
from ai_admin.queue.pause import Durable
from ai_admin.queue.runs import Run, Stop
from ai_admin.queue.secrets import holds_secrets
from ai_admin.queue.states import Action, check_action
from ai_admin.queue.stats import TaskClass

QUEUE_RECORD = "queue"  # a queue made or changed at run time: its own limits


class TaskControl(TaskMemory):
    async def start(self) -> None:
        """Provided by the engine: open the store and recover, once."""
        raise NotImplementedError

    async def pause_task(self, task_id: str) -> DockerTask:
        """A waiting task is held; a running one is stopped and runs again on resume."""
        task = await self._decide(task_id, Action.PAUSE)
        if run := self._running.get(task_id):
            return await self._stop_run(run, Stop.PAUSE)
        return await self._change(task, _hold)

    async def resume_task(self, task_id: str) -> DockerTask:
        """A held task waits in the queue again, in its old place."""
        task = await self._decide(task_id, Action.RESUME)
        return await self._change(task, _release, enqueue=True)

    async def cancel_task(self, task_id: str) -> DockerTask:
        """A waiting or held task ends; a running one is stopped first."""
        task = await self._decide(task_id, Action.CANCEL)
        if run := self._running.get(task_id):
            return await self._stop_run(run, Stop.CANCEL)
        return await self._change(task, _cancel, count="cancelled")

    async def retry_task(self, task_id: str, *, force: bool = False) -> DockerTask:
        """A failed, cancelled or timed-out task waits in the queue again; ``force``
        goes past its ``max_retries``, not past lost credentials."""
        task = await self._decide(task_id, Action.RETRY, force=True)  # its status
        waiting: set[str] = set()
        while task.depends_on:  # until what it waits for is known with no await since
            waiting, failed = await self._dependencies_now(task)
            if failed is not None:
                raise TransitionNotAllowed(
                    f"Task {task_id} depends on task {failed.id}, which ended "
                    f"{failed.status.value}: retry that task first.",
                    code=ErrorCode.QUEUE_DEPENDENCY_FAILED,
                    details={"task_id": task_id, "dependency": failed.id, "action": "retry"},
                )
            task = await self._decide(task_id, Action.RETRY, force=True)
            if all(self._unfinished(d) for d in waiting):
                break
        self._check_credentials(task)  # the reason no force can overcome comes first
        check_action(task, Action.RETRY, force=force)  # and its retry limit
        if self._closing:
            raise QueueShuttingDown("The agent is shutting down and takes no new work.")
        self._check_capacity(self._lanes.lane(task.queue))

        def requeue(task: DockerTask) -> None:
            self._requeue(task)
            if waiting:
                self._wait_on(self._live[task.id], waiting)

        return await self._change(task, requeue, count="retried", enqueue=True)

    async def _settled(self, task_id: str) -> DockerTask:
        """The task once nothing is in flight for it: its last write has landed (or been
        undone) and no run of it is stopping or recording an outcome. Live, else stored.

        While an action waits here the scheduler does not start the task, so what the action
        decides applies to the task as the client last saw it settle."""
        self._deciding[task_id] += 1
        try:
            while True:
                record = self._live.get(task_id)
                if record is not None and record.last_write is not None:
                    await self._journal.landing(task_id)
                    continue
                run = self._running.get(task_id) or self._finishing.get(task_id)
                if run is not None and run.settling:
                    await run.done.wait()
                    continue
                if record is not None:
                    return record.task
                stored = await self._store.get(task_id)
                if task_id in self._live:  # a retry brought it back meanwhile
                    continue
                if stored is None:
                    raise TaskNotFound(task_id)
                return stored
        finally:
            self._deciding[task_id] -= 1
            if not self._deciding[task_id]:
                del self._deciding[task_id]
                self._wakeup.set()

    async def _decide(self, task_id: str, action: Action, *, force: bool = False) -> DockerTask:
        """The settled task, if ``action`` may be applied to it. The caller applies the action
        with no ``await`` in between, so the check still holds when it does."""
        await self.start()
        task = await self._settled(task_id)
        check_action(task, action, force=force)
        return task

    async def _change(
        self,
        task: DockerTask,
        change: Callable[[DockerTask], None],
        *,
        count: str | None = None,
        enqueue: bool = False,
    ) -> DockerTask:
        """Apply an action's change to a settled task and commit it; returns the state the
        action made. If the write fails, memory goes back to the stored state and the store's
        error is raised."""
        before = task.model_copy(deep=True)
        record = self._live.get(task.id)
        live = record is not None and record.task is task
        if not live:  # a finished task comes back to memory here, and only here
            self._live[task.id] = LiveTask.counted_as_is(task)
        self._dequeue(task)
        change(task)
        if count is not None:
            self._stats.count(count)
        made = task.model_copy(deep=True)
        then = partial(self._enqueue, task, keep_seq=True) if enqueue else None
        undo = partial(self._undo, task, before, live, count)
        await self._journal.commit(task, then=then, undo=undo)
        return made

    def _undo(self, task: DockerTask, before: DockerTask, live: bool, count: str | None) -> None:
        """An action's write failed: memory goes back to what the store holds."""
        self._dequeue(task)
        made = TaskClass.of(task)
        for name in DockerTask.model_fields:
            setattr(task, name, getattr(before, name))
        self._stats.move(made, TaskClass.of(task))
        if live:
            self._live[task.id].counted = TaskClass.of(task)
            self._enqueue(task, keep_seq=True)  # waiting again, in its place, if it was
        else:
            self._live.pop(task.id, None)
        if count is not None:
            self._journal.uncount(count)

    def _check_credentials(self, task: DockerTask) -> None:
        if holds_secrets(task.params) and task.id not in self._secrets:
            raise TransitionNotAllowed(
                f"Task {task.id} was submitted with credentials that were lost when the agent "
                "restarted; it cannot run again without them.",
                code=ErrorCode.QUEUE_CREDENTIALS_LOST,
                details={"task_id": task.id, "status": task.status.value, "action": "retry"},
            )

    def _requeue(self, task: DockerTask) -> None:
        task.retry_count += 1
        task.status = TaskStatus.PENDING
        task.current_step = f"Retry {task.retry_count} requested; waiting in the queue"
        task.queued_at = time.time()
        task.next_attempt_at = task.completed_at = task.duration_s = None
        self._seq += 1
        task.seq = self._seq
        self._live[task.id].merge_key = self._merge_key(task, self._secrets.get(task.id))

    async def _stop_run(self, run: Run, reason: Stop) -> DockerTask:
        """Stop a settled running task; once its outcome is recorded, the state it recorded."""
        stopping = run.request_stop(reason)
        assert stopping, "a settled run is neither stopping nor finishing"
        await run.done.wait()
        if run.error is not None:
            raise run.error
        assert run.final is not None
        return run.final

    # -- whole queues ----------------------------------------------------------------------------

    def pause_queue(self, name: str = DEFAULT_QUEUE) -> Awaitable[None]:
        """Nothing new starts in the queue (at once); running tasks finish. The pause is kept
        across restarts: await the result to know it is durable (called before ``start``, it is
        written when the store opens; awaiting it opens the store)."""
        return self._set_pause(name, True)

    def resume_queue(self, name: str = DEFAULT_QUEUE) -> Awaitable[None]:
        """The queue's waiting tasks start again (at once); await the result to know it is
        durable."""
        return self._set_pause(name, False)

    def _set_pause(self, name: str, paused: bool) -> Durable:
        """The pause set now; a change is announced (``queue_paused``, ``queue_resumed``) once
        it is durable."""
        pause = self._lanes.lane(name).pause
        changed = pause.paused != paused
        written = pause.set(paused)
        if changed and isinstance(written, asyncio.Future):
            change = Change.PAUSED if paused else Change.RESUMED

            def announce(write: asyncio.Future[None]) -> None:
                if not write.cancelled() and write.exception() is None:
                    self._queue_changed(name, change)

            written.add_done_callback(announce)
        return Durable(self.start, written)

    def _queue_changed(self, name: str, change: Change) -> None:
        self._journal.events.publish(ObjectEvent.of(Subject.QUEUE, name, change))

    @property
    def paused(self) -> bool:
        """Whether the queue ``default`` is paused."""
        return self._pause.paused

    def queue_view(self, name: str = DEFAULT_QUEUE) -> QueueView:
        lane = self._lanes.lane(name)
        return lane.view(self.settings, live=self._live.per_queue[name])

    def queue_views(self) -> list[QueueView]:
        """Every queue, ``default`` first, then by name."""
        return [
            lane.view(self.settings, self._live.per_queue[lane.name])
            for lane in self._lanes.lanes()
        ]

    async def create_queue(self, name: str, limits: QueueSettings) -> QueueView:
        """A new named queue with its own limits."""
        await self.start()
        if self._lanes.get(name) is not None:
            raise AiAdminError(
                f"A queue named {name!r} exists already.",
                code=ErrorCode.QUEUE_ALREADY_EXISTS,
                details={"queue": name},
            )
        await self._store.save_record(QUEUE_RECORD, name, _own(limits))
        lane = self._lanes.add_lane(name, limits)
        await lane.pause.load(self._store)
        self._queue_changed(name, Change.CREATED)
        return self.queue_view(name)

    async def configure_queue(self, name: str, limits: QueueSettings) -> QueueView:
        """Change the limits a queue sets itself (those given; the others stay as they are)."""
        await self.start()
        lane = self._lanes.lane(name)
        own = lane.own.model_copy(update=limits.model_dump(exclude_unset=True))
        await self._store.save_record(QUEUE_RECORD, name, _own(own))
        lane.own = own
        self._wakeup.set()
        self._queue_changed(name, Change.CONFIGURED)
        return self.queue_view(name)

    async def delete_queue(self, name: str) -> None:
        """Remove a queue that holds no unfinished task (``default`` always stays)."""
        await self.start()
        lane = self._lanes.lane(name)
        if name == DEFAULT_QUEUE:
            raise InvalidParams("The queue 'default' cannot be deleted.", details={"queue": name})
        unfinished = self._live.per_queue[name]
        if unfinished:
            raise TransitionNotAllowed(
                f"The queue {name!r} still holds {unfinished} unfinished task(s).",
                code=ErrorCode.QUEUE_NOT_EMPTY,
                details={"queue": name, "unfinished": unfinished},
            )
        await lane.pause.set(False)  # no flag of it is left behind
        await self._store.save_record(QUEUE_RECORD, name, None)
        self._lanes.remove_lane(name)
        self._queue_changed(name, Change.DELETED)

    async def _load_queues(self) -> None:
        """The queues made or changed at run time (they win over the configuration file)."""
        for name, own in (await self._store.load_records(QUEUE_RECORD)).items():
            self._lanes.add_lane(name, QueueSettings.model_validate(own))

    async def clear(self, *, include_failed: bool = False, queue: str | None = None) -> int:
        """Delete finished tasks (completed and merged; also failed, cancelled and timed-out
        ones with ``include_failed``), of ``queue`` or of every queue. Returns how many were
        deleted."""
        await self.start()
        statuses = {TaskStatus.COMPLETED, TaskStatus.MERGED}
        if include_failed:
            statuses |= {TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMEOUT}
        deleted = await self._store.delete(statuses, queue)
        await self._settle_deleted()
        return deleted

    async def delete_finished(
        self, *, ended_before_s: float | None = None, keep_newest: int | None = None
    ) -> int:
        """Retention's delete (``QueueStore.delete_finished``: never a live task), with what
        the engine kept of the deleted tasks. Returns how many were deleted."""
        await self.start()
        deleted = await self._store.delete_finished(
            ended_before_s=ended_before_s, keep_newest=keep_newest
        )
        if deleted:
            await self._settle_deleted()
        return deleted

    async def _settle_deleted(self) -> None:
        """After finished tasks were deleted from the store: the credentials kept for a manual
        retry of those of them that failed go too, and the stored tasks are counted again."""
        for task_id in [k for k in self._secrets if k not in self._live]:
            if await self._store.get(task_id) is None:
                self._secrets.pop(task_id, None)
        # The store counts as of the saves issued so far; what moves while it counts is added.
        before = Counter(self._stats.gauges)
        counts = Counter(await self._store.class_counts())
        counts.update(self._stats.gauges)
        counts.subtract(before)
        self._stats.gauges.clear()
        self._stats.gauges.update(+counts)

    def reconfigure(self, settings: Settings) -> None:
        """Apply new run-time settings (concurrency, limits, retry policy) at once."""
        self.settings = settings
        self._wakeup.set()


def _own(limits: QueueSettings) -> dict[str, Any]:
    return limits.model_dump(exclude_none=True)


def _hold(task: DockerTask) -> None:
    task.status = TaskStatus.PAUSED
    task.current_step = TaskStatus.PAUSED.description
    task.paused_from = TaskStatus.PENDING


def _release(task: DockerTask) -> None:
    task.status = TaskStatus.PENDING
    task.current_step = "Resumed; waiting in the queue"
    task.paused_from = None


def _cancel(task: DockerTask) -> None:
    task.status = TaskStatus.CANCELLED
    task.current_step = TaskStatus.CANCELLED.description
    task.completed_at = time.time()
