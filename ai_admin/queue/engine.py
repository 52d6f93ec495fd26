"""The queue engine: takes tasks, runs them by priority on a bounded pool, records every change.

Live tasks (not finished) are held in memory, one record each, and are the source of truth
while the agent runs; the journal commits every state change to the store before it is
returned or published, so after a crash the store holds everything a client was told.
Finished tasks leave memory once their final state is durable and are read back from the store
on demand; a retry is the one way back.

Phases of one task: ``submit`` (validated, committed, queued) → ``_launch`` (claimed by the
scheduler) → ``_run`` (the executor, under the task's timeout) → ``_finish`` (outcome recorded,
shielded so cancel or shutdown cannot lose it).

The layers under it: ``memory`` (one record per live task, and the scheduler's queues),
``journal`` (how a change becomes durable, then announced), ``control`` (actions on one task,
safe to send concurrently, and on the whole queue), ``reading`` (tasks, listings, statistics,
waiting for an end), ``runs`` (one run's state machine), ``outcomes`` (how its end becomes the
task's state) and ``pause`` (the whole-queue pause, kept across restarts).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import time
from dataclasses import dataclass
from functools import partial

from loguru import logger

from ai_admin.config import QueueSettings, Settings
from ai_admin.errors import (
    AiAdminError,
    ErrorCode,
    ExecutionError,
    QueueShuttingDown,
)
from ai_admin.queue.batch_control import BatchControl
from ai_admin.queue.context import RunContext
from ai_admin.queue.dependencies import check_names
from ai_admin.queue.executor import ExecutorMap
from ai_admin.queue.live import LiveTask
from ai_admin.queue.models import DockerTask, TaskStatus
from ai_admin.queue.outcomes import (
    Outcome,
    apply_outcome,
    fail,
    timeout_error,
    unknown_error,
)
from ai_admin.queue.retry_policy import RetryPolicy
from ai_admin.queue.runs import Run, Stop
from ai_admin.queue.secrets import (
    holds_secrets,
    join_secrets,
    secret_values,
    split_secrets,
)
from ai_admin.queue.stats import TaskClass
from ai_admin.queue.store import QueueStore


@dataclass(frozen=True, slots=True)
class Submission:
    """What a client learns when it submits: the id, where it stands, and any earlier twin."""

    task_id: str
    status: TaskStatus
    queue_position: int | None
    merged_into: str | None = None


class QueueEngine(BatchControl):
    def __init__(
        self,
        store: QueueStore,
        executors: ExecutorMap,
        settings: Settings,
        *,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(store, settings)
        self._executors = dict(executors)
        self._rng = rng or random.Random()
        self._started = False
        self._start_lock = asyncio.Lock()
        self._background: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, restore the pause, recover unfinished tasks, start scheduling.
        Idempotent."""
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            if self._closing:
                raise QueueShuttingDown("The queue is closed.")
            await self._store.open()
            await self._load_queues()
            for lane in self._lanes.lanes():  # before anything can be scheduled
                await lane.pause.load(self._store)
            await self._load_batches()  # before the tasks: which may start
            await self._recover()
            await self._after_recovery()
            self._background = [
                asyncio.create_task(self._schedule_loop(), name="ai-admin-scheduler"),
                asyncio.create_task(
                    self._journal.flush_every(lambda: self.settings.progress_write_interval_s),
                    name="ai-admin-flusher",
                ),
            ]
            self._started = True

    async def _recover(self) -> None:
        self._set_aside = await self._store.set_aside()
        self._stats.counters.update(await self._store.load_counters())
        self._stats.gauges.update(await self._store.class_counts())
        for minute_s, n in await self._store.created_since(time.time() - 86_400):
            self._stats.created(minute_s, n)
        requeued: list[DockerTask] = []
        lost: list[DockerTask] = []
        waiting: list[DockerTask] = []
        for task in await self._store.load_unfinished():
            self._seq = max(self._seq, task.seq)
            await self._keep_lane(task.queue)
            record = self._live[task.id] = LiveTask.counted_as_is(task)
            if holds_secrets(task.params):  # its credentials died with the last process
                self._fail_without_credentials(task)
                lost.append(task)
                continue
            record.merge_key = self._merge_key(task, None)
            if task.status.is_active:
                task.status = TaskStatus.PENDING
                task.current_step = "Re-queued: the agent stopped while this task ran"
                task.progress = 0.0
                requeued.append(task)
            waiting.append(task)
        # Once every live task is back: what each one waits for is known.
        broken = [task for task in waiting if not await self._wait_again(task)]
        _log_recovery(requeued, lost)
        if requeued or lost or broken:
            changed = {t.id: t for t in (*requeued, *lost, *broken)}
            await self._journal.commit(*changed.values())
        if self._live:
            logger.info("recovered {} unfinished task(s) from {}", len(self._live), self._store)

    async def _wait_again(self, task: DockerTask) -> bool:
        """A recovered task waits for its dependencies again, and is queued once they have
        completed; False if one of them ended badly meanwhile (the task fails)."""
        left, failed = await self._dependency_states(task, accepted=True)
        if failed is not None:
            self._fail_for(task, failed)
            return False
        if left:
            self._wait_on(self._live[task.id], left)
        self._enqueue(task, keep_seq=True)
        return True

    async def _keep_lane(self, name: str) -> None:
        """A stored task names a queue the settings no longer have: the queue is made again
        (with the agent's limits) so that the task still runs."""
        if self._lanes.get(name) is None:
            logger.warning(
                "stored tasks name the queue {!r}, which is not configured; it is made again "
                "with the agent's limits",
                name,
            )
            await self._lanes.add_lane(name, QueueSettings()).pause.load(self._store)

    def _fail_without_credentials(self, task: DockerTask) -> None:
        """A task given credentials that lived only in memory never runs without them."""
        error = AiAdminError(
            f"Task {task.id} was submitted with credentials that the agent kept in memory "
            "only; they were lost when the agent restarted, so it was not run without them.",
            code=ErrorCode.QUEUE_CREDENTIALS_LOST,
            details={"task_id": task.id, "status_before": task.status.value},
            transient=False,
        )
        fail(task, error, self._stats)
        task.completed_at = time.time()
        task.next_attempt_at = None
        task.paused_from = None

    async def close(self, grace_s: float | None = None) -> None:
        """Stop taking work, let running tasks finish for ``grace_s``, then re-queue the rest."""
        if self._closing:
            return
        self._closing = True
        async with self._start_lock:  # a start under way finishes first, then is undone here
            if not self._started:
                return
        grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
        runs = [*self._running.values(), *self._finishing.values()]
        if runs:
            waits = [asyncio.create_task(r.done.wait()) for r in runs]
            _, pending = await asyncio.wait(waits, timeout=grace)
            for w in pending:
                w.cancel()
        for run in list(self._running.values()):
            run.request_stop(Stop.SHUTDOWN)
            await run.done.wait()
        for run in list(self._finishing.values()):  # outcomes being written land first
            await run.done.wait()
        for job in self._background:
            job.cancel()
        await asyncio.gather(*self._background, *self._batch_jobs, return_exceptions=True)
        await self._journal.flush()
        self._journal.end_subscriptions()
        await self._store.close()

    async def __aenter__(self) -> QueueEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- submit ----------------------------------------------------------------------------------

    async def submit(self, task: DockerTask) -> Submission:
        """Queue ``task``; returns once it is durable. A twin of live work is recorded as merged.

        If the write fails, nothing is left behind (not in memory, not counted) and the
        store's error is raised as it is."""
        await self.start()
        check_names(task)
        waiting, failed = await self._dependencies_now(task)  # no await from here on
        if self._closing:
            raise QueueShuttingDown("The agent is shutting down and takes no new work.")
        lane = self._lanes.lane(task.queue)
        public, secret = split_secrets(task.params)
        task.params = public
        task.timeout_s = task.timeout_s or lane.limit("default_timeout_s", self.settings)
        if task.max_retries is None:
            task.max_retries = int(lane.limit("max_retries", self.settings))
        key = self._merge_key(task, secret)
        twin = self._by_merge_key.get(key)
        if twin is not None:
            return await self._merge(task, twin)
        self._check_capacity(lane)
        task.status = TaskStatus.PENDING
        task.current_step = TaskStatus.PENDING.description
        self._seq += 1
        task.seq = self._seq
        task.queued_at = task.created_at
        self._stats.count("enqueued")
        self._stats.created(task.created_at)
        record = self._live[task.id] = LiveTask(task, merge_key=key)
        if secret is not None:
            self._secrets[task.id] = secret
        if failed is not None:  # accepted, and ended at once: it can never run
            self._fail_for(task, failed)
        elif waiting:
            self._wait_on(record, waiting)
        placed: list[int | None] = []  # its position once queued, before anything can start

        def enqueue() -> None:
            self._enqueue(task, keep_seq=True)
            placed.append(self.queue_position(task))

        status = task.status  # pending, or failed (a dependency that had failed)
        await self._journal.commit(task, then=enqueue, undo=partial(self._unsubmit, task))
        return Submission(task.id, status, placed[0])

    def _unsubmit(self, task: DockerTask) -> None:
        """The submit's write failed: as if it had never been made."""
        record = self._live.pop(task.id, None)
        self._stats.move(record.counted if record is not None else None, None)
        self._secrets.pop(task.id, None)
        self._stats.created(task.created_at, -1)
        self._journal.uncount("enqueued")
        if task.status is TaskStatus.FAILED:  # its dependency had failed
            self._journal.uncount("failed")

    async def add_task(self, task: DockerTask) -> str:
        """Submit and return the task's id (the Python API's short form of ``submit``)."""
        return (await self.submit(task)).task_id

    async def _merge(self, task: DockerTask, twin_id: str) -> Submission:
        twin = self._live[twin_id].task
        now = time.time()
        task.status = TaskStatus.MERGED
        task.current_step = f"Merged into identical task {twin_id}"
        task.merged_into = twin_id
        task.completed_at = now
        task.duration_s = 0.0
        self._stats.count("merged")
        self._stats.created(task.created_at)
        await self._journal.commit(task, undo=partial(self._unmerge, task))
        return Submission(task.id, task.status, self.queue_position(twin), merged_into=twin_id)

    def _unmerge(self, task: DockerTask) -> None:
        self._stats.move(TaskClass.of(task), None)
        self._stats.created(task.created_at, -1)
        self._journal.uncount("merged")

    # -- scheduling ------------------------------------------------------------------------------

    async def _schedule_loop(self) -> None:
        while True:
            self._wakeup.clear()
            delay = self._promote_due()
            self._launch_ready()
            self._update_idle()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wakeup.wait()

    def _launch_ready(self) -> None:
        """Start what may start. A task an action is about to decide on waits (in its place)
        until that action has decided, so a pause sent with a resume holds it un-started."""
        held: list[DockerTask] = []
        while self._may_start() and (task_id := self._lanes.next_to_start(self.settings)):
            task = self._live[task_id].task
            if task_id in self._deciding:
                held.append(task)
            else:
                self._launch(task)
        for task in held:
            self._lanes.add(task)

    def _may_start(self) -> bool:
        """A slot is free in the agent as a whole (each queue checks its own)."""
        return not self._closing and len(self._running) < self.settings.max_concurrent

    def _promote_due(self) -> float | None:
        """Move retries whose backoff is over to the ready queue; seconds until the next one."""
        now = time.time()
        while self._delayed and self._delayed[0][0] <= now:
            due, _, task_id = heapq.heappop(self._delayed)
            record = self._live.get(task_id)
            task = record.task if record is not None else None
            if task is None or task.status is not TaskStatus.PENDING or task.next_attempt_at != due:
                continue
            task.next_attempt_at = None
            task.queued_at = now
            self._enqueue(task, keep_seq=False)
        return max(0.0, self._delayed[0][0] - now) if self._delayed else None

    def _launch(self, task: DockerTask) -> None:
        now = time.time()
        self._stats.count("dequeued")
        self._stats.run_started(task, now)
        task.status = TaskStatus.RUNNING
        task.current_step = f"Starting (attempt {task.retry_count + 1})"
        task.started_at = now
        task.progress = 0.0
        if task.retry_count or task.paused_from is not None:  # a fresh task has none of these
            task.completed_at = task.duration_s = None
            task.paused_from = None
            task.error = task.error_code = task.error_details = task.error_info = None
        secret = self._secrets.get(task.id)
        ctx = RunContext(
            task,
            join_secrets(task.params, secret),
            log_lines=self.settings.task_log_lines,
            loop=asyncio.get_running_loop(),
            commit_step=self._journal.commit,
            changed=self._journal.changed,
            hidden=secret_values(secret),
        )
        run = Run(task, ctx, started_s=now)
        record = self._live[task.id]
        self._running[task.id] = run
        lane = self._lanes.lane(task.queue)
        lane.running += 1
        lane.busy += 1
        # Queued now, with the change, so no reader sees "running" before it is being written.
        # It is announced once durable, then the events the run reported meanwhile; the
        # executor starts at once (a crash before the write lands leaves the task pending).
        run.started = self._journal.commit_soon((task,))
        self._journal.hold(record, run.started)
        # The run's log lines name its task: the job copies this context as it is created.
        with logger.contextualize(task_id=task.id, task_type=task.task_type.value):
            run.job = asyncio.create_task(self._run(run), name=f"ai-admin-task-{task.id}")

    # -- running ---------------------------------------------------------------------------------

    async def _run(self, run: Run) -> None:
        run.begin()
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
            outcome = Outcome(result=result)
        except asyncio.CancelledError:
            if run.stop is None:
                raise
            outcome = Outcome()
        except TimeoutError as exc:
            outcome = Outcome(
                error=timeout_error(task) if deadline.expired() else unknown_error(exc)
            )
        except AiAdminError as exc:
            outcome = Outcome(error=exc)
        except Exception as exc:
            error = unknown_error(exc)
            said = error.message
            run.ctx.hide(error)
            # The traceback's last line quotes the exception, which may hold the task's secret.
            trace = exc if error.message == said else None
            logger.opt(exception=trace).error(
                "task {} failed unexpectedly: {}", task.id, error.message
            )
            outcome = Outcome(error=error)
        if run.stop is not None:  # a pause or cancel wins over whatever the executor did after
            outcome = Outcome(stop=run.stop)
        elif outcome.error is not None:
            outcome = Outcome(error=run.ctx.hide(outcome.error))
        run.decide()  # with no await since: an action now waits for the outcome
        await asyncio.shield(self._finish(run, outcome, started))

    async def _finish(self, run: Run, outcome: Outcome, started: asyncio.Future[None]) -> None:
        run.ctx.stop()
        task = run.task
        now = time.time()
        elapsed = now - run.started_s
        self._running.pop(task.id, None)
        self._finishing[task.id] = run
        lane = self._lanes.lane(task.queue)
        lane.running -= 1
        self._wakeup.set()  # the slot is free while the outcome is written
        try:
            with contextlib.suppress(Exception):  # the "running" write lands first
                await started
            self._apply_outcome(task, outcome, now, elapsed)
            if outcome.stop in (Stop.CANCEL, Stop.PAUSE):
                run.final = task.model_copy(deep=True)
            try:
                await self._journal.commit(task)
            except Exception as exc:  # logged; kept and written again by the flusher
                run.error = exc
        finally:
            self._finishing.pop(task.id, None)
            lane.busy -= 1
            run.end()
            self._update_idle()

    def _apply_outcome(
        self, task: DockerTask, outcome: Outcome, now: float, elapsed: float
    ) -> None:
        again = apply_outcome(
            task, outcome, now=now, elapsed_s=elapsed, stats=self._stats, backoff_s=self._backoff_s
        )
        self._stats.run_ended(task, elapsed)
        if again:
            self._enqueue(task, keep_seq=True)
        else:
            self._dequeue(task)  # finished (takes no more merges), held or stopped

    def _backoff_s(self, retry: int) -> float:
        s = self.settings
        policy = RetryPolicy(s.retry_base_s, s.retry_factor, s.retry_cap_s, s.retry_jitter)
        return policy.delay_s(retry, self._rng)


def _log_recovery(requeued: list[DockerTask], lost: list[DockerTask]) -> None:
    if requeued:
        logger.warning(
            "re-queued {} task(s) that were running when the agent stopped: {}",
            len(requeued),
            ", ".join(t.id for t in requeued),
        )
    if lost:
        logger.warning(
            "failed {} task(s) whose credentials were lost in the restart ({}); resubmit them "
            "with their credentials: {}",
            len(lost),
            ErrorCode.QUEUE_CREDENTIALS_LOST.value,
            ", ".join(t.id for t in lost),
        )
