"""The one APScheduler ``AsyncIOScheduler`` of a queue engine: the schedules' jobs and the
housekeeping jobs (retention, history snapshots), started after the engine and stopped before
it closes (``TaskQueue`` does both).

Its job store is APScheduler's memory store: the agent's store is the truth, and the jobs are
made again from it at every start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger

from ai_admin.config import Settings
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.events import EventBus
from ai_admin.queue.store import QueueStore
from ai_admin.schedule import history, retention
from ai_admin.schedule.service import ScheduleService
from ai_admin.schedule.trends import DAY_S, Trends, trends

RETENTION_JOB = "housekeeping:retention"
SNAPSHOT_JOB = "housekeeping:snapshot"
_HOUSEKEEPING = frozenset({RETENTION_JOB, SNAPSHOT_JOB})
_FIRST_RETENTION_S = 60.0  # after start-up, before the first retention run (at most)


class Scheduler:
    def __init__(
        self, engine: QueueEngine, store: QueueStore, events: EventBus, settings: Settings
    ) -> None:
        self._engine = engine
        self._store = store
        self._settings = settings
        self._aps = AsyncIOScheduler(timezone=UTC)
        self.schedules = ScheduleService(engine, store, events, settings, self._aps)
        self._state: Literal["new", "running", "stopped"] = "new"
        self._loaded = asyncio.Event()

    async def start(self) -> None:
        """Load the schedules and start firing (the engine is already started). Once only: a
        stopped scheduler stays stopped (the engine closes next). A concurrent caller waits
        until the schedules are loaded."""
        if self._state != "new":
            if self._state == "running":
                await self._loaded.wait()
            return
        self._state = "running"
        self._aps.start()
        try:
            await self.schedules.load()
        finally:
            self._loaded.set()
        s = self._settings
        if s.housekeeping_interval_s:
            self._every(
                RETENTION_JOB,
                s.housekeeping_interval_s,
                self.run_retention,
                first_s=min(s.housekeeping_interval_s, _FIRST_RETENTION_S),
            )
        if s.stats_snapshot_interval_s:
            self._every(SNAPSHOT_JOB, s.stats_snapshot_interval_s, self.take_snapshot)

    async def stop(self) -> None:
        """No new firing starts; those under way finish (before the engine closes)."""
        state, self._state = self._state, "stopped"
        if state != "running":
            return
        self._aps.shutdown(wait=False)
        await asyncio.sleep(0)  # APScheduler stops in a callback of the loop
        await self.schedules.settle()

    @property
    def apscheduler(self) -> AsyncIOScheduler:
        """The APScheduler instance the jobs run on (to watch its events: a benchmark
        measures each firing's lateness from the time it was due)."""
        return self._aps

    def schedule_jobs(self) -> list[str]:
        """The ids of the schedules with a job on the scheduler (those that will fire)."""
        return sorted(j.id for j in self._aps.get_jobs() if j.id not in _HOUSEKEEPING)

    # -- housekeeping ----------------------------------------------------------------------------

    async def run_retention(self) -> retention.RetentionResult:
        """One retention run now (the job's work): what was deleted and freed."""
        return await retention.apply_retention(self._engine, self._store, self._settings)

    async def take_snapshot(self) -> None:
        """One history snapshot now (the job's work)."""
        await history.take_snapshot(self._store, self._engine.statistics, self._settings)

    async def trends(self, days: float = 7.0) -> Trends:
        """Per hour and per day over the last ``days``, up to now."""
        since = datetime.now(UTC).timestamp() - days * DAY_S
        return trends(await history.history(self._store, self._engine.statistics, since))

    def _every(
        self,
        job_id: str,
        interval_s: float,
        work: Callable[[], Awaitable[object]],
        *,
        first_s: float | None = None,
    ) -> None:
        first = datetime.now(UTC) + timedelta(seconds=interval_s if first_s is None else first_s)
        self._aps.add_job(
            _logged(job_id, work),
            IntervalTrigger(seconds=interval_s, timezone=UTC),
            id=job_id,
            next_run_time=first,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )


def _logged(job_id: str, work: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
    """A housekeeping job that logs its failure instead of handing it to APScheduler."""

    async def run() -> None:
        try:
            await work()
        except Exception as exc:
            logger.error("housekeeping job {} failed: {}", job_id, exc)

    return run
