"""The queue engine: takes tasks, runs them by priority on a bounded pool, records every change.

Live tasks (not finished) are held in memory and are the source of truth while the agent runs;
every state change is committed to the store before it is returned or published, so after a
crash the store holds everything a client was told. Finished tasks leave memory and are read
back from the store on demand, so memory tracks the work in flight, not the history.

Phases of one task: ``submit`` (validated, committed, queued) → ``_launch`` (claimed by the
scheduler) → ``_run`` (the executor, under the task's timeout) → ``_finish`` (outcome recorded,
shielded so cancel or shutdown cannot lose it).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from loguru import logger

from ai_admin.config import Settings
from ai_admin.errors import (
    AiAdminError,
    ErrorCode,
    ExecutionError,
    QueueFull,
    QueueShuttingDown,
    TaskNotFound,
    TaskTimeout,
)
from ai_admin.queue.context import RunContext
from ai_admin.queue.events import EventBus, Subscription
from ai_admin.queue.executor import ExecutorMap
from ai_admin.queue.models import RETRYABLE_STATUSES, DockerTask, ErrorInfo, TaskStatus
from ai_admin.queue.ready import ReadyQueue
from ai_admin.queue.retry_policy import RetryPolicy
from ai_admin.queue.secrets import AUTH_KEY, join_secrets, merge_key, split_secrets
from ai_admin.queue.states import Action, check_action
from ai_admin.queue.stats import QueueStats, TaskClass
from ai_admin.queue.store import QueueStore, TaskQuery

_MIN_FLUSH_INTERVAL_S = 0.01


class _Stop(StrEnum):
    CANCEL = "cancel"
    PAUSE = "pause"
    SHUTDOWN = "shutdown"


@dataclass(slots=True, eq=False)
class _Run:
    task: DockerTask
    ctx: RunContext
    started_s: float
    job: asyncio.Task[None] | None = None
    stop: _Stop | None = None
    # Set once ``_run`` executes: a job cancelled before that would never record an outcome.
    begun: bool = False
    finishing: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    # The "running" write, queued at launch; the outcome is written after it.
    started: asyncio.Future[None] | None = None
    # Progress and log events wait here until the "running" state has been announced.
    held: list[dict[str, Any]] | None = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Submission:
    """What a client learns when it submits: the id, where it stands, and any earlier twin."""

    task_id: str
    status: TaskStatus
    queue_position: int | None
    merged_into: str | None = None


@dataclass(frozen=True, slots=True)
class _Outcome:
    result: dict[str, Any] | None = None
    error: AiAdminError | None = None
    stop: _Stop | None = None


class QueueEngine:
    def __init__(
        self,
        store: QueueStore,
        executors: ExecutorMap,
        settings: Settings,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._executors = dict(executors)
        self._rng = rng or random.Random()
        self._tasks: dict[str, DockerTask] = {}
        self._counted: dict[str, TaskClass] = {}
        self._last_write: dict[str, asyncio.Future[None]] = {}  # per live task
        self._secrets: dict[str, dict[str, Any]] = {}
        self._merge_keys: dict[str, str] = {}
        self._by_merge_key: dict[str, str] = {}
        self._ready = ReadyQueue()
        self._delayed: list[tuple[float, int, str]] = []
        self._running: dict[str, _Run] = {}
        self._finishing: set[_Run] = set()  # slot freed, outcome still being written
        self._waiters: dict[str, list[asyncio.Future[DockerTask]]] = {}
        self._dirty: set[str] = set()
        self._stats = QueueStats()
        self._events = EventBus()
        self._seq = 0
        self._paused = False
        self._closing = False
        self._started = False
        self._start_lock = asyncio.Lock()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._background: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, recover unfinished tasks, start scheduling. Idempotent."""
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            if self._closing:
                raise QueueShuttingDown("The queue is closed.")
            await self._store.open()
            await self._recover()
            self._background = [
                asyncio.create_task(self._schedule_loop(), name="ai-admin-scheduler"),
                asyncio.create_task(self._flush_loop(), name="ai-admin-flusher"),
            ]
            self._started = True

    async def _recover(self) -> None:
        self._stats.counters.update(await self._store.load_counters())
        self._stats.gauges.update(await self._store.class_counts())
        for minute_s, n in await self._store.created_since(time.time() - 86_400):
            self._stats.created(minute_s, n)
        requeued: list[DockerTask] = []
        for task in await self._store.load_unfinished():
            self._seq = max(self._seq, task.seq)
            self._tasks[task.id] = task
            self._counted[task.id] = TaskClass.of(task)
            if AUTH_KEY not in task.params:  # with credentials, the key died with them
                self._merge_keys[task.id] = merge_key(task.task_type.value, task.params, None)
            if task.status.is_active:
                task.status = TaskStatus.PENDING
                task.current_step = "Re-queued: the agent stopped while this task ran"
                task.progress = 0.0
                requeued.append(task)
            if task.status is TaskStatus.PENDING:
                self._enqueue(task, keep_seq=True)
        if requeued:
            logger.warning(
                "re-queued {} task(s) that were running when the agent stopped: {}",
                len(requeued),
                ", ".join(t.id for t in requeued),
            )
            await self._commit(*requeued)
        if self._tasks:
            logger.info("recovered {} unfinished task(s) from {}", len(self._tasks), self._store)

    async def close(self, grace_s: float | None = None) -> None:
        """Stop taking work, let running tasks finish for ``grace_s``, then re-queue the rest."""
        if self._closing:
            return
        self._closing = True
        if not self._started:
            return
        grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
        runs = [*self._running.values(), *self._finishing]
        if runs:
            waits = [asyncio.create_task(r.done.wait()) for r in runs]
            _, pending = await asyncio.wait(waits, timeout=grace)
            for w in pending:
                w.cancel()
        for run in list(self._running.values()):
            await self._stop_run(run, _Stop.SHUTDOWN)
        for run in list(self._finishing):  # outcomes being written must land before the store
            await run.done.wait()
        for job in self._background:
            job.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self._flush()
        self._events.close()
        await self._store.close()

    async def __aenter__(self) -> QueueEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- submit ----------------------------------------------------------------------------------

    async def submit(self, task: DockerTask) -> Submission:
        """Queue ``task``; returns once it is durable. A twin of live work is recorded as merged."""
        await self.start()
        if self._closing:
            raise QueueShuttingDown("The agent is shutting down and takes no new work.")
        public, secret = split_secrets(task.params)
        task.params = public
        task.timeout_s = task.timeout_s or self.settings.default_timeout_s
        if task.max_retries is None:
            task.max_retries = self.settings.max_retries
        key = merge_key(task.task_type.value, public, secret)
        twin = self._by_merge_key.get(key)
        if twin is not None:
            return await self._merge(task, twin)
        self._check_capacity()
        task.status = TaskStatus.PENDING
        task.current_step = TaskStatus.PENDING.description
        self._seq += 1
        task.seq = self._seq
        task.queued_at = task.created_at
        self._stats.count("enqueued")
        self._stats.created(task.created_at)
        self._tasks[task.id] = task
        if secret is not None:
            self._secrets[task.id] = secret
        self._merge_keys[task.id] = key
        try:
            await self._commit(task)
        except BaseException:
            self._forget(task)
            raise
        self._enqueue(task, keep_seq=True)
        return Submission(task.id, task.status, self.queue_position(task))

    async def add_task(self, task: DockerTask) -> str:
        """The seed's API: submit and return the task's id."""
        return (await self.submit(task)).task_id

    def _check_capacity(self) -> None:
        # Running and finishing tasks are live (in _tasks) until their outcome is announced.
        waiting = len(self._tasks) - len(self._running) - len(self._finishing)
        limit = self.settings.max_queue_size
        if waiting >= limit:
            raise QueueFull(
                f"The queue already holds {waiting} waiting tasks (max_queue_size {limit}).",
                details={"waiting": waiting, "max_queue_size": limit},
            )

    async def _merge(self, task: DockerTask, twin_id: str) -> Submission:
        twin = self._tasks[twin_id]
        now = time.time()
        task.status = TaskStatus.MERGED
        task.current_step = f"Merged into identical task {twin_id}"
        task.merged_into = twin_id
        task.completed_at = now
        task.duration_s = 0.0
        self._stats.count("merged")
        self._stats.created(task.created_at)
        await self._commit(task)
        return Submission(task.id, task.status, self.queue_position(twin), merged_into=twin_id)

    # -- scheduling ------------------------------------------------------------------------------

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

    async def _schedule_loop(self) -> None:
        while True:
            self._wakeup.clear()
            delay = self._promote_due()
            while self._may_start() and (task_id := self._ready.pop()) is not None:
                self._launch(self._tasks[task_id])
            self._update_idle()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wakeup.wait()

    def _may_start(self) -> bool:
        return (
            not self._paused
            and not self._closing
            and len(self._running) < self.settings.max_concurrent
        )

    def _promote_due(self) -> float | None:
        """Move retries whose backoff is over to the ready queue; seconds until the next one."""
        now = time.time()
        while self._delayed and self._delayed[0][0] <= now:
            due, _, task_id = heapq.heappop(self._delayed)
            task = self._tasks.get(task_id)
            if task is None or task.status is not TaskStatus.PENDING or task.next_attempt_at != due:
                continue
            task.next_attempt_at = None
            task.queued_at = now
            self._enqueue(task, keep_seq=False)
        return max(0.0, self._delayed[0][0] - now) if self._delayed else None

    def _update_idle(self) -> None:
        if (
            not self._running
            and not self._finishing
            and not self._delayed
            and (not self._ready or self._paused)
        ):
            self._idle.set()
        else:
            self._idle.clear()

    def _launch(self, task: DockerTask) -> None:
        now = time.time()
        self._stats.count("dequeued")
        self._stats.count("wait_s_total", max(0.0, now - (task.queued_at or task.created_at)))
        task.status = TaskStatus.RUNNING
        task.current_step = f"Starting (attempt {task.retry_count + 1})"
        task.started_at = now
        task.progress = 0.0
        if task.retry_count or task.paused_from is not None:  # a fresh task has none of these
            task.completed_at = task.duration_s = None
            task.paused_from = None
            task.error = task.error_code = task.error_details = task.error_info = None
        ctx = RunContext(
            task,
            join_secrets(task.params, self._secrets.get(task.id)),
            log_lines=self.settings.task_log_lines,
            loop=asyncio.get_running_loop(),
            commit_step=self._commit,
            changed=self._changed,
        )
        run = _Run(task, ctx, started_s=now)
        self._running[task.id] = run
        # Queued now, with the change, so no reader sees "running" before it is being written.
        # It is announced once durable; the executor starts meanwhile (a crash before the
        # write lands just leaves the task pending, to run again).
        run.started = self._record_then_announce(task, run)
        run.job = asyncio.create_task(self._run(run), name=f"ai-admin-task-{task.id}")

    # -- running ---------------------------------------------------------------------------------

    async def _run(self, run: _Run) -> None:
        run.begun = True
        task = run.task
        deadline = asyncio.timeout(task.timeout_s)
        started = run.started
        assert started is not None
        try:
            executor = self._executors.get(task.task_type)
            if executor is None:
                raise ExecutionError(
                    f"No executor is installed for {task.task_type.value} tasks.",
                    code=ErrorCode.INTERNAL_ERROR,
                )
            result = None
            if run.stop is None:  # else stopped before it began: the executor never runs
                async with deadline:
                    result = await executor(run.ctx)
            outcome = _Outcome(result=result, stop=run.stop)
        except asyncio.CancelledError:
            if run.stop is None:
                raise
            outcome = _Outcome(stop=run.stop)
        except TimeoutError as exc:
            outcome = _Outcome(error=_timeout_error(task) if deadline.expired() else _unknown(exc))
        except AiAdminError as exc:
            outcome = _Outcome(error=exc)
        except Exception as exc:
            logger.opt(exception=exc).error("task {} failed unexpectedly", task.id)
            outcome = _Outcome(error=_unknown(exc))
        await asyncio.shield(self._finish(run, outcome, started))

    async def _finish(self, run: _Run, outcome: _Outcome, started: Awaitable[None]) -> None:
        run.finishing = True
        run.ctx.stop()
        task = run.task
        now = time.time()
        elapsed = now - run.started_s
        self._running.pop(task.id, None)
        self._finishing.add(run)
        self._wakeup.set()  # the slot is free while the outcome is written
        try:
            with contextlib.suppress(Exception):  # logged by its callback
                await started
            if outcome.stop is not None:
                self._record_stop(task, outcome.stop)
            elif outcome.error is not None:
                self._stats.count("processing_s_total", elapsed)
                self._record_failure(task, outcome.error, now)
            else:
                self._stats.count("processing_s_total", elapsed)
                self._stats.count("completed")
                task.status = TaskStatus.COMPLETED
                task.current_step = TaskStatus.COMPLETED.description
                task.progress = 100.0
                task.result = outcome.result
            if task.status.is_finished:
                task.completed_at = now
                task.duration_s = round(elapsed, 3)
            await self._commit(task)
        finally:
            self._finishing.discard(run)
            run.done.set()
            self._update_idle()

    def _record_stop(self, task: DockerTask, stop: _Stop) -> None:
        self._dequeue(task)
        if stop is _Stop.CANCEL:
            self._stats.count("cancelled")
            task.status = TaskStatus.CANCELLED
            task.current_step = "Cancelled while running"
        elif stop is _Stop.PAUSE:
            task.status = TaskStatus.PAUSED
            task.paused_from = TaskStatus.RUNNING
            task.current_step = "Paused while running; resume runs it again"
        else:
            task.status = TaskStatus.PENDING
            task.current_step = "Re-queued: the agent shut down while this task ran"
            task.progress = 0.0

    def _record_failure(self, task: DockerTask, error: AiAdminError, now: float) -> None:
        task.error = error.message
        task.error_code = error.code.value
        task.error_details = error.details or None
        task.error_info = ErrorInfo(
            description=error.description, suggestions=error.suggestions, transient=error.transient
        )
        retries_left = task.retry_count < (task.max_retries or 0)
        # Also while closing: the retry is stored as pending and runs after the restart.
        if error.transient and retries_left:
            task.retry_count += 1
            self._stats.count("retried")
            delay = self._retry_policy().delay_s(task.retry_count, self._rng)
            task.status = TaskStatus.PENDING
            task.next_attempt_at = now + delay
            task.current_step = (
                f"Retry {task.retry_count} of {task.max_retries} in {delay:.1f} s "
                f"after {error.code.value}"
            )
            self._enqueue(task, keep_seq=True)
            return
        is_timeout = error.code is ErrorCode.SYSTEM_TIMEOUT
        self._stats.count("timed_out" if is_timeout else "failed")
        task.status = TaskStatus.TIMEOUT if is_timeout else TaskStatus.FAILED
        task.current_step = f"{task.status.description}: {error.code.value}"

    def _retry_policy(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(s.retry_base_s, s.retry_factor, s.retry_cap_s, s.retry_jitter)

    async def _stop_run(self, run: _Run, reason: _Stop) -> DockerTask:
        """Stop a running task and wait until its outcome is recorded."""
        if run.stop is None and not run.finishing and run.job is not None:
            run.stop = reason
            run.ctx.stop()
            if run.begun:  # else ``_run`` sees ``stop`` when it begins and skips the executor
                run.job.cancel()
        await run.done.wait()
        return run.task

    # -- recording -------------------------------------------------------------------------------

    def _record(self, *tasks: DockerTask) -> asyncio.Future[None]:
        """Start making the tasks' current state durable; writes land in call order.

        Every state change calls this with no ``await`` between the change and the call, so
        a reader that waits for a task's last write (``get_task``) sees only durable states.
        """
        for task in tasks:
            after = TaskClass.of(task)
            self._stats.move(self._counted.get(task.id), after)
            self._counted[task.id] = after
            self._dirty.discard(task.id)
        write = asyncio.ensure_future(self._store.save(tasks, self._stats.counters))
        for task in tasks:
            if task.id in self._tasks:
                self._last_write[task.id] = write
        return write

    async def _commit(self, *tasks: DockerTask) -> None:
        """Make the tasks' current state durable, then tell subscribers and waiters."""
        events = [t.event("status") for t in tasks]
        await self._record(*tasks)
        self._announce(tasks, events)

    def _record_then_announce(self, task: DockerTask, run: _Run) -> asyncio.Future[None]:
        """Like ``_commit`` without waiting: the state as it is now is announced once durable,
        then the progress and log events the run reported meanwhile, in order."""
        events = [task.event("status")]
        write = asyncio.ensure_future(self._record(task))

        def announce(f: asyncio.Future[None]) -> None:
            if f.cancelled() or f.exception() is not None:
                logger.error("could not record task {}: {}", task.id, f.exception())
            else:
                self._announce((task,), events)
            held, run.held = run.held or [], None
            for event in held:
                self._events.publish(event)

        write.add_done_callback(announce)
        return write

    def _announce(self, tasks: tuple[DockerTask, ...], events: list[dict[str, Any]]) -> None:
        for task, event in zip(tasks, events, strict=True):
            self._events.publish(event)
            if TaskStatus(event["status"]).is_finished:
                self._forget(task)

    def _forget(self, task: DockerTask) -> None:
        """A finished task leaves memory; the store keeps it."""
        self._dequeue(task)
        self._tasks.pop(task.id, None)
        self._counted.pop(task.id, None)
        self._last_write.pop(task.id, None)
        self._merge_keys.pop(task.id, None)
        if task.status not in RETRYABLE_STATUSES:  # a manual retry still needs the credentials
            self._secrets.pop(task.id, None)
        for waiter in self._waiters.pop(task.id, []):
            if not waiter.done():
                waiter.set_result(task)

    def _changed(self, task: DockerTask, kind: str, extra: dict[str, Any]) -> None:
        self._dirty.add(task.id)
        run = self._running.get(task.id)
        if run is not None and run.held is not None:  # "running" not announced yet
            run.held.append(task.event(kind, **extra))
        else:
            self._publish(task, kind, extra)

    def _publish(self, task: DockerTask, kind: str, extra: dict[str, Any]) -> None:
        self._events.publish(task.event(kind, **extra))

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(max(self.settings.progress_write_interval_s, _MIN_FLUSH_INTERVAL_S))
            await self._flush()

    async def _flush(self) -> None:
        dirty = [self._tasks[i] for i in self._dirty if i in self._tasks]
        self._dirty.clear()
        if dirty:
            await self._store.save(dirty)

    # -- reading ---------------------------------------------------------------------------------

    async def get_task(self, task_id: str) -> DockerTask | None:
        """The task as last committed: a live task is returned once its last write is durable."""
        await self.start()
        while (write := self._last_write.get(task_id)) is not None and not write.done():
            with contextlib.suppress(Exception):  # a failed write is logged where it is made
                await asyncio.shield(write)
        return await self._lookup(task_id)

    async def _lookup(self, task_id: str) -> DockerTask | None:
        """The live task, else the stored one."""
        task = self._tasks.get(task_id)
        return task if task is not None else await self._store.get(task_id)

    async def require_task(self, task_id: str) -> DockerTask:
        task = await self.get_task(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    def queue_position(self, task: DockerTask) -> int | None:
        """1 for the task that runs next; None unless the task is waiting in the ready queue."""
        if task.status is not TaskStatus.PENDING:
            return None
        return self._ready.position(task.priority, task.seq)

    def pending_tasks(self) -> list[DockerTask]:
        """Waiting tasks in the order they will run."""
        return [self._tasks[i] for i in self._ready]

    def running_tasks(self) -> list[DockerTask]:
        return [r.task for r in self._running.values()]

    def paused_tasks(self) -> list[DockerTask]:
        return [t for t in self._tasks.values() if t.status is TaskStatus.PAUSED]

    def reconfigure(self, settings: Settings) -> None:
        """Apply new run-time settings (concurrency, limits, retry policy) at once."""
        self.settings = settings
        self._wakeup.set()

    async def list_tasks(self, query: TaskQuery) -> tuple[list[DockerTask], int]:
        await self.start()
        tasks, total = await self._store.list_tasks(query)
        return [self._tasks.get(t.id, t) for t in tasks], total

    async def get_task_summary(self, task_id: str) -> dict[str, Any]:
        """The seed's detailed view: status, timing, error with advice, retry state, position."""
        task = await self.require_task(task_id)
        return task.summary(self.queue_position(task))

    async def get_queue_stats(self) -> dict[str, Any]:
        await self.start()
        stats = self._stats.snapshot(
            max_concurrent=self.settings.max_concurrent,
            running=len(self._running),
            queue_size=len(self._ready) + len(self._delayed),
        )
        stats["queue"] = {"paused": self._paused, "accepting": not self._closing}
        return stats

    def subscribe(self, task_id: str | None = None) -> Subscription:
        """Every state, progress and log change from now on, in order."""
        return self._events.subscribe(task_id)

    def event_of(self, task: DockerTask, kind: str = "snapshot") -> dict[str, Any]:
        """A task's current state in the shape subscribers receive."""
        return task.event(kind)

    def end_subscriptions(self) -> None:
        """End every subscription (a server closing its event streams)."""
        self._events.close()

    async def wait_for(self, task_id: str, timeout_s: float | None = None) -> DockerTask:
        """Wait until the task has finished (following a merge to its twin) and return it."""
        task = await self.require_task(task_id)
        if task.status is TaskStatus.MERGED and task.merged_into:
            return await self.wait_for(task.merged_into, timeout_s)
        if task.status.is_finished:
            return task
        waiter: asyncio.Future[DockerTask] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(task_id, [])
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

    # -- control ---------------------------------------------------------------------------------

    async def _live_for(self, task_id: str, action: Action, force: bool = False) -> DockerTask:
        # The in-memory state decides transitions at once; only what is reported waits.
        await self.start()
        task = await self._lookup(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        check_action(task, action, force=force)
        return task

    async def pause_task(self, task_id: str) -> DockerTask:
        task = await self._live_for(task_id, Action.PAUSE)
        if run := self._running.get(task_id):
            return await self._stop_run(run, _Stop.PAUSE)
        self._dequeue(task)
        task.status = TaskStatus.PAUSED
        task.current_step = TaskStatus.PAUSED.description
        task.paused_from = TaskStatus.PENDING
        await self._commit(task)
        return task

    async def resume_task(self, task_id: str) -> DockerTask:
        task = await self._live_for(task_id, Action.RESUME)
        task.status = TaskStatus.PENDING
        task.current_step = "Resumed; waiting in the queue"
        task.paused_from = None
        await self._commit(task)
        self._enqueue(task, keep_seq=True)
        return task

    async def cancel_task(self, task_id: str) -> DockerTask:
        task = await self._live_for(task_id, Action.CANCEL)
        if run := self._running.get(task_id):
            return await self._stop_run(run, _Stop.CANCEL)
        self._dequeue(task)
        self._stats.count("cancelled")
        task.status = TaskStatus.CANCELLED
        task.current_step = TaskStatus.CANCELLED.description
        task.completed_at = time.time()
        await self._commit(task)
        return task

    async def retry_task(self, task_id: str, *, force: bool = False) -> DockerTask:
        task = await self._live_for(task_id, Action.RETRY, force)
        live = self._tasks.get(task_id)
        if live is not None and live is not task:  # a concurrent retry won while we read
            check_action(live, Action.RETRY, force=force)
            task = live
        if self._closing:
            raise QueueShuttingDown("The agent is shutting down and takes no new work.")
        self._check_capacity()
        self._counted[task.id] = TaskClass.of(task)
        task.retry_count += 1
        self._stats.count("retried")
        task.status = TaskStatus.PENDING
        task.current_step = f"Retry {task.retry_count} requested; waiting in the queue"
        task.queued_at = time.time()
        task.next_attempt_at = task.completed_at = task.duration_s = None
        self._seq += 1
        task.seq = self._seq
        self._tasks[task.id] = task
        secret = self._secrets.get(task.id)
        self._merge_keys[task.id] = merge_key(task.task_type.value, task.params, secret)
        await self._commit(task)
        self._enqueue(task, keep_seq=True)
        return task

    def pause_queue(self) -> None:
        """Nothing new starts; running tasks finish."""
        self._paused = True
        self._wakeup.set()

    def resume_queue(self) -> None:
        self._paused = False
        self._wakeup.set()

    @property
    def paused(self) -> bool:
        return self._paused

    async def clear(self, *, include_failed: bool = False) -> int:
        """Delete finished tasks (completed and merged; also failed, cancelled and timed-out
        ones with ``include_failed``). Returns how many were deleted."""
        await self.start()
        statuses = {TaskStatus.COMPLETED, TaskStatus.MERGED}
        if include_failed:
            statuses |= {TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMEOUT}
        deleted = await self._store.delete(statuses)
        if include_failed:  # kept only so a manual retry could use them; nothing left to retry
            self._secrets = {k: v for k, v in self._secrets.items() if k in self._tasks}
        counts = await self._store.class_counts()
        self._stats.gauges.clear()
        self._stats.gauges.update(counts)
        return deleted


def _timeout_error(task: DockerTask) -> TaskTimeout:
    return TaskTimeout(
        f"Task {task.id} ran longer than its timeout of {task.timeout_s:g} s.",
        details={"timeout_s": task.timeout_s},
    )


def _unknown(exc: BaseException) -> ExecutionError:
    return ExecutionError(
        f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
        code=ErrorCode.UNKNOWN_ERROR,
        transient=False,
    )
