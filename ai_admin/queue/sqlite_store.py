"""The embedded store: one SQLite file in WAL mode, with group commit.

Writes and primary-key reads run on the event loop itself: in WAL mode with
``synchronous=NORMAL`` a commit only writes to the OS and takes tens of microseconds, less than
handing the work to a thread and back. Every write issued during one turn of the loop is
committed at the end of that turn in one transaction, so many concurrent saves cost one commit.
What takes longer runs on threads with their own connections: scans (listings, statistics at
start-up) on a reader, and WAL checkpoints on a checkpointer, which copies committed pages into
the database without blocking the writer.

``NORMAL`` keeps every commit across a crash of the agent (``kill -9``); ``FULL`` also survives
power loss, at the price of an fsync per commit on the loop.

At rest the database and its ``-wal``/``-shm`` files are owner-only (SQLite gives the latter the
database's mode) in an owner-only directory. A full disk fails the whole group commit with
``SYSTEM_DISK_SPACE`` and writes none of its counters; a task that fails to load is moved to the
``set_aside`` table (``sqlite_failures`` turns SQLite's errors into the agent's).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

from loguru import logger
from pydantic import ValidationError

from ai_admin.errors import StoreError
from ai_admin.private_files import FILE_MODE, private_dir
from ai_admin.queue import sqlite_failures as failures
from ai_admin.queue.models import DockerTask, TaskStatus
from ai_admin.queue.stats import ERROR_STATUSES, TaskClass
from ai_admin.queue.store import SetAside, TaskQuery

T = TypeVar("T")
J = TypeVar("J")
_MAX_BATCH = 2_000
_CHECKPOINT_EVERY = 64  # commits between background checkpoints
_BACKSTOP_CHECKPOINT_PAGES = 4_000
_DELETE_CHUNK = 1_000  # rows per commit: a few milliseconds of the loop's time
_CACHE_KIB = 16_384  # page cache per connection; the default 2 MB misses on a large history
# Another process holding the write lock must not freeze the loop: the loop's connection waits
# briefly, then the batch is tried again later, until the busy timeout the threads also use.
_LOOP_BUSY_MS = 10
_BUSY_TIMEOUT_S = 5.0
_BUSY_RETRY_S = (0.01, 0.5)  # first and longest wait between attempts

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id          TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL,
    queue       TEXT NOT NULL,
    task_type   TEXT NOT NULL,
    status      TEXT NOT NULL,
    finished    INTEGER NOT NULL,
    priority    INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    error_code  TEXT,
    retry_count INTEGER NOT NULL,
    max_retries INTEGER NOT NULL,
    doc         TEXT NOT NULL
);
DROP INDEX IF EXISTS tasks_run_order;
CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created_at);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status, created_at);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS set_aside (
    id           TEXT PRIMARY KEY,
    reason       TEXT NOT NULL,
    set_aside_at REAL NOT NULL,
    status       TEXT NOT NULL,
    doc          TEXT NOT NULL
);
"""
_SCHEMA_VERSION = "1"
_FLAG = "flag:"  # meta keys of the flags (get_flag / set_flag)
# id, queue, task_type, priority and created_at never change, so an update leaves them (and
# the index on created_at) alone; indexes are few because every commit writes each one it touches.
_UPSERT = """
INSERT INTO tasks (id, seq, queue, task_type, status, finished, priority, created_at, error_code,
                   retry_count, max_retries, doc)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (id) DO UPDATE SET
    seq = excluded.seq, status = excluded.status, finished = excluded.finished,
    error_code = excluded.error_code, retry_count = excluded.retry_count,
    max_retries = excluded.max_retries, doc = excluded.doc
"""

_UNFINISHED = ",".join(f"'{s.value}'" for s in TaskStatus if not s.is_finished)
_KNOWN = frozenset(s.value for s in TaskStatus)
_LOAD_UNFINISHED = (
    f"SELECT id, doc FROM tasks WHERE status IN ({_UNFINISHED}) ORDER BY priority, seq"  # noqa: S608
)
# The distinct statuses stored, one index seek each (microseconds, not a scan of the history):
# a status this version does not know was written by a newer one.
_STATUSES = """
WITH RECURSIVE s(status) AS (
    SELECT min(status) FROM tasks
    UNION ALL SELECT (SELECT min(status) FROM tasks WHERE status > s.status) FROM s
    WHERE s.status IS NOT NULL
)
SELECT status FROM s WHERE status IS NOT NULL
"""
_SET_ASIDE = (
    "INSERT OR REPLACE INTO set_aside (id, reason, set_aside_at, status, doc) "
    "SELECT id, ?, ?, status, doc FROM tasks WHERE id = ?"
)
Row = tuple[str, int, str, str, str, int, int, float, str | None, int, int, str]
_Work = Callable[[sqlite3.Connection], Any]
_Job = tuple[_Work, asyncio.Future[Any]]
_Read = tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]


