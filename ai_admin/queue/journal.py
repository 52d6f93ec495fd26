"""The journal: the one place that makes a task's state durable and then announces it.

The invariant: every state change is committed to the store before it is returned or
published, so after a crash the store holds everything a client was told. The engine makes a
change, then calls ``commit_soon`` with no ``await`` in between; writes land in call order.
Once a write lands, the journal counts the change, publishes it, runs the caller's ``then``,
and retires a task whose finished state that write holds (only the task's *last* write may
retire it, so an action that moved it on meanwhile is never lost). A write that fails is
undone by whoever made the change (``undo``: memory goes back to what the store holds) or, for
the engine's own moves, kept and written again by the flusher.

Progress and log lines are published at once but written in batches (``changed`` marks the
task, ``flush`` writes it). While a run's "running" state is not yet durable, its progress
events wait in the task's record and follow that state out (``hold`` / ``release``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from functools import partial

from loguru import logger

from ai_admin.queue.events import EventBus, EventKind, Subscription, TaskEvent
from ai_admin.queue.live import LiveTask
from ai_admin.queue.models import DockerTask
from ai_admin.queue.stats import QueueStats, TaskClass
from ai_admin.queue.store import QueueStore

_MIN_FLUSH_INTERVAL_S = 0.01


class Journal:
    def __init__(
        self,
        store: QueueStore,
        live: Mapping[str, LiveTask],
        retire: Callable[[DockerTask], None],
    ) -> None:
        self.store = store
        self.stats = QueueStats()  # counted as changes are made; stored with every write
        self._events = EventBus()
        self._live = live  # the engine's records, read here, never added to or removed from
        self._retire = retire  # a finished task whose last write landed leaves memory
        self._dirty: set[str] = set()  # live tasks with progress not written yet
        self._unwritten: set[str] = set()  # live tasks whose last write failed

    @property
    def events(self) -> EventBus:
        """The bus every change is announced on (task events, and other things' changes)."""
        return self._events

    # -- state changes ---------------------------------------------------------------------------

    def commit_soon(
        self,
        tasks: Sequence[DockerTask],
        *,
        then: Callable[[], None] | None = None,
        undo: Callable[[], None] | None = None,
    ) -> asyncio.Future[None]:
        """Start making the tasks' current state durable.

        Once the write lands the state is published and ``then`` runs; if it fails, ``undo``
        puts memory back to what the store holds (without one, an engine move is kept and the
        flusher writes it again). The result settles after that, with the write's error if
        any, so whoever waits for it sees the outcome applied, whether or not the caller is
        still there.
        """
        events = [TaskEvent.of(t, EventKind.STATUS) for t in tasks]
        for task in tasks:
            after = TaskClass.of(task)
            record = self._live.get(task.id)
            self.stats.move(record.counted if record is not None else None, after)
            if record is not None:
                record.counted = after
            self._dirty.discard(task.id)
        loop = asyncio.get_running_loop()
        settled: asyncio.Future[None] = loop.create_future()
        write: asyncio.Future[None]
        try:
            write = asyncio.ensure_future(self.store.save(tasks, self.stats.counters))
        except Exception as exc:  # refused at once (a closed store)
            write = loop.create_future()
            write.set_exception(exc)
        # Readers and actions wait for the write itself (``landing``), which no caller can
        # cancel; this callback is its first, so it has run by the time any of them wakes.
        write.add_done_callback(partial(self._landed, tasks, events, settled, then, undo))
        for task in tasks:
            if (record := self._live.get(task.id)) is not None:
                record.last_write = write
        return settled

    async def commit(
        self,
        *tasks: DockerTask,
        then: Callable[[], None] | None = None,
        undo: Callable[[], None] | None = None,
    ) -> None:
        """``commit_soon`` and wait: raises the write's error. Cancelling the caller cancels
        only its wait: the outcome is applied all the same."""
        await self.commit_soon(tasks, then=then, undo=undo)

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
                record = self._live.get(task.id)
                if record is not None and record.last_write is write:
                    record.last_write = None
            if settled.done():  # its caller was cancelled; the outcome is applied all the same
                pass
            elif error is None:
                settled.set_result(None)
            else:
                settled.set_exception(error)
                settled.exception()  # retrieved: a caller that waits for it still gets it

    def _announce(
        self, tasks: Sequence[DockerTask], events: list[TaskEvent], write: asyncio.Future[None]
    ) -> None:
        for task, event in zip(tasks, events, strict=True):
            self._unwritten.discard(task.id)  # this write holds everything a failed one had
            self._events.publish(event)
            record = self._live.get(task.id)
            # Only the task's last write may retire it: an action may have moved it since.
            if task.status.is_finished and (record is None or record.last_write in (None, write)):
                self._retire(task)

    def forget(self, task_id: str) -> None:
        """The task has left memory: nothing of it remains to be written."""
        self._dirty.discard(task_id)
        self._unwritten.discard(task_id)

    async def landing(self, task_id: str) -> None:
        """Wait until the task's writes have landed and their outcome has been applied
        (published, or undone): then memory holds nothing the store does not."""
        while (record := self._live.get(task_id)) is not None and (
            write := record.last_write
        ) is not None:
            if write.done():  # its callback is already queued: let it run
                await asyncio.sleep(0)
            else:
                await asyncio.wait([write])

    def unwritten(self, task_id: str) -> bool:
        """The task's last write failed: the store holds an older state than memory."""
        return task_id in self._unwritten

    def _keep_unwritten(self, tasks: Sequence[DockerTask], error: BaseException) -> None:
        for task in tasks:
            if task.id in self._live and task.id not in self._unwritten:
                logger.error(
                    "could not record task {} ({}); it is written again once the store accepts "
                    "it: {}",
                    task.id,
                    task.status.value,
                    error,
                )
                self._unwritten.add(task.id)

    def uncount(self, name: str) -> None:
        """Take back a counter whose change was not stored, and store the counters as they are
        now: the store keeps back counters whose writes failed until the next save with
        counters, and this is that save, so a restart right after does not count the change."""
        self.stats.count(name, -1)
        with contextlib.suppress(Exception):
            resync = asyncio.ensure_future(self.store.save((), self.stats.counters))
            resync.add_done_callback(_retrieved)

    # -- progress and logs -----------------------------------------------------------------------

    def changed(self, task: DockerTask, kind: EventKind, line: str | None) -> None:
        """A running task's progress or log moved: published now, written with the next flush."""
        self._dirty.add(task.id)
        event = TaskEvent.of(task, kind, line)
        record = self._live.get(task.id)
        if record is not None and record.held is not None:  # "running" not announced yet
            record.held.append(event)
        else:
            self._events.publish(event)

    def hold(self, record: LiveTask, running: asyncio.Future[None]) -> None:
        """Hold the task's progress events until its ``running`` write has been announced."""
        record.held = []
        running.add_done_callback(partial(self._release, record))

    def _release(self, record: LiveTask, _: asyncio.Future[None]) -> None:
        held, record.held = record.held or [], None
        for event in held:
            self._events.publish(event)

    async def flush(self) -> None:
        """Write coalesced progress, and try again the states whose write failed."""
        for task_id in list(self._unwritten):
            record = self._live.get(task_id)
            if record is None:
                self._unwritten.discard(task_id)
            elif record.last_write is None:  # else a newer write is on its way
                self.commit_soon((record.task,))
        dirty = [self._live[i].task for i in self._dirty if i in self._live]
        self._dirty.clear()
        if not dirty:
            return
        try:
            await self.store.save(dirty)
        except Exception as exc:  # kept: written with the next flush
            self._dirty.update(t.id for t in dirty if t.id in self._live)
            logger.warning("could not write the progress of {} task(s): {}", len(dirty), exc)

    async def flush_every(self, interval_s: Callable[[], float]) -> None:
        """Flush forever, ``interval_s()`` apart (read each time: it may be reconfigured)."""
        while True:
            await asyncio.sleep(max(interval_s(), _MIN_FLUSH_INTERVAL_S))
            await self.flush()

    # -- subscribers -----------------------------------------------------------------------------

    def subscribe(self, task_id: str | None = None) -> Subscription:
        return self._events.subscribe(task_id)

    def end_subscriptions(self) -> None:
        self._events.close()


def _error_of(write: asyncio.Future[None]) -> BaseException | None:
    if write.cancelled():
        return RuntimeError("the write was cancelled before it was known to land")
    return write.exception()


def _retrieved(fut: asyncio.Future[None]) -> None:
    """A write nobody waits for: its failure is logged by the store, not warned about again."""
    if not fut.cancelled():
        fut.exception()
