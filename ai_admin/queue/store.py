"""The queue's storage interface. SQLite implements it today; a server database will too.

The engine keeps live tasks in memory and uses the store for durability and for history. Every
method is async; ``save`` returns only once the tasks are durable, and the same contract tests
(``tests/unit/test_store_contract.py``) run against every backend.

Failures a backend reports as ``ai_admin.errors.StoreError``:
- ``open`` on a database it cannot use (damaged, not a database, no permission): the message is
  one line naming it and what to do, which ``ai-admin serve`` prints as it stops;
- a write on a full disk: ``SYSTEM_DISK_SPACE``. Nothing of that write is stored (nor the
  counters given with it), the store stays usable, and writes succeed again once there is space.

Beside the tasks a store keeps *records*: small JSON documents of other kinds (schedules, and
batches and named queues), by kind and id, written in order with the tasks
(``save_record``); and *snapshots* of the queue's counters, taken periodically, from which
history trends are computed. Retention deletes finished tasks by age and by count
(``delete_finished``, never a live one) and gives the space back (``reclaim_space``).

A stored task that no longer loads (a damaged document, one from an incompatible version) does
not stop the agent: it is *set aside*, logged with its id and why, kept out of every later load,
listing and lookup, and reported by ``set_aside()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ai_admin.queue.models import DockerTask, TaskStatus, TaskType
from ai_admin.queue.stats import TaskClass


@dataclass(frozen=True, slots=True)
class SetAside:
    """A stored task that failed to load, kept apart (not deleted) for an operator to look at."""

    task_id: str
    reason: str  # where and what failed, never the stored value
    set_aside_at: float  # seconds since the epoch

    def to_dict(self) -> dict[str, str | float]:
        return {"task_id": self.task_id, "reason": self.reason, "set_aside_at": self.set_aside_at}


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
        """Create or migrate the schema; called once before any other method.

        Sets aside unfinished tasks that fail to load, so the counts read next agree with what
        ``load_unfinished`` returns. Raises ``StoreError`` if the database cannot be used.
        """

    async def close(self) -> None:
        """Finish pending writes and release the database."""

    def save(
        self, tasks: Sequence[DockerTask], counters: Mapping[str, float] | None = None
    ) -> Awaitable[None]:
        """Insert or replace ``tasks`` (and the queue's counters); await the result to know
        they are durable.

        Not a coroutine on purpose: the tasks are serialised and queued when ``save`` is
        called, so writes land in call order and later changes to the objects don't leak in.
        Saves issued close together may share one transaction (group commit). The counters
        are written only together with every write they count: if one of those fails, they are
        not written, and the next ``save`` with counters brings the caller's corrected values.
        """

    async def get(self, task_id: str) -> DockerTask | None:
        """The stored task, or None (also for a task that fails to load: it is set aside)."""

    async def statuses(self, task_ids: Sequence[str]) -> dict[str, TaskStatus]:
        """The status of each of ``task_ids`` that is stored (a whole batch's, at once)."""

    async def list_tasks(self, query: TaskQuery) -> tuple[list[DockerTask], int]:
        """A page of tasks matching ``query`` and the total number that match; a task that
        fails to load is left out of both and set aside."""

    async def load_unfinished(self) -> list[DockerTask]:
        """Every task not in a finished status, in run order (priority, then seq); those that
        fail to load were set aside by ``open``."""

    async def set_aside(self) -> list[SetAside]:
        """Every stored task set aside because it failed to load, oldest first."""

    async def delete(self, statuses: Collection[TaskStatus], queue: str | None = None) -> int:
        """Delete every task in one of ``statuses`` (of ``queue``, or of every queue);
        returns how many."""

    async def class_counts(self) -> dict[TaskClass, int]:
        """How many tasks are in each stats class (start-up and after deletes), as of every
        save issued before the call and none issued after it."""

    async def created_since(self, since_s: float) -> list[tuple[float, int]]:
        """(minute start, tasks created) for tasks created after ``since_s``."""

    async def load_counters(self) -> dict[str, float]:
        """The counters last saved with ``save``."""

    async def get_flag(self, name: str) -> str | None:
        """A small piece of queue state kept across restarts (e.g. the whole-queue pause)."""

    async def set_flag(self, name: str, value: str | None) -> None:
        """Store (or with None, remove) a flag; durable once the call returns."""

    def save_record(
        self, kind: str, record_id: str, doc: Mapping[str, Any] | None
    ) -> Awaitable[None]:
        """Insert or replace (with None, delete) the record ``record_id`` of ``kind``; await the
        result to know it is durable.

        Like ``save``, not a coroutine: the document (JSON-able) is serialised when the call is
        made, and the write lands in call order with the task writes around it."""

    async def load_records(self, kind: str) -> dict[str, dict[str, Any]]:
        """Every record of ``kind`` by id, as of every write issued before the call."""

    def add_snapshot(self, at_s: float, doc: Mapping[str, Any]) -> Awaitable[None]:
        """Keep a snapshot (JSON-able) taken at ``at_s`` (one per instant: a later one at the
        same time replaces it); await the result to know it is durable."""

    async def snapshots(self, since_s: float) -> list[tuple[float, dict[str, Any]]]:
        """(taken at, snapshot) of every snapshot taken at or after ``since_s``, oldest first."""

    async def delete_snapshots(self, before_s: float) -> int:
        """Delete the snapshots taken before ``before_s``; returns how many."""

    async def delete_finished(
        self, *, ended_before_s: float | None = None, keep_newest: int | None = None
    ) -> int:
        """Delete finished tasks that ended before ``ended_before_s`` (their ``completed_at``,
        else their creation), and those beyond the newest ``keep_newest`` finished tasks (by
        creation); None leaves that rule out. A live task is never deleted. Returns how many
        were; the classes counted by ``class_counts`` change accordingly."""

    async def reclaim_space(self) -> int:
        """Give the space freed by deletes back to the file system; returns how many bytes."""
