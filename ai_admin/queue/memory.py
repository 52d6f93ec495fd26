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
from ai_admin.queue.batches import Batch
from ai_admin.queue.dependencies import (
    ENDED_BADLY,
    MAX_MERGE_HOPS,
    Dependents,
    failed_because,
    invalid,
    waiting_step,
)
from ai_admin.queue.journal import Journal
from ai_admin.queue.lanes import Lane, Lanes
from ai_admin.queue.live import LiveTask, LiveTasks
from ai_admin.queue.models import RETRYABLE_STATUSES, DockerTask, TaskStatus
from ai_admin.queue.outcomes import fail
from ai_admin.queue.runs import Run
from ai_admin.queue.secrets import merge_key
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
        self._dependents = Dependents()  # live tasks waiting for others to complete
        self._batches: dict[str, Batch] = {}  # every batch kept (finished ones too)
        self._batch_lock = asyncio.Lock()  # batch changes are made one at a time
        self._batch_jobs: set[asyncio.Future[None]] = set()  # batches ending
        self._batch_waiters: dict[str, list[asyncio.Future[None]]] = {}  # wait_for_batch
        # Actions waiting to decide on a task (live or finished): the scheduler holds it.
        self._deciding: Counter[str] = Counter()
        self._wakeup = asyncio.Event()
        self._lanes = Lanes(settings, self._wakeup.set)  # the named queues and what waits in them
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
            or task.seq in self._lanes
        ):
            return
        if not keep_seq:
            self._seq += 1
            task.seq = self._seq
        key = record.merge_key
        if key is not None:
            self._by_merge_key.setdefault(key, task.id)
        if record.waiting_on:  # enqueued for real once its dependencies have completed
            return
        if task.batch_id is not None and not self._batch_lets_start(task.batch_id):
            return  # enqueued for real when its batch runs
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
            and not self._lanes.may_start_any()
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
        for waiting in self._dependents.release(task.id):
            self._dependency_ended(waiting, task)
        if task.batch_id is not None:
            self._batch_task_ended(task.batch_id)

    # -- batches ---------------------------------------------------------------------------------

    def _batch_lets_start(self, batch_id: str) -> bool:
        batch = self._batches.get(batch_id)
        return batch is None or batch.lets_tasks_start

    def _batch_task_ended(self, batch_id: str) -> None:
        """Provided by the engine (``batch_control``): a task of the batch has finished."""
        raise NotImplementedError

    # -- dependencies ----------------------------------------------------------------------------

    @staticmethod
    def _merge_key(task: DockerTask, secret: dict[str, Any] | None) -> str:
        """Twins do the same work at the same point: same queue, same dependencies, same
        batch."""
        scope = [task.queue, sorted(task.depends_on), task.batch_id]
        return merge_key(task.task_type.value, task.params, secret, scope)

    async def _dependencies_now(self, task: DockerTask) -> tuple[set[str], DockerTask | None]:
        """The dependencies still to complete, and one that ended badly (or None), as they
        stand when this returns: the caller acts on them before its next ``await``."""
        while True:
            waiting, failed = await self._dependency_states(task)
            if all(self._unfinished(d) for d in waiting):
                return waiting, failed

    def _unfinished(self, task_id: str) -> bool:
        record = self._live.get(task_id)
        return record is not None and not record.task.status.is_finished

    async def _dependency_states(
        self, task: DockerTask, *, accepted: bool = False
    ) -> tuple[set[str], DockerTask | None]:
        """What ``task`` still waits for, and a dependency that ended badly. An unknown id
        refuses the task (a new one, or a retry); for a task ``accepted`` and waiting since
        (recovered at start-up), a dependency no longer stored was deleted after it finished
        (queue_clear, retention), and a failed one fails its dependents as it ends: it
        counts as completed."""
        waiting: set[str] = set()
        failed: DockerTask | None = None
        for name in task.depends_on:
            dependency = await self._dependency(task, name)
            if dependency is None:
                if accepted:
                    continue
                raise invalid(task, name, "no task has this id")
            if dependency.status is TaskStatus.COMPLETED:
                continue
            if dependency.status in ENDED_BADLY:
                failed = failed or dependency
            else:
                waiting.add(dependency.id)
        return waiting, failed

    async def _dependency(self, task: DockerTask, name: str) -> DockerTask | None:
        """The task ``name`` stands for, following merges; None if there is none."""
        current = name
        for _ in range(MAX_MERGE_HOPS):
            record = self._live.get(current)
            found = record.task if record is not None else await self._store.get(current)
            if found is None:
                return None
            if found.status is not TaskStatus.MERGED or found.merged_into is None:
                return found
            current = found.merged_into
        raise invalid(task, name, "its merges lead nowhere")

    def _wait_on(self, record: LiveTask, waiting: set[str]) -> None:
        """The task waits (pending, out of the ready queue) until ``waiting`` have completed."""
        record.waiting_on = waiting
        record.task.current_step = waiting_step(waiting)
        self._dependents.add(record.task.id, waiting)

    def _fail_for(self, task: DockerTask, dependency: DockerTask) -> None:
        """End a waiting task because ``dependency`` did not complete."""
        fail(task, failed_because(task, dependency), self._stats)
        task.completed_at = time.time()
        task.next_attempt_at = None
        task.paused_from = None

    def _dependency_ended(self, task_id: str, dependency: DockerTask) -> None:
        """``dependency`` has finished (durably): the task waiting for it goes on or fails."""
        record = self._live.get(task_id)
        if record is None or not record.waiting_on or dependency.id not in record.waiting_on:
            return
        task = record.task
        if dependency.status is TaskStatus.COMPLETED:
            record.waiting_on.discard(dependency.id)
            if record.waiting_on:
                task.current_step = waiting_step(record.waiting_on)
            else:
                record.waiting_on = None
                if task.status is TaskStatus.PENDING:
                    task.current_step = "Its dependencies completed; waiting in the queue"
                self._enqueue(task, keep_seq=True)
        else:
            record.waiting_on = None
            self._dequeue(task)
            self._fail_for(task, dependency)
        self._journal.commit_soon((task,))  # kept and written again if it fails

    async def _lookup(self, task_id: str) -> DockerTask | None:
        """The live task, else (finished, or its last write failed) the stored one."""
        record = self._live.get(task_id)
        if record is not None and not self._journal.unwritten(task_id):
            return record.task
        return await self._store.get(task_id)
