"""One record per live task: everything the engine holds for a task that has not finished."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ai_admin.queue.events import TaskEvent
from ai_admin.queue.models import DockerTask
from ai_admin.queue.stats import TaskClass


@dataclass(slots=True, eq=False)
class LiveTask:
    """A task held in memory, from its submit (or a retry) until its finished state is durable.

    Leaving memory drops the whole record at once, so nothing keyed by the task is left behind.
    """

    task: DockerTask
    # The class the gauges count it in as of its last write (None: not counted yet).
    counted: TaskClass | None = None
    merge_key: str | None = None  # its twins' key, while it may take merges
    last_write: asyncio.Future[None] | None = None  # until that write has landed
    # Progress and log events wait here while its "running" write has not been announced.
    held: list[TaskEvent] | None = None
    waiters: list[asyncio.Future[DockerTask]] = field(default_factory=list)

    @classmethod
    def counted_as_is(cls, task: DockerTask, merge_key: str | None = None) -> LiveTask:
        """A stored task brought into memory: the gauges count it as it is stored."""
        return cls(task, TaskClass.of(task), merge_key)
