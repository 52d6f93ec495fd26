"""The queue's storage interface. SQLite implements it today; a server database will too.

The engine keeps live tasks in memory and uses the store for durability and for history. Every
method is async; ``save`` returns only once the tasks are durable, and the same contract tests
(``tests/unit/test_store_contract.py``) run against every backend.
"""

from __future__ import annotations

from collections.abc import Awaitable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ai_admin.queue.models import DockerTask, TaskStatus, TaskType
from ai_admin.queue.stats import TaskClass


@dataclass(frozen=True, slots=True)
class TaskQuery:
    status: Collection[TaskStatus] | None = None
    task_type: TaskType | None = None
    queue: str | None = None
    offset: int = 0
    limit: int = 100
    newest_first: bool = True


class QueueStore(Protocol):
    async def open(self) -> None:
        """Create or migrate the schema; called once before any other method."""

    async def close(self) -> None:
        """Finish pending writes and release the database."""

    def save(
        self, tasks: Sequence[DockerTask], counters: Mapping[str, float] | None = None
    ) -> Awaitable[None]:
        """Insert or replace ``tasks`` (and the queue's counters); await the result to know
        they are durable.

        Not a coroutine on purpose: the tasks are serialised and queued when ``save`` is
        called, so writes land in call order and later changes to the objects don't leak in.
        Saves issued close together may share one transaction (group commit).
        """

    async def get(self, task_id: str) -> DockerTask | None:
        """The stored task, or None."""

    async def list_tasks(self, query: TaskQuery) -> tuple[list[DockerTask], int]:
        """A page of tasks matching ``query`` and the total number that match."""

    async def load_unfinished(self) -> list[DockerTask]:
        """Every task not in a finished status, in run order (priority, then seq)."""

    async def delete(self, statuses: Collection[TaskStatus]) -> int:
        """Delete every task in one of ``statuses``; returns how many."""

    async def class_counts(self) -> dict[TaskClass, int]:
        """How many tasks are in each stats class (start-up and after deletes)."""

    async def created_since(self, since_s: float) -> list[tuple[float, int]]:
        """(minute start, tasks created) for tasks created after ``since_s``."""

    async def load_counters(self) -> dict[str, float]:
        """The counters last saved with ``save``."""

    async def get_flag(self, name: str) -> str | None:
        """A small piece of queue state kept across restarts (e.g. the whole-queue pause)."""

    async def set_flag(self, name: str, value: str | None) -> None:
        """Store (or with None, remove) a flag; durable, in write order with ``save``."""
