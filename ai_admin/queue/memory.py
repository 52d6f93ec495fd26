"""What the engine holds in memory: one record per live task, and the scheduler's queues.

Live tasks (not finished) are held in memory and are the source of truth while the agent runs;
the journal (``journal.py``) makes each change of them durable before it is announced, and
retires a task once its finished state is durable. A finished task is read back from the store.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import Counter
from typing import Any

from ai_admin.config import Settings
from ai_admin.errors import QueueFull
from ai_admin.queue.journal import Journal
from ai_admin.queue.lanes import Lane, Lanes
from ai_admin.queue.live import LiveTasks
from ai_admin.queue.models import RETRYABLE_STATUSES, DockerTask, TaskStatus
from ai_admin.queue.runs import Run
from ai_admin.queue.store import QueueStore, SetAside


class TaskMemory:
    def __init__(self, store: QueueStore, settings: Settings) -> None:
        self.settings = settings
        self._store = store
        self._live = LiveTasks()
        self._journal = Journal(store, self._live, self._forget)
        self._stats = self._journal.stats
        # Credentials kept in memory only: for a live task, and for a finished one a manual
        # retry may still run (they outlive its record).
        self._secrets: dict[str, dict[str, Any]] = {}
        self._by_merge_key: dict[str, str] = {}  # the live task each twin merges into
        # Actions waiting to decide on a task (live or finished): the scheduler holds it.
        self._deciding: Counter[str] = Counter()
        self._wakeup = asyncio.Event()
        self._lanes = Lanes(settings, self._wakeup.set)  # the named queues and what waits in them
        self._ready = self._lanes
        self._pause = self._lanes.default.pause
        self._delayed: list[tuple[float, int, str]] = []
        self._running: dict[str, Run] = {}  # the runs holding a slot
        self._finishing: dict[str, Run] = {}  # slot freed, outcome still being written
        self._seq = 0
        self._closing = False
        self._idle = asyncio.Event()
        self._set_aside: list[SetAside] = []  # stored tasks that failed to load, at start

    # -- queueing --------------------------------------------------------------------------------

    def _enqueue(self, task: DockerTask, *, keep_seq: bool) -> None:
        """Put a pending task where the scheduler finds it: ready now, or after its backoff."""
        if (
            task.status is not TaskStatus.PENDING  # paused or cancelled meanwhile
            or (record := self._live.get(task.id)) is None
            or record.task is not task
            or task.seq in self._ready
        ):
            return
        if not keep_seq:
            self._seq += 1
            task.seq = self._seq
        key = record.merge_key
        if key is not None:
            self._by_merge_key.setdefault(key, task.id)
        if task.next_attempt_at is not None and task.next_attempt_at > time.time():
            heapq.heappush(self._delayed, (task.next_attempt_at, task.seq, task.id))
        else:
            task.next_attempt_at = None
            self._lanes.add(task)
        self._idle.clear()
        self._wakeup.set()

    def _dequeue(self, task: DockerTask) -> None:
        """Take a task out of scheduling (paused, cancelled, finished); stale heap entries are
        skipped when they come due."""
        self._lanes.remove(task.priority, task.seq)
        if task.next_attempt_at is not None and any(e[2] == task.id for e in self._delayed):
            # Held or cancelled in its backoff: nothing is waiting for that deadline any more.
            self._delayed = [e for e in self._delayed if e[2] != task.id]
            heapq.heapify(self._delayed)
            self._wakeup.set()
        record = self._live.get(task.id)
        key = record.merge_key if record is not None else None
        if key is not None and self._by_merge_key.get(key) == task.id:
            del self._by_merge_key[key]

    def _check_capacity(self, lane: Lane) -> None:
        # Running and finishing tasks are live until their outcome is announced.
        waiting = self._live.per_queue[lane.name] - lane.busy
        limit = int(lane.limit("max_queue_size", self.settings))
        if waiting >= limit:
            raise QueueFull(
                f"The queue {lane.name!r} already holds {waiting} waiting tasks "
                f"(max_queue_size {limit}).",
                details={"queue": lane.name, "waiting": waiting, "max_queue_size": limit},
            )

    def _update_idle(self) -> None:
        if (
            not self._running
            and not self._finishing
            and not self._delayed
            and all(not lane.ready or lane.pause.paused for lane in self._lanes.lanes())
        ):
            self._idle.set()
        else:
            self._idle.clear()

    # -- leaving memory --------------------------------------------------------------------------

    def _forget(self, task: DockerTask) -> None:
        """A finished task leaves memory (its whole record at once); the store keeps it."""
        record = self._live.get(task.id)
        if record is not None and record.task is not task:  # a newer copy is live
            return
        self._dequeue(task)
        self._live.pop(task.id, None)
        self._journal.forget(task.id)
        if task.status not in RETRYABLE_STATUSES:  # a manual retry still needs the credentials
            self._secrets.pop(task.id, None)
        for waiter in record.waiters if record is not None else ():
            if not waiter.done():
                waiter.set_result(task)

    async def _lookup(self, task_id: str) -> DockerTask | None:
        """The live task, else (finished, or its last write failed) the stored one."""
        record = self._live.get(task_id)
        if record is not None and not self._journal.unwritten(task_id):
            return record.task
        return await self._store.get(task_id)
