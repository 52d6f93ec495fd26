"""What the engine holds in memory, and how each change of it becomes durable.

Live tasks (not finished) are held in memory and are the source of truth while the agent runs.
Every state change is committed to the store before it is returned or published: a change is
made, then ``_commit_soon`` is called with no ``await`` in between; once the write lands the
state is published, and a task whose finished state that write holds leaves memory. A write
that fails is undone by whoever made the change (memory goes back to what the store holds) or,
for the engine's own moves, kept and written again. Only the task's *last* write may retire
it, so an action that moved it on meanwhile is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from loguru import logger

from ai_admin.config import Settings
from ai_admin.errors import QueueFull
from ai_admin.queue.events import EventBus, EventKind, TaskEvent
from ai_admin.queue.models import RETRYABLE_STATUSES, DockerTask, TaskStatus
from ai_admin.queue.ready import ReadyQueue
from ai_admin.queue.runs import Run
from ai_admin.queue.stats import QueueStats, TaskClass
from ai_admin.queue.store import QueueStore


class TaskMemory:
    def __init__(self, store: QueueStore, settings: Settings) -> None:
        self.settings = settings
        self._store = store
        self._tasks: dict[str, DockerTask] = {}
        self._counted: dict[str, TaskClass] = {}  # the class the gauges count a live task in
        self._last_write: dict[str, asyncio.Future[None]] = {}  # per live task, until landed
        self._unwritten: set[str] = set()  # live tasks whose last write failed: written again
        self._deciding: Counter[str] = Counter()  # actions waiting to decide: hold the launch
        self._secrets: dict[str, dict[str, Any]] = {}
        self._merge_keys: dict[str, str] = {}
        self._by_merge_key: dict[str, str] = {}
        self._ready = ReadyQueue()
        self._delayed: list[tuple[float, int, str]] = []
        self._running: dict[str, Run] = {}
        self._finishing: dict[str, Run] = {}  # slot freed, outcome still being written
        self._waiters: dict[str, list[asyncio.Future[DockerTask]]] = {}
        self._dirty: set[str] = set()
        self._stats = QueueStats()
        self._events = EventBus()
        self._seq = 0
        self._closing = False
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()

    # -- queueing --------------------------------------------------------------------------------

    def _enqueue(self, task: DockerTask, *, keep_seq: bool) -> None:
        """Put a pending task where the scheduler finds it: ready now, or after its backoff."""
        if (
            task.status is not TaskStatus.PENDING  # paused or cancelled meanwhile
            or self._tasks.get(task.id) is not task
            or task.seq in self._ready
        ):
            return
        if not keep_seq:
            self._seq += 1
            task.seq = self._seq
        key = self._merge_keys.get(task.id)
        if key is not None:
            self._by_merge_key.setdefault(key, task.id)
        if task.next_attempt_at is not None and task.next_attempt_at > time.time():
            heapq.heappush(self._delayed, (task.next_attempt_at, task.seq, task.id))
        else:
            task.next_attempt_at = None
            self._ready.add(task.priority, task.seq, task.id)
        self._idle.clear()
        self._wakeup.set()

    def _dequeue(self, task: DockerTask) -> None:
        """Take a task out of scheduling (paused, cancelled, finished); stale heap entries are
        skipped when they come due."""
        self._ready.remove(task.priority, task.seq)
        if task.next_attempt_at is not None and any(e[2] == task.id for e in self._delayed):
            # Held or cancelled in its backoff: nothing is waiting for that deadline any more.
            self._delayed = [e for e in self._delayed if e[2] != task.id]
            heapq.heapify(self._delayed)
            self._wakeup.set()
        key = self._merge_keys.get(task.id)
        if key is not None and self._by_merge_key.get(key) == task.id:
            del self._by_merge_key[key]

    def _check_capacity(self) -> None:
        # Running and finishing tasks are live (in _tasks) until their outcome is announced.
        waiting = len(self._tasks) - len(self._running) - len(self._finishing)
        limit = self.settings.max_queue_size
        if waiting >= limit:
            raise QueueFull(
                f"The queue already holds {waiting} waiting tasks (max_queue_size {limit}).",
                details={"waiting": waiting, "max_queue_size": limit},
            )

    # -- recording -------------------------------------------------------------------------------

    def _commit_soon(
        self,
        tasks: Sequence[DockerTask],
        *,
        then: Callable[[], None] | None = None,
        undo: Callable[[], None] | None = None,
    ) -> asyncio.Future[None]:
        """Start making the tasks' current state durable; writes land in call order.

        Every state change calls this with no ``await`` between the change and the call. Once
        the write lands the state is published (a task whose finished state it holds leaves
        memory) and ``then`` runs; if it fails, ``undo`` puts memory back to what the store
        holds (without one, an engine move is kept and the flusher writes it again). The
        result settles after that, with the write's error if any, so whoever waits for it
        sees the outcome applied, whether or not the caller is still there.
        """
        events = [TaskEvent.of(t, EventKind.STATUS) for t in tasks]
        for task in tasks:
            after = TaskClass.of(task)
            self._stats.move(self._counted.get(task.id), after)
            if task.id in self._tasks:
                self._counted[task.id] = after
            self._dirty.discard(task.id)
        loop = asyncio.get_running_loop()
        settled: asyncio.Future[None] = loop.create_future()
        write: asyncio.Future[None]
        try:
            write = asyncio.ensure_future(self._store.save(tasks, self._stats.counters))
        except Exception as exc:  # refused at once (a closed store)
            write = loop.create_future()
            write.set_exception(exc)
        # Readers and actions wait for the write itself (``_landing``), which no caller can
        # cancel; this callback is its first, so it has run by the time any of them wakes.
        write.add_done_callback(partial(self._landed, tasks, events, settled, then, undo))
        for task in tasks:
            if task.id in self._tasks:
                self._last_write[task.id] = write
        return settled

    def _landed(
        self,
        tasks: Sequence[DockerTask],
        events: list[TaskEvent],
        settled: asyncio.Future[None],
        then: Callable[[], None] | None,
        undo: Callable[[], None] | None,
        write: asyncio.Future[None],
    ) -> None:
        error = _error_of(write)
        try:
            if error is None:
                self._announce(tasks, events, write)
                if then is not None:
                    then()
            elif undo is not None:
                undo()
            else:
                self._keep_unwritten(tasks, error)
        finally:
            for task in tasks:
                if self._last_write.get(task.id) is write:
                    del self._last_write[task.id]
            if settled.done():  # its caller was cancelled; the outcome is applied all the same
                pass
            elif error is None:
                settled.set_result(None)
            else:
                settled.set_exception(error)
                settled.exception()  # retrieved: a caller that waits for it still gets it

    async def _commit(
        self,
        *tasks: DockerTask,
        then: Callable[[], None] | None = None,
        undo: Callable[[], None] | None = None,
    ) -> None:
        """Make the tasks' current state durable and publish it; raises the write's error.
        Cancelling the caller cancels only its wait: the outcome is applied all the same."""
        await self._commit_soon(tasks, then=then, undo=undo)

    def _announce(
        self,
        tasks: Sequence[DockerTask],
        events: list[TaskEvent],
        write: asyncio.Future[None],
    ) -> None:
        for task, event in zip(tasks, events, strict=True):
            self._unwritten.discard(task.id)  # this write holds everything a failed one had
            self._events.publish(event)
            # Only the task's last write may retire it: an action may have moved it since.
            if task.status.is_finished and self._last_write.get(task.id, write) is write:
                self._forget(task)

    async def _landing(self, task_id: str) -> None:
        """Wait until the task's writes have landed and their outcome has been applied
        (published, or undone): then memory holds nothing the store does not."""
        while (write := self._last_write.get(task_id)) is not None:
            if write.done():  # its callback is already queued: let it run
                await asyncio.sleep(0)
            else:
                await asyncio.wait([write])

    def _keep_unwritten(self, tasks: Sequence[DockerTask], error: BaseException) -> None:
        for task in tasks:
            if task.id in self._tasks and task.id not in self._unwritten:
                logger.error(
                    "could not record task {} ({}); it is written again once the store accepts "
                    "it: {}",
                    task.id,
                    task.status.value,
                    error,
                )
                self._unwritten.add(task.id)

    def _forget(self, task: DockerTask) -> None:
        """A finished task leaves memory; the store keeps it."""
        if self._tasks.get(task.id, task) is not task:  # a newer copy is live
            return
        self._dequeue(task)
        self._tasks.pop(task.id, None)
        self._counted.pop(task.id, None)
        self._last_write.pop(task.id, None)
        self._merge_keys.pop(task.id, None)
        self._unwritten.discard(task.id)
        if task.status not in RETRYABLE_STATUSES:  # a manual retry still needs the credentials
            self._secrets.pop(task.id, None)
        for waiter in self._waiters.pop(task.id, []):
            if not waiter.done():
                waiter.set_result(task)

    def _uncount(self, name: str) -> None:
        """Take back a counter whose change was not stored, and store the counters as they are
        now: the store keeps back counters whose writes failed until the next save with
        counters, and this is that save, so a restart right after does not count the change."""
        self._stats.count(name, -1)
        with contextlib.suppress(Exception):
            resync = asyncio.ensure_future(self._store.save((), self._stats.counters))
            resync.add_done_callback(_retrieved)

    def _changed(self, task: DockerTask, kind: EventKind, line: str | None) -> None:
        self._dirty.add(task.id)
        event = TaskEvent.of(task, kind, line)
        run = self._running.get(task.id)
        if run is not None and run.held is not None:  # "running" not announced yet
            run.held.append(event)
        else:
            self._events.publish(event)

    async def _flush(self) -> None:
        """Write coalesced progress, and try again the states whose write failed."""
        for task_id in list(self._unwritten):
            task = self._tasks.get(task_id)
            if task is None:
                self._unwritten.discard(task_id)
            elif task_id not in self._last_write:  # else a newer write is on its way
                self._commit_soon((task,))
        dirty = [self._tasks[i] for i in self._dirty if i in self._tasks]
        self._dirty.clear()
        if not dirty:
            return
        try:
            await self._store.save(dirty)
        except Exception as exc:  # kept: written with the next flush
            self._dirty.update(t.id for t in dirty if t.id in self._tasks)
            logger.warning("could not write the progress of {} task(s): {}", len(dirty), exc)

    async def _lookup(self, task_id: str) -> DockerTask | None:
        """The live task, else (finished, or its last write failed) the stored one."""
        task = self._tasks.get(task_id)
        if task is not None and task_id not in self._unwritten:
            return task
        return await self._store.get(task_id)


def _error_of(write: asyncio.Future[None]) -> BaseException | None:
    if write.cancelled():
        return RuntimeError("the write was cancelled before it was known to land")
    return write.exception()


def _retrieved(fut: asyncio.Future[None]) -> None:
    """A write nobody waits for: its failure is logged by the store, not warned about again."""
    if not fut.cancelled():
        fut.exception()
