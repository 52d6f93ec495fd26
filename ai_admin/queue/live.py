"""One record per live task: everything the engine holds for a task that has not finished."""

from __future__ import annotations

import asyncio
from collections import Counter
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
    # The tasks it waits for before it may start (None: none left; see ``dependencies``).
    waiting_on: set[str] | None = None
    waiters: list[asyncio.Future[DockerTask]] = field(default_factory=list)

    @classmethod
    def counted_as_is(cls, task: DockerTask, merge_key: str | None = None) -> LiveTask:
        """A stored task brought into memory: the gauges count it as it is stored."""
        return cls(task, TaskClass.of(task), merge_key)


class LiveTasks(dict[str, LiveTask]):
    """The live records by task id, with how many each queue holds (read at every submit, to
    check the queue's ``max_queue_size``). A task's queue never changes while it is live."""

    def __init__(self) -> None:
        super().__init__()
        self.per_queue: Counter[str] = Counter()

    def __setitem__(self, task_id: str, record: LiveTask) -> None:
        old = self.get(task_id)
        if old is not None:
            self.per_queue[old.task.queue] -= 1
        self.per_queue[record.task.queue] += 1
        super().__setitem__(task_id, record)

    def __delitem__(self, task_id: str) -> None:
        self.pop(task_id)

    def pop(self, task_id: str, *default: LiveTask | None) -> LiveTask | None:  # type: ignore[override]
        record = super().pop(task_id, None)
        if record is not None:
            self.per_queue[record.task.queue] -= 1
            return record
        if default:
            return default[0]
        raise KeyError(task_id)
