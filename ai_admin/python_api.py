"""The Python API: ``TaskQueue()`` with no set-up call, ready on first use.

    from ai_admin import TaskQueue, DockerTask, TaskType

    queue = TaskQueue()
    task_id = await queue.add_task(DockerTask(task_type=TaskType.PUSH,
                                              params={"image_name": "team/app", "tag": "1.4"}))

It wires the engine to its defaults: settings from the configuration file and ``AI_ADMIN_*``
variables, the SQLite store in the data directory, and the Docker executors.

It owns the queue's scheduler (``ai_admin.schedule``): schedules and housekeeping start after
the engine and stop before it closes.

    view = await queue.schedule(DockerTask(task_type=TaskType.PULL,
                                           params={"image_name": "team/app", "tag": "1.4"}),
                                name="nightly pull", cron="0 3 * * *", timezone="Europe/Paris")

A door of its own, above the queue and Docker: the queue knows nothing about Docker, and this
module gives it the Docker executors unless others are passed in (``executors=``). It imports
them only when a ``TaskQueue`` is built without, so a program with its own executors never loads
``docker``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ai_admin.config import Settings, load_settings
from ai_admin.queue.engine import QueueEngine, Submission
from ai_admin.queue.executor import ExecutorMap
from ai_admin.queue.models import DockerTask, TaskPriority, TaskStatus, TaskType
from ai_admin.queue.sqlite_store import SqliteStore
from ai_admin.queue.store import QueueStore, TaskQuery
from ai_admin.schedule.model import ScheduleView
from ai_admin.schedule.retention import RetentionResult
from ai_admin.schedule.scheduler import Scheduler
from ai_admin.schedule.trends import Trends

__all__ = [
    "DockerTask",
    "Submission",
    "TaskPriority",
    "TaskQuery",
    "TaskQueue",
    "TaskStatus",
    "TaskType",
]


def default_executors(settings: Settings) -> ExecutorMap:
    """The Docker executors, for a ``TaskQueue`` given none (imported here, not at the top, so
    that importing the Python API does not load the Docker SDK)."""
    from ai_admin.docker.executors import docker_executors

    return docker_executors(settings)


class TaskQueue(QueueEngine):
    def __init__(
        self,
        store: QueueStore | None = None,
        executors: ExecutorMap | None = None,
        settings: Settings | None = None,
        *,
        data_dir: str | Path | None = None,
    ) -> None:
        if settings is None:
            settings = load_settings(overrides={"data_dir": data_dir})
        if store is None:
            store = SqliteStore(
                settings.db_path,
                synchronous="FULL" if settings.db_synchronous == "full" else "NORMAL",
            )
        if executors is None:
            executors = default_executors(settings)
        super().__init__(store, executors, settings)
        self.scheduler = Scheduler(self, store, self.events, settings)

    # -- lifecycle: the scheduler runs between the engine's start and close ------------------

    async def start(self) -> None:
        await super().start()
        if not self._closing:
            await self.scheduler.start()

    async def close(self, grace_s: float | None = None) -> None:
        await self.scheduler.stop()
        await super().close(grace_s)

    # -- schedules -------------------------------------------------------------------------------

    async def schedule(
        self,
        task: DockerTask,
        *,
        name: str,
        cron: str | None = None,
        interval_s: float | None = None,
        at: str | None = None,
        timezone: str = "UTC",
        command: dict[str, Any] | None = None,
    ) -> ScheduleView:
        """Submit a task like ``task`` at each firing of exactly one of ``cron`` (five fields),
        ``interval_s`` or ``at`` (ISO 8601), read in ``timezone``; durable when it returns.
        ``task`` may hold no credentials: a schedule runs with the agent's own Docker login.
        ``command``: the command message it stands for (the doors pass theirs)."""
        await self.start()
        return await self.scheduler.schedules.create(
            task,
            name=name,
            command=command,
            cron=cron,
            interval_s=interval_s,
            at=at,
            timezone=timezone,
        )

    async def list_schedules(self) -> list[ScheduleView]:
        await self.start()
        return await self.scheduler.schedules.list()

    async def get_schedule(self, schedule_id: str) -> ScheduleView:
        """Raises ``ScheduleNotFound`` for an unknown id (as do the next three)."""
        await self.start()
        return await self.scheduler.schedules.get(schedule_id)

    async def pause_schedule(self, schedule_id: str) -> ScheduleView:
        await self.start()
        return await self.scheduler.schedules.pause(schedule_id)

    async def resume_schedule(self, schedule_id: str) -> ScheduleView:
        await self.start()
        return await self.scheduler.schedules.resume(schedule_id)

    async def delete_schedule(self, schedule_id: str) -> ScheduleView:
        await self.start()
        return await self.scheduler.schedules.delete(schedule_id)

    # -- housekeeping ----------------------------------------------------------------------------

    async def trends(self, days: float = 7.0) -> Trends:
        """Submitted, completed, failed, mean wait and run time per hour and per day."""
        await self.start()
        return await self.scheduler.trends(days)

    async def apply_retention(self) -> RetentionResult:
        """One retention run now, as the housekeeping job runs it."""
        await self.start()
        return await self.scheduler.run_retention()
