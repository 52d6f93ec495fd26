"""The embedded store: one SQLite file in WAL mode, with group commit.

Writes are grouped: every write issued during one turn of the loop is committed in one
transaction (``sqlite_writer``), on the loop's own connection or on a writer thread. Primary-key
reads run on the event loop itself: they take microseconds, less than handing the work to a
thread and back. What takes longer runs on threads with their own connections
(``sqlite_threads``): scans (listings, statistics at start-up) on a reader, and WAL checkpoints
on a checkpointer, which copies committed pages into the database without blocking the writer.

``NORMAL`` keeps every commit across a crash of the agent (``kill -9``); ``FULL`` also survives
power loss, at the price of an fsync per commit, which is why with ``FULL`` the commits run on
the writer thread unless the caller chooses otherwise.

At rest the files are owner-only (``sqlite_schema``). A full disk fails the whole group commit
with ``SYSTEM_DISK_SPACE`` and writes none of its counters; a task that fails to load is moved to
the ``set_aside`` table (``sqlite_failures`` turns SQLite's errors into the agent's).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

from loguru import logger
from pydantic import ValidationError

from ai_admin.queue import sqlite_failures as failures
from ai_admin.queue import sqlite_queries as queries
from ai_admin.queue import sqlite_schema as schema
from ai_admin.queue import sqlite_threads
from ai_admin.queue.models import DockerTask, TaskStatus
from ai_admin.queue.sqlite_writer import GroupCommit, WriterThread, transaction
from ai_admin.queue.stats import TaskClass
from ai_admin.queue.store import SetAside, TaskQuery

T = TypeVar("T")
Writer = Literal["loop", "thread"]
# Where commits run unless the caller says, measured with bench/queue_throughput.py (medians of
# 3,000 no-op tasks): with FULL the fsync holds the loop, and with 16 producers the writer thread
# served 1.07-1.9 times the tasks per second, at a p50 latency of 12-20 ms instead of 0.3-1.2 s;
# with NORMAL a commit is too short for the hop to a thread to pay (as fast or slower).
DEFAULT_WRITER: dict[schema.Synchronous, Writer] = {"NORMAL": "loop", "FULL": "thread"}


class SqliteStore:
    """``QueueStore`` on one SQLite file. ``synchronous`` is SQLite's durability level;
    ``writer`` is where the group commits run: on the event loop or on a thread of their own
    (see ``sqlite_writer``), by default the one measured best for that level."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: schema.Synchronous = "NORMAL",
        writer: Writer | None = None,
    ) -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._writer_mode = writer or DEFAULT_WRITER[synchronous]
        self._conn: sqlite3.Connection | None = None  # the loop's: point reads (and writes)
        self._writes = GroupCommit(self.path.parent, self._ask_for_checkpoint)
        self._reader: sqlite_threads.ReaderThread | None = None
        self._checkpointer: sqlite_threads.CheckpointThread | None = None
        self._writer: WriterThread | None = None
        self._unfinished: list[DockerTask] | None = None  # loaded by open(), until a write
        self._opening = asyncio.Lock()

    # -- connections -----------------------------------------------------------------------------

    async def open(self) -> None:
        async with self._opening:
            if self._conn is not None:
                return
            try:
                schema.private_files(self.path)
                # The loop's connection first: it creates the schema the others expect.
                conn = schema.connect_loop(self.path, self._synchronous)
            except (OSError, sqlite3.Error) as exc:
                raise failures.cannot_open(self.path, exc) from None
            try:
                self._reader = sqlite_threads.reader(self._connect_reader)
                await self._reader.start()
                self._checkpointer = sqlite_threads.checkpointer(self._connect_reader)
                await self._checkpointer.start()
                self._unfinished = await self._sweep_unfinished(conn)
                if self._writer_mode == "thread":
                    self._writer = sqlite_threads.writer(self.path, self._synchronous)
                    await self._writer.start()
            except BaseException as exc:
                await self._stop_threads()
                conn.close()
                if isinstance(exc, sqlite3.Error):
                    raise failures.cannot_open(self.path, exc) from None
                raise
            self._writes.attach(conn=conn if self._writer is None else None, thread=self._writer)
            self._conn = conn

    def _connect_reader(self) -> sqlite3.Connection:
        return schema.connect_reader(self.path)

    async def _sweep_unfinished(self, conn: sqlite3.Connection) -> list[DockerTask]:
        """The unfinished tasks; those that fail to load are set aside before anyone counts."""
        rows, unknown = await self._scan_raw(queries.read_unfinished)
        tasks, bad = queries.parse(rows)
        bad += [
            (i, f"status {status[:40]!r} is not one this version knows") for i, status in unknown
        ]
        if bad:
            self._log_set_aside(bad)
            try:  # at start-up, before any other write: inline, on this connection
                transaction(conn, [partial(queries.move_aside, bad)])
            except sqlite3.Error as exc:  # left in place; skipped again at the next start
                logger.error("could not move the task(s) aside: {}", exc)
        return tasks

    @staticmethod
    def _log_set_aside(bad: queries.Failed) -> None:
        for task_id, reason in bad:
            logger.error(
                "stored task {} does not load and is set aside (kept in the set_aside table; "
                "the agent goes on without it): {}",
                task_id,
                reason,
            )

    def _set_aside_later(self, bad: queries.Failed) -> None:
        """A read met tasks that fail to load: log them and move them aside, not waiting."""
        self._log_set_aside(bad)
        moving = self._submit(partial(queries.move_aside, bad))
        moving.add_done_callback(_log_failed_move)

    def _open_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("store is not open")
        return self._conn

    def _submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """A write (or a read in write order), in the next group commit."""
        self._open_conn()
        self._unfinished = None  # what open() loaded is out of date
        return self._writes.submit(fn)

    def _ask_for_checkpoint(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.put(True)

    async def _scan_raw(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._reader is None:
            raise RuntimeError("store is not open")
        return await self._reader.call(fn)

    async def _scan(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._damage_named():
            return await self._scan_raw(fn)

    def _read_inline(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A read by primary key takes microseconds: it runs on the loop's connection, not on
        the reader thread."""
        with self._damage_named():
            return fn(self._open_conn())

    @contextlib.contextmanager
    def _damage_named(self) -> Iterator[None]:
        """A damaged database is raised as the agent's error naming the file."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if failures.is_damaged(exc):
                raise failures.damaged(self.path) from exc
            raise

    async def close(self) -> None:
        # Cleared first: later calls fail instead of never settling.
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._writes.close()
        await self._stop_threads()
        if conn is not None:
            conn.close()

    async def _stop_threads(self) -> None:
        for name in ("_writer", "_reader", "_checkpointer"):
            thread = getattr(self, name)
            setattr(self, name, None)
            if thread is not None:
                await thread.stop()

    # -- the interface -------------------------------------------------------------------------

    def save(
        self, tasks: Sequence[DockerTask], counters: Mapping[str, float] | None = None
    ) -> asyncio.Future[None]:
        write_fut = self._submit(partial(queries.upsert, [queries.row(t) for t in tasks]))
        if counters:  # the newest win: one write per turn, of the ones that changed
            self._writes.set_counters(counters)
        return write_fut

    async def get(self, task_id: str) -> DockerTask | None:
        doc = self._read_inline(partial(queries.get_doc, task_id))
        if doc is None:
            return None
        try:
            return queries.task(doc)
        except ValidationError as exc:
            self._set_aside_later([(task_id, failures.load_failure(exc))])
            return None

    async def statuses(self, task_ids: Sequence[str]) -> dict[str, TaskStatus]:
        """From the status column, one query per 500 ids, no document parsed."""
        found = self._read_inline(partial(queries.statuses, task_ids))
        return {task_id: TaskStatus(status) for task_id, status in found.items()}

    async def list_tasks(self, query: TaskQuery) -> tuple[list[DockerTask], int]:
        rows, total = await self._scan(partial(queries.list_page, query))
        tasks, bad = queries.parse(rows)
        if bad:
            self._set_aside_later(bad)
        return tasks, total - len(bad)

    async def load_unfinished(self) -> list[DockerTask]:
        loaded, self._unfinished = self._unfinished, None
        if loaded is not None:
            return loaded
        tasks, bad = queries.parse(await self._scan(queries.load_unfinished))
        if bad:
            self._set_aside_later(bad)
        return tasks

    async def set_aside(self) -> list[SetAside]:
        return await self._scan(queries.set_aside)

    async def delete(self, statuses: Collection[TaskStatus], queue: str | None = None) -> int:
        """In chunks, each its own commit, so clearing a long history never stalls the loop."""
        values = [s.value for s in statuses]
        deleted = 0
        chunk = partial(queries.delete_chunk, values, queue)
        while values and (n := await self._submit(chunk)):
            deleted += n
        return deleted

    async def class_counts(self) -> dict[TaskClass, int]:
        # With the writes, in their order (a scan of 100,000 tasks holds the loop ~60 ms;
        # the counts are read at start-up and after a clear, never on a busy path).
        return await self._submit(queries.class_counts)

    async def created_since(self, since_s: float) -> list[tuple[float, int]]:
        return await self._scan(partial(queries.created_since, since_s))

    async def load_counters(self) -> dict[str, float]:
        return await self._scan(queries.load_counters)

    async def get_flag(self, name: str) -> str | None:
        return queries.get_flag(name, self._open_conn())

    async def set_flag(self, name: str, value: str | None) -> None:
        await self._submit(partial(queries.set_flag, name, value))

    # -- records, snapshots and retention -------------------------------------------------------

    def save_record(
        self, kind: str, record_id: str, doc: Mapping[str, Any] | None
    ) -> asyncio.Future[None]:
        text = None if doc is None else queries.document(doc)
        return self._submit(partial(queries.save_record, kind, record_id, text))

    async def load_records(self, kind: str) -> dict[str, dict[str, Any]]:
        return await self._submit(partial(queries.load_records, kind))  # in write order

    def add_snapshot(self, at_s: float, doc: Mapping[str, Any]) -> asyncio.Future[None]:
        return self._submit(partial(queries.add_snapshot, at_s, queries.document(doc)))

    async def snapshots(self, since_s: float) -> list[tuple[float, dict[str, Any]]]:
        return await self._scan(partial(queries.snapshots, since_s))

    async def delete_snapshots(self, before_s: float) -> int:
        return await self._submit(partial(queries.delete_snapshots, before_s))

    async def delete_finished(
        self, *, ended_before_s: float | None = None, keep_newest: int | None = None
    ) -> int:
        """In chunks, each its own commit (as ``delete``), by age first, then by count."""
        deleted = 0
        if ended_before_s is not None:
            chunk = partial(queries.delete_finished_before, ended_before_s)
            while n := await self._submit(chunk):
                deleted += n
        if keep_newest is not None:
            chunk = partial(queries.delete_finished_beyond, keep_newest)
            while n := await self._submit(chunk):
                deleted += n
        return deleted

    async def reclaim_space(self) -> int:
        """A chunk of free pages per commit, so a large delete never stalls the loop; then a
        checkpoint, which is when the file is cut to its new size."""
        freed = 0
        while pages := await self._submit(queries.reclaim_chunk):
            freed += pages
        if freed:
            self._ask_for_checkpoint()
        _, _, page_size = await self._submit(queries.page_counts)
        return freed * page_size


def _log_failed_move(moving: asyncio.Future[None]) -> None:
    if not moving.cancelled() and (exc := moving.exception()) is not None:
        logger.error("could not move the task(s) aside: {}", exc)
