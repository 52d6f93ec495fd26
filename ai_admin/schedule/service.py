"""The schedules: kept in the agent's store, run on the scheduler, each firing a submit.

Every change (create, pause, resume, delete) is written to the store before it is applied and
answered, so a schedule a client was told about survives a restart and a ``kill -9``; each
firing writes the schedule's firing state (last run, next run, last task) after its task's
submit is durable. Actions on one schedule are serialised (one lock per schedule): a pause, a
resume, a delete and a firing never interleave, whichever clients send them at once. Firings
take turns with the rest of the event loop (``pacing``): a burst of them does not hold up
clients.

A firing submits the schedule's task through the queue engine with its ``schedule_id``. If
the previous firing's task is still waiting or running, the engine merges the new one into it
(status ``merged``, ``merged_into``): firings do not pile up behind a slow task.

Missed firings. At start-up each schedule's job is given its stored next run time; if that has
passed (the agent was down), the firings missed coalesce into one, run at once if the latest of
them is no older than ``schedule_misfire_grace_s``, else skipped and counted in ``missed``. A
one-time (``at``) schedule that fired, or was missed, is kept (``done``, no next run) so its
outcome can still be read; delete it when it is no longer wanted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import (
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from loguru import logger
from pydantic import ValidationError

from ai_admin.config import Settings
from ai_admin.errors import AiAdminError, ScheduleNotFound
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.events import Change, EventBus, ObjectEvent, Subject
from ai_admin.queue.models import DockerTask
from ai_admin.queue.secrets import split_secrets
from ai_admin.queue.store import QueueStore
from ai_admin.schedule.firing_stats import FiringStats
from ai_admin.schedule.model import (
    RECORD_KIND,
    FiringError,
    Schedule,
    ScheduleView,
    TaskTemplate,
    schedule_view,
)
from ai_admin.schedule.pacing import Turns
from ai_admin.schedule.spec import TriggerSpec, refused


class ScheduleService:
    def __init__(
        self,
        engine: QueueEngine,
        store: QueueStore,
        events: EventBus,
        settings: Settings,
        aps: AsyncIOScheduler,
    ) -> None:
        self._engine = engine
        self._store = store
        self._events = events
        self._settings = settings
        self._aps = aps
        self._schedules: dict[str, Schedule] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._firing: set[asyncio.Task[None]] = set()  # firings under way, awaited by settle()
        # Firings due begin one every other turn of the loop (see pacing).
        self._turns: Turns[str] = Turns(self._begin_firing, every=2)
        self._due: dict[str, datetime] = {}  # when each firing due, not yet begun, was due
        self.stats = FiringStats()
        aps.add_listener(self._on_missed, EVENT_JOB_MISSED)
        aps.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)

    # -- start and stop --------------------------------------------------------------------------

    async def load(self) -> None:
        """The stored schedules, each with its job (its stored next run: see the docstring)."""
        for schedule_id, record in (await self._store.load_records(RECORD_KIND)).items():
            try:
                schedule = Schedule.model_validate(record)
                schedule.spec  # noqa: B018 - its trigger must still be valid
            except (ValidationError, AiAdminError) as exc:
                logger.error(
                    "stored schedule {} does not load and is skipped: {}", schedule_id, exc
                )
                continue
            self._schedules[schedule_id] = schedule
            if not schedule.paused and not schedule.done:
                next_run = schedule.next_run_at
                if next_run is None:
                    first = schedule.spec.first_run(schedule.created_at)
                    next_run = first.timestamp() if first is not None else None
                if next_run is not None:
                    self._add_job(schedule, next_run)
        if self._schedules:
            logger.info("loaded {} schedule(s)", len(self._schedules))

    async def settle(self) -> None:
        """Wait for the firings due and under way (the scheduler has stopped adding new
        ones)."""
        while self._turns.waiting or self._firing:
            await self._turns.drained()
            await asyncio.gather(*self._firing, return_exceptions=True)

    # -- the actions -----------------------------------------------------------------------------

    async def create(
        self,
        task: DockerTask,
        *,
        name: str,
        command: dict[str, Any] | None = None,
        cron: str | None = None,
        interval_s: float | None = None,
        at: str | None = None,
        timezone: str = "UTC",
    ) -> ScheduleView:
        """A schedule submitting a task like ``task`` at each firing; durable when it returns.

        ``command``: the command message it was made from, kept as given (the Python API
        passes none: the task's own description is kept)."""
        spec = TriggerSpec(cron, interval_s, at, timezone)
        if split_secrets(task.params)[1] is not None:
            raise refused(
                "command.params",
                "a schedule holds no credentials (auth, secret build args): it runs with the "
                "agent's own Docker login",
            )
        template = TaskTemplate.of(task)
        schedule = Schedule(
            name=name,
            cron=cron,
            interval_s=interval_s,
            at=at,
            timezone=timezone,
            command=command or _described(template),
            template=template,
        )
        first = spec.first_run(schedule.created_at)
        if first is None and at is not None:  # already past: it fires at once
            first = datetime.now(UTC)
        schedule.next_run_at = None if first is None else first.timestamp()
        sid = schedule.schedule_id
        async with self._lock(sid):
            await self._store.save_record(RECORD_KIND, sid, schedule.record())
            self._schedules[sid] = schedule
            if schedule.next_run_at is not None:  # (a cron of 31 February never fires)
                self._add_job(schedule, schedule.next_run_at)
            self._publish(sid, Change.CREATED, name=name)
        logger.info("schedule {} ({}) created: next run at {}", sid, name, first)
        return schedule_view(schedule, None)

    async def list(self) -> list[ScheduleView]:
        """Every schedule, oldest first."""
        ordered = sorted(self._schedules.values(), key=lambda s: (s.created_at, s.schedule_id))
        return [await self._view(s) for s in ordered]

    async def get(self, schedule_id: str) -> ScheduleView:
        return await self._view(self._require(schedule_id))

    async def pause(self, schedule_id: str) -> ScheduleView:
        """It fires no more until resumed (a firing under way finishes first); idempotent."""
        async with self._lock(schedule_id):
            schedule = self._require(schedule_id)
            if not schedule.paused:
                paused = schedule.model_copy(update={"paused": True, "next_run_at": None})
                await self._store.save_record(RECORD_KIND, schedule_id, paused.record())
                self._schedules[schedule_id] = schedule = paused
                self._remove_job(schedule_id)
                self._publish(schedule_id, Change.PAUSED)
        return await self._view(schedule)

    async def resume(self, schedule_id: str) -> ScheduleView:
        """It fires again from its next time after now (no catching up); idempotent."""
        async with self._lock(schedule_id):
            schedule = self._require(schedule_id)
            if schedule.paused:
                first = None if schedule.done else schedule.spec.first_run(schedule.created_at)
                next_run = first.timestamp() if first is not None else None
                resumed = schedule.model_copy(update={"paused": False, "next_run_at": next_run})
                await self._store.save_record(RECORD_KIND, schedule_id, resumed.record())
                self._schedules[schedule_id] = schedule = resumed
                if next_run is not None:
                    self._add_job(schedule, next_run)
                self._publish(schedule_id, Change.RESUMED)
        return await self._view(schedule)

    async def delete(self, schedule_id: str) -> ScheduleView:
        """Gone for good (its tasks stay); the schedule as it was last."""
        async with self._lock(schedule_id):
            schedule = self._require(schedule_id)
            await self._store.save_record(RECORD_KIND, schedule_id, None)
            del self._schedules[schedule_id]
            self._remove_job(schedule_id)
            self._publish(schedule_id, Change.DELETED)
        self._locks.pop(schedule_id, None)
        return await self._view(schedule)

    def __len__(self) -> int:
        return len(self._schedules)

    def counts(self) -> dict[str, int]:
        """How many schedules are ``active`` (will fire), ``paused`` and ``done``."""
        counts = dict.fromkeys(("active", "paused", "done"), 0)
        for s in self._schedules.values():
            counts["paused" if s.paused else "done" if s.done else "active"] += 1
        return counts

    @property
    def firings_waiting(self) -> int:
        """Firings due and waiting for their turn on the loop (see pacing)."""
        return self._turns.waiting

    # -- firing ----------------------------------------------------------------------------------

    async def _fire(self, schedule_id: str) -> None:
        """The job APScheduler runs: the firing waits for its turn on the loop (see pacing),
        once, however many times it comes due meanwhile (its task would merge anyway)."""
        if not self._turns.add(schedule_id):
            self.stats.outcomes["folded"] += 1

    def _begin_firing(self, schedule_id: str) -> None:
        # Our own task, not APScheduler's: stopping the scheduler cancels none of it, and a
        # submit is never cut between its write and the schedule's record of it.
        self._keep(self._fire_once(schedule_id, self._due.pop(schedule_id, None)))

    async def _fire_once(self, schedule_id: str, due: datetime | None) -> None:
        async with self._lock(schedule_id):
            schedule = self._schedules.get(schedule_id)
            if schedule is None or schedule.paused:
                return
            now = time.time()
            if due is not None:
                self.stats.lateness.observe(max(0.0, now - due.timestamp()))
            data: dict[str, Any] = {}
            try:
                sub = await self._engine.submit(schedule.template.task(schedule_id))
            except AiAdminError as exc:
                self.stats.outcomes["refused"] += 1
                schedule.last_error = FiringError(code=exc.code.value, message=exc.message, at=now)
                data["error_code"] = exc.code.value
                logger.warning("schedule {} fired but the queue refused: {}", schedule_id, exc)
            else:
                self.stats.outcomes["submitted" if sub.merged_into is None else "merged"] += 1
                schedule.last_error = None
                schedule.runs += 1
                schedule.last_task_id = sub.task_id
                data.update(task_id=sub.task_id, status=sub.status.value)
                if sub.merged_into is not None:
                    data["merged_into"] = sub.merged_into
            schedule.last_run_at = now
            schedule.next_run_at = self._next_run(schedule_id)
            await self._save_firing_state(schedule)
            self._publish(schedule_id, Change.FIRED, **data)

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        """APScheduler started a firing's job: when it was due (the latest, if coalesced)."""
        if event.job_id in self._schedules:  # the first due, if it is still waiting
            self._due.setdefault(event.job_id, max(event.scheduled_run_times))

    def _on_missed(self, event: JobExecutionEvent) -> None:
        """APScheduler skipped a firing: later than the grace time (the agent was down)."""
        schedule = self._schedules.get(event.job_id)
        if schedule is None:
            return
        self.stats.missed += 1
        schedule.missed += 1
        schedule.next_run_at = self._next_run(schedule.schedule_id)
        logger.warning(
            "schedule {} missed its firing of {} (more than {:g} s late); next run: {}",
            schedule.schedule_id,
            event.scheduled_run_time,
            self._settings.schedule_misfire_grace_s,
            schedule.next_run_at,
        )
        self._keep(self._save_firing_state(schedule))

    async def _save_firing_state(self, schedule: Schedule) -> None:
        sid = schedule.schedule_id
        if self._schedules.get(sid) is not schedule:
            return  # deleted (or replaced by a pause or resume) meanwhile: not brought back
        try:
            await self._store.save_record(RECORD_KIND, sid, schedule.record())
        except AiAdminError as exc:  # a full disk: the next firing writes it again
            logger.error("could not record the firing of schedule {}: {}", sid, exc)

    # -- helpers ---------------------------------------------------------------------------------

    def _keep(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task that settle() waits for."""
        task = asyncio.ensure_future(work)
        self._firing.add(task)
        task.add_done_callback(self._firing.discard)

    def _lock(self, schedule_id: str) -> asyncio.Lock:
        lock = self._locks.get(schedule_id)
        if lock is None:
            lock = self._locks[schedule_id] = asyncio.Lock()
        return lock

    def _require(self, schedule_id: str) -> Schedule:
        schedule = self._schedules.get(schedule_id)
        if schedule is None:
            raise ScheduleNotFound(schedule_id)
        return schedule

    async def _view(self, schedule: Schedule) -> ScheduleView:
        last = None
        if schedule.last_task_id is not None:
            last = await self._engine.get_task(schedule.last_task_id)
        return schedule_view(schedule, last)

    def _add_job(self, schedule: Schedule, next_run_at: float) -> None:
        self._aps.add_job(
            self._fire,
            trigger=schedule.spec.trigger(schedule.created_at),
            args=[schedule.schedule_id],
            id=schedule.schedule_id,
            name=schedule.name,
            next_run_time=datetime.fromtimestamp(next_run_at, UTC),
            misfire_grace_time=self._settings.schedule_misfire_grace_s,
            coalesce=True,
            max_instances=1,
            replace_existing=True,
        )

    def _remove_job(self, schedule_id: str) -> None:
        if self._aps.get_job(schedule_id) is not None:
            self._aps.remove_job(schedule_id)

    def _next_run(self, schedule_id: str) -> float | None:
        job = self._aps.get_job(schedule_id)
        when: datetime | None = None if job is None else job.next_run_time
        return None if when is None else when.timestamp()

    def _publish(self, schedule_id: str, change: Change, **data: Any) -> None:
        self._events.publish(ObjectEvent.of(Subject.SCHEDULE, schedule_id, change, **data))


def _described(template: TaskTemplate) -> dict[str, Any]:
    """The command message a task made through the Python API stands for."""
    return {"action": template.task_type.value, "params": dict(template.params)}