def _row(task: DockerTask) -> Row:
    return (
        task.id,
        task.seq,
        task.queue,
        task.task_type.value,
        task.status.value,
        int(task.status.is_finished),
        int(task.priority),
        task.created_at,
        task.error_code,
        task.retry_count,
        task.max_retries or 0,
        task.model_dump_json(exclude_none=True),  # every nullable field defaults to None
    )


class _CannotBegin(sqlite3.OperationalError):
    """No transaction could begin: the batch is tried again whole, not job by job."""


class _DiskFull(Exception):
    """The disk filled up during a group commit: SQLite rolled all of it back."""


def _checkpoint(conn: sqlite3.Connection, requests: list[bool]) -> None:
    """Copy committed pages from the WAL into the database, without blocking the writer."""
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error as exc:  # a full disk: the WAL keeps the pages; the next one retries
        logger.warning("could not checkpoint the task database: {}", exc)


def _write_counters(rows: list[tuple[str, float]], conn: sqlite3.Connection) -> None:
    conn.executemany("INSERT OR REPLACE INTO counters VALUES (?, ?)", rows)


def _task(doc: str) -> DockerTask:
    return DockerTask.model_validate_json(doc)


def _read_unfinished(
    conn: sqlite3.Connection,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(id, doc) of the unfinished tasks, and (id, status) of those in an unknown status."""
    unknown = [st for (st,) in conn.execute(_STATUSES) if st not in _KNOWN]
    strays: list[tuple[str, str]] = []
    if unknown:
        marks = ",".join("?" * len(unknown))
        sql = f"SELECT id, status FROM tasks WHERE status IN ({marks})"  # noqa: S608
        strays = conn.execute(sql, unknown).fetchall()
    return conn.execute(_LOAD_UNFINISHED).fetchall(), strays


def _parse(rows: list[tuple[str, str]]) -> tuple[list[DockerTask], list[tuple[str, str]]]:
    """The tasks that load, and (id, reason) for those that do not."""
    tasks: list[DockerTask] = []
    bad: list[tuple[str, str]] = []
    for task_id, doc in rows:
        try:
            tasks.append(_task(doc))
        except ValidationError as exc:
            bad.append((task_id, failures.load_failure(exc)))
    return tasks, bad


def _move_aside(bad: list[tuple[str, str]], conn: sqlite3.Connection) -> None:
    now = time.time()
    conn.executemany(_SET_ASIDE, [(reason, now, task_id) for task_id, reason in bad])
    conn.executemany("DELETE FROM tasks WHERE id = ?", [(task_id,) for task_id, _ in bad])


def _private_files(path: Path) -> None:
    """The database owner-only from its creation; its files and directory tightened if loose.

    SQLite creates ``-wal`` and ``-shm`` with the database's mode, so they start owner-only too.
    A shared directory (sticky, like /tmp) is left as it is: only a directory of its own is
    the store's to tighten.
    """
    parent = path.parent
    if not (parent.is_dir() and parent.stat().st_mode & stat.S_ISVTX):
        private_dir(parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        other = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            if other.stat().st_mode & 0o077:
                os.chmod(other, FILE_MODE)


class SqliteStore:
    def __init__(
        self, path: str | Path, *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    ) -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._conn: sqlite3.Connection | None = None  # the loop's: writes and point reads
        self._pending: list[_Job] = []  # writes issued this loop turn, committed at its end
        self._counters: dict[str, float] = {}  # the newest issued this turn
        self._counters_written: dict[str, float] = {}
        self._busy_since: float | None = None  # another process held the write lock
        self._retry: asyncio.TimerHandle | None = None
        self._reads: queue.SimpleQueue[_Read | None] = queue.SimpleQueue()
        self._reader: threading.Thread | None = None
        self._checkpoints: queue.SimpleQueue[bool | None] = queue.SimpleQueue()
        self._checkpointer: threading.Thread | None = None
        self._commits = 0  # since the last checkpoint was asked for
        self._disk_full = False  # the last commit failed for want of space
        self._unfinished: list[DockerTask] | None = None  # loaded by open(), until a write
        self._opening = asyncio.Lock()

    # -- connections -----------------------------------------------------------------------------

    async def open(self) -> None:
        async with self._opening:
            if self._conn is not None:
                return
            try:
                _private_files(self.path)
                # The loop's connection first: it creates the schema the reader's expects.
                conn = self._connect()
            except (OSError, sqlite3.Error) as exc:
                raise failures.cannot_open(self.path, exc) from None
            try:
                self._reader = await _start(
                    "ai-admin-sqlite-read", self._connect_reader, self._reads, self._run_reads
                )
                self._checkpointer = await _start(
                    "ai-admin-sqlite-checkpoint",
                    self._connect_reader,
                    self._checkpoints,
                    _checkpoint,
                )
                self._unfinished = await self._sweep_unfinished(conn)
            except BaseException as exc:
                await self._stop_threads()
                conn.close()
                if isinstance(exc, sqlite3.Error):
                    raise failures.cannot_open(self.path, exc) from None
                raise
            self._counters_written = {}  # what this connection's file holds is not known
            self._conn = conn

    async def _sweep_unfinished(self, conn: sqlite3.Connection) -> list[DockerTask]:
        """The unfinished tasks; those that fail to load are set aside before anyone counts."""
        rows, unknown = await self._scan_raw(_read_unfinished)
        tasks, bad = _parse(rows)
        bad += [
            (i, f"status {status[:40]!r} is not one this version knows") for i, status in unknown
        ]
        if bad:
            self._log_set_aside(bad)
            try:  # at start-up, before any other write: inline, on this connection
                self._transaction(conn, [partial(_move_aside, bad)])
            except sqlite3.Error as exc:  # left in place; skipped again at the next start
                logger.error("could not move the task(s) aside: {}", exc)
        return tasks

    @staticmethod
    def _log_set_aside(bad: list[tuple[str, str]]) -> None:
        for task_id, reason in bad:
            logger.error(
                "stored task {} does not load and is set aside (kept in the set_aside table; "
                "the agent goes on without it): {}",
                task_id,
                reason,
            )

    def _set_aside_later(self, bad: list[tuple[str, str]]) -> None:
        """A read met tasks that fail to load: log them and move them aside, not waiting."""
        self._log_set_aside(bad)
        moving = self._submit(partial(_move_aside, bad))
        moving.add_done_callback(_log_failed_move)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        # Checkpoints run on their own thread (below); this one is a backstop.
        conn.execute(f"PRAGMA wal_autocheckpoint={_BACKSTOP_CHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")  # schema, at start-up
        conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        conn.executescript(_SCHEMA)
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (_SCHEMA_VERSION,))
        conn.execute(f"PRAGMA busy_timeout={_LOOP_BUSY_MS}")
        return conn

    def _connect_reader(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        conn.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
        conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        conn.execute("PRAGMA query_only=1")
        return conn

    def _open_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("store is not open")
        return self._conn

    # -- writes: group commit at the end of the loop turn ----------------------------------------

    def _submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        self._open_conn()
        self._unfinished = None  # what open() loaded is out of date
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        if not self._pending and self._retry is None:
            loop.call_soon(self._write_pending)
        self._pending.append((fn, fut))
        return fut

    def _write_pending(self) -> None:
        self._retry = None
        if self._conn is None:  # close() wrote what was issued before it
            self._fail_pending(RuntimeError("store is not open"))
        elif (delay := self._commit_pending(self._conn)) is not None:
            self._retry = asyncio.get_running_loop().call_later(delay, self._write_pending)

    def _commit_pending(self, conn: sqlite3.Connection) -> float | None:
        """Commit what is pending; if another process holds the write lock, keep it pending
        and return how long to wait before trying again (it fails once that took too long)."""
        batch, self._pending = self._pending, []
        counters, self._counters = self._counters, {}
        if not batch:
            return None
        # Only the counters that changed since the last commit are written.
        changed = [(k, v) for k, v in counters.items() if self._counters_written.get(k) != v]
        counters_job = partial(_write_counters, changed) if changed else None
        try:
            outcomes = self._run_batch(conn, [fn for fn, _ in batch], counters_job)
        except _CannotBegin as exc:  # the write lock is held elsewhere; every write is an
            # idempotent upsert or a chunk of a repeated delete, so trying again is safe
            self._pending = batch + self._pending
            self._keep_counters(counters)
            return self._wait_for_lock(exc)
        except _DiskFull as exc:
            self._busy_since = None
            self._fail_for_space(batch, exc)
            return None
        self._busy_since = None
        if self._disk_full:
            self._disk_full = False
            logger.warning("the task database is written again: its disk has space")
        if counters_job is not None:
            self._settle_counters(changed, counters, outcomes)
        self._commits += 1
        if self._commits >= _CHECKPOINT_EVERY:
            self._commits = 0
            self._checkpoints.put(True)
        futures = [fut for _, fut in batch]
        _settle_all([(fut, ok, value) for fut, (ok, value) in zip(futures, outcomes, strict=False)])
        return None

    def _settle_counters(
        self,
        changed: list[tuple[str, float]],
        counters: dict[str, float],
        outcomes: list[tuple[bool, Any]],
    ) -> None:
        """The counters go in only with every write they count. If a write failed, they
        counted it: they are dropped, and the caller's next ``save`` brings its corrected ones."""
        if outcomes[-1][0]:
            self._counters_written.update(changed)
        elif all(ok for ok, _ in outcomes[:-1]):  # only the counters failed: kept for later
            self._keep_counters(counters)
            logger.error("could not write the queue's counters: {}", outcomes[-1][1])

    def _fail_for_space(self, batch: list[_Job], exc: _DiskFull) -> None:
        """Nothing of the batch is stored (SQLite rolled it back) and its counters are dropped;
        each caller gets its own ``SYSTEM_DISK_SPACE`` error."""
        if not self._disk_full:
            self._disk_full = True
            logger.error(
                "the task database cannot be written, its disk is full ({}): free space in {}",
                exc.__cause__,
                self.path.parent,
            )
        _settle_all([(fut, False, self._disk_full_error(exc)) for _, fut in batch])

    def _disk_full_error(self, exc: BaseException) -> StoreError:
        error = failures.disk_full(self.path.parent)
        error.__cause__ = exc.__cause__ or exc
        return error

    def _keep_counters(self, counters: dict[str, float]) -> None:
        """Unwritten counters go with the next commit, under any newer values."""
        self._counters = {**counters, **self._counters}

    def _wait_for_lock(self, exc: sqlite3.OperationalError) -> float | None:
        now = time.monotonic()
        if self._busy_since is None:
            self._busy_since = now
        waited = now - self._busy_since
        if waited >= _BUSY_TIMEOUT_S:
            self._busy_since = None
            self._fail_pending(exc)
            return None
        first, longest = _BUSY_RETRY_S
        return min(longest, max(first, waited))

    def _fail_pending(self, exc: Exception) -> None:
        batch, self._pending = self._pending, []
        _settle_all([(fut, False, exc) for _, fut in batch])

    def _run_batch(
        self, conn: sqlite3.Connection, work: list[_Work], last: _Work | None
    ) -> list[tuple[bool, Any]]:
        """All of it in one transaction, ``last`` (the counters) last. If a part fails, each
        runs alone so only it fails, and ``last`` only if all the others succeeded.

        Raises _CannotBegin if another process holds the write lock, and _DiskFull if the disk
        filled up (nothing was written: running the parts alone would store some and not
        others, with counters that no longer match)."""
        try:
            return self._transaction(conn, work if last is None else [*work, last])
        except _CannotBegin:
            raise
        except Exception as exc:
            if failures.is_disk_full(exc, self.path.parent):
                raise _DiskFull from exc
        outcomes = [self._alone(conn, fn) for fn in work]
        if last is not None:
            all_ok = all(ok for ok, _ in outcomes)
            outcomes.append(self._alone(conn, last) if all_ok else (False, None))
        return outcomes

    def _alone(self, conn: sqlite3.Connection, fn: _Work) -> tuple[bool, Any]:
        try:
            return self._transaction(conn, [fn])[0]
        except _CannotBegin:
            raise
        except Exception as exc:
            if failures.is_disk_full(exc, self.path.parent):
                return False, self._disk_full_error(exc)
            return False, exc

    @staticmethod
    def _transaction(conn: sqlite3.Connection, work: list[_Work]) -> list[tuple[bool, Any]]:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _CannotBegin(*exc.args) from exc
        try:
            results = [(True, fn(conn)) for fn in work]
            conn.execute("COMMIT")
        except BaseException:
            # After a full disk or an I/O error SQLite has already rolled back; a ROLLBACK then
            # would fail ("cannot rollback") and hide the error that says what happened.
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        return results

    # -- scans: on the reader thread --------------------------------------------------------------

    @staticmethod
    def _run_reads(conn: sqlite3.Connection, batch: list[_Read]) -> None:
        """The reads waiting together share one snapshot and one wake-up of the loop."""
        settled: list[tuple[asyncio.Future[Any], bool, Any]] = []
        try:
            conn.execute("BEGIN")
        except sqlite3.Error as exc:  # each read fails, and the thread lives on for the next
            settled = [(fut, False, exc) for _, fut in batch]
        else:
            try:
                for fn, fut in batch:
                    try:
                        settled.append((fut, True, fn(conn)))
                    except Exception as exc:
                        settled.append((fut, False, exc))
            finally:
                with contextlib.suppress(sqlite3.Error):  # a read-only snapshot ends anyway
                    conn.execute("COMMIT")
        batch[0][1].get_loop().call_soon_threadsafe(_settle_all, settled)

    async def _scan_raw(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._reader is None:
            raise RuntimeError("store is not open")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._reads.put((fn, fut))
        return await fut

    async def _scan(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._scan_raw(fn)
        except sqlite3.DatabaseError as exc:
            if failures.is_damaged(exc):
                raise failures.damaged(self.path) from exc
            raise

    async def close(self) -> None:
        # Cleared first: later calls fail instead of never settling.
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._write_before_close(conn)
        await self._stop_threads()
        if conn is not None:
            conn.close()

    async def _write_before_close(self, conn: sqlite3.Connection) -> None:
        """What was issued before close() is written (or fails), waiting out a held lock."""
        if self._retry is not None:  # waited for here instead
            self._retry.cancel()
            self._retry = None
        # Polled: a lock held by another process signals nothing when it is released.
        while (delay := self._commit_pending(conn)) is not None:  # noqa: ASYNC110
            await asyncio.sleep(delay)

    async def _stop_threads(self) -> None:
        reader, self._reader = self._reader, None
        checkpointer, self._checkpointer = self._checkpointer, None
        for thread, jobs in ((reader, self._reads), (checkpointer, self._checkpoints)):
            if thread is not None:
                jobs.put(None)
                await asyncio.to_thread(thread.join)

    # -- the interface -------------------------------------------------------------------------

    def save(
        self, tasks: Sequence[DockerTask], counters: Mapping[str, float] | None = None
    ) -> asyncio.Future[None]:
        rows = [_row(t) for t in tasks]

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(_UPSERT, rows)

        write_fut = self._submit(write)
        if counters:  # the newest win: one write per turn, of the ones that changed
            self._counters = dict(counters)
        return write_fut

    async def get(self, task_id: str) -> DockerTask | None:
        """A primary-key read takes microseconds: it runs inline, not on the reader thread."""
        conn = self._open_conn()
        try:
            row = conn.execute("SELECT doc FROM tasks WHERE id = ?", (task_id,)).fetchone()
        except sqlite3.DatabaseError as exc:
            if failures.is_damaged(exc):
                raise failures.damaged(self.path) from exc
            raise
        if row is None:
            return None
        try:
            return _task(row[0])
        except ValidationError as exc:
            self._set_aside_later([(task_id, failures.load_failure(exc))])
            return None

    async def list_tasks(self, query: TaskQuery) -> tuple[list[DockerTask], int]:
        where, args = _where(query)
        order = "DESC" if query.newest_first else "ASC"

        def read(conn: sqlite3.Connection) -> tuple[list[tuple[str, str]], int]:
            total = conn.execute(f"SELECT count(*) FROM tasks{where}", args).fetchone()[0]  # noqa: S608
            rows = conn.execute(
                f"SELECT id, doc FROM tasks{where} ORDER BY created_at {order}, seq {order} "  # noqa: S608
                "LIMIT ? OFFSET ?",
                (*args, query.limit, query.offset),
            ).fetchall()
            return rows, total

        rows, total = await self._scan(read)
        tasks, bad = _parse(rows)
        if bad:
            self._set_aside_later(bad)
        return tasks, total - len(bad)

    async def load_unfinished(self) -> list[DockerTask]:
        loaded, self._unfinished = self._unfinished, None
        if loaded is not None:
            return loaded
        rows = await self._scan(lambda conn: conn.execute(_LOAD_UNFINISHED).fetchall())
        tasks, bad = _parse(rows)
        if bad:
            self._set_aside_later(bad)
        return tasks

    async def set_aside(self) -> list[SetAside]:
        def read(conn: sqlite3.Connection) -> list[tuple[str, str, float]]:
            return conn.execute(
                "SELECT id, reason, set_aside_at FROM set_aside ORDER BY set_aside_at, id"
            ).fetchall()

        return [SetAside(*row) for row in await self._scan(read)]

    async def delete(self, statuses: Collection[TaskStatus]) -> int:
        """In chunks, each its own commit, so clearing a long history never stalls the loop."""
        values = [s.value for s in statuses]
        marks = ",".join("?" * len(values))
        sql = (
            f"DELETE FROM tasks WHERE rowid IN (SELECT rowid FROM tasks WHERE status IN ({marks}) "  # noqa: S608
            f"LIMIT {_DELETE_CHUNK})"
        )

        def write(conn: sqlite3.Connection) -> int:
            return conn.execute(sql, values).rowcount

        deleted = 0
        while values and (n := await self._submit(write)):
            deleted += n
        return deleted

    async def class_counts(self) -> dict[TaskClass, int]:
        errors = ",".join(f"'{s.value}'" for s in ERROR_STATUSES)
        sql = (
            f"SELECT status, task_type, CASE WHEN status IN ({errors}) THEN error_code END, "  # noqa: S608
            "retry_count > 0, retry_count >= max_retries, count(*) FROM tasks "
            "GROUP BY 1, 2, 3, 4, 5"
        )

        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(sql).fetchall()

        # With the writes, in their order (a scan of 100,000 tasks holds the loop ~60 ms;
        # the counts are read at start-up and after a clear, never on a busy path).
        return {
            TaskClass(status, ttype, code, bool(has), bool(at_max)): n
            for status, ttype, code, has, at_max, n in await self._submit(read)
        }

    async def created_since(self, since_s: float) -> list[tuple[float, int]]:
        def read(conn: sqlite3.Connection) -> list[tuple[float, int]]:
            return conn.execute(
                "SELECT CAST(created_at / 60 AS INTEGER) * 60, count(*) FROM tasks "
                "WHERE created_at >= ? GROUP BY 1",
                (since_s,),
            ).fetchall()

        return await self._scan(read)

    async def load_counters(self) -> dict[str, float]:
        def read(conn: sqlite3.Connection) -> list[tuple[str, float]]:
            return conn.execute("SELECT name, value FROM counters").fetchall()

        return dict(await self._scan(read))

    async def get_flag(self, name: str) -> str | None:
        row = (
            self._open_conn()
            .execute("SELECT value FROM meta WHERE key = ?", (_FLAG + name,))
            .fetchone()
        )
        return row[0] if row else None

    async def set_flag(self, name: str, value: str | None) -> None:
        key = _FLAG + name

        def write(conn: sqlite3.Connection) -> None:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

        await self._submit(write)


def _where(query: TaskQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if query.status:
        clauses.append(f"status IN ({','.join('?' * len(query.status))})")
        args.extend(s.value for s in query.status)
    if query.task_type is not None:
        clauses.append("task_type = ?")
        args.append(query.task_type.value)
    if query.queue is not None:
        clauses.append("queue = ?")
        args.append(query.queue)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


async def _start(
    name: str,
    connect: Callable[[], sqlite3.Connection],
    jobs: queue.SimpleQueue[J | None],
    run: Callable[[sqlite3.Connection, list[J]], None],
) -> threading.Thread:
    """A thread owning one connection that runs batches of jobs until it drains a None."""
    ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def serve() -> None:
        try:
            conn = connect()
        except Exception as exc:  # reported to open()'s caller
            ready.get_loop().call_soon_threadsafe(_settle, ready, False, exc)
            return
        ready.get_loop().call_soon_threadsafe(_settle, ready, True, None)
        try:
            while (batch := _drain(jobs)) is not None:
                run(conn, batch)
        finally:
            conn.close()

    thread = threading.Thread(target=serve, name=name, daemon=True)
    thread.start()
    await ready
    return thread


def _drain(jobs: queue.SimpleQueue[J | None]) -> list[J] | None:
    """Wait for a job, then take every job already waiting (a batch); None once closed."""
    first = jobs.get()
    if first is None:
        return None
    batch = [first]
    while len(batch) < _MAX_BATCH:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            break
        if job is None:  # closing: handle this batch, then stop
            jobs.put(None)
            break
        batch.append(job)
    return batch


def _log_failed_move(moving: asyncio.Future[None]) -> None:
    if not moving.cancelled() and (exc := moving.exception()) is not None:
        logger.error("could not move the task(s) aside: {}", exc)


def _settle_all(settled: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for fut, ok, value in settled:
        _settle(fut, ok, value)


def _settle(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():  # the caller was cancelled; the write itself still happened
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
